"""The edges that translate requests into calls of the service layer: HTTP (aiohttp) and Lambda."""
