"""Health: the state store, the status document and its states, notifications, status as text.
Reads ``schema`` and ``config``; it never imports ``sync`` or the readers.
"""
