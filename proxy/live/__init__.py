"""The live configuration: the serving snapshot, swapped whole on a valid reload (reload.py), and the
file watcher (watch.py) that applies an edit only once it has settled (the rule itself is
config/settle.py) and reads the file only when one stat says it may have changed, or at a slow backstop
(gate.py, filestat.py).
"""
