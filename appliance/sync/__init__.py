"""The sync: tunnel, read-only source, replica, one pass per table, reconciliation, the agent.
Writes the replica and the state store; uses ``schema`` and ``health``; never imports the readers.
"""
