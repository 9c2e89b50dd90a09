"""What the three services share: structured logs, request ids, JSON errors, the image API contract.

Nothing here knows about routing, images or storage.
"""
