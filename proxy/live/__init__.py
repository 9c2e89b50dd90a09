"""The live configuration: the serving snapshot, swapped whole on a valid reload (reload.py), and the
file watcher that applies an edit only once it has settled (the rule itself is config/settle.py).
"""
