"""The schema contract: what a table looks like (``shape``), the accepted snapshot
(``contract``), drift between the two (``drift``, ``diff``) and the data checks. Pure logic
over shapes and rows: it never imports ``sync``, ``health`` or the readers.
"""
