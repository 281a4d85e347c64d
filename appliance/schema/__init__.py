"""The schema contract: table shapes, the accepted snapshot, drift between them, data checks.
Pure logic over shapes and rows; it never imports ``sync``, ``health`` or the readers.
"""
