"""The sync: the tunnel, the read-only source, the replica, one pass per table, reconciliation
and the agent that loops them. It writes the replica and the state store (``health``) and
uses the contract (``schema``); nothing else imports it but the CLI, doctor and demo, and it
never imports the readers (``web``, ``indicator``).
"""
