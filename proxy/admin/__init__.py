"""The admin listener: health, metrics, config, routes, reload, guard reset, shadow mismatches and
noise, behind a bearer token whose failures are counted and throttled (auth.py).
"""
