"""The pure core of the image service: value objects, the generation aggregate, errors and ports.

Nothing here performs I/O or imports os, aiohttp, boto3 or openai.
"""
