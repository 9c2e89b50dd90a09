"""What keeps a bad candidate or a bad day from reaching clients.

Pure cores: the circuit breaker (breaker.py), the guard's sliding window (guard.py), the fallback
decision (fallback.py), an upstream's slots (slots.py) and the memory budget (memory.py). The
request limits are the http1 server's (dataplane/http1/). state.py (Resilience) is the I/O edge: the
live guards and breakers of one app, their logs and metrics. Nothing here talks HTTP.
"""
