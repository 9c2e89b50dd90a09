"""Concrete implementations of the ports: generators (local, OpenAI) and stores (local, AWS)."""
