"""The strangler-fig front door: routes requests between the monolith and the extracted services.

Nothing happens at import time; see __main__.py for the entry points.
"""
