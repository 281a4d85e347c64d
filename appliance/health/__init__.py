"""Health: the state store the agent writes and the readers read, the status document and
its states, notifications and the status as text. It reads the contract (``schema``) and
the config, and never imports ``sync`` or the readers.
"""
