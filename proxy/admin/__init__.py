"""The admin listener: health, metrics, config, routes, reload, guard reset, shadow mismatches and
noise, behind a bearer token whose failures are counted and throttled (auth.py). Under `serve --workers
N`, the parent's one admin listener answers for every worker by asking each (fanout.py).
"""
