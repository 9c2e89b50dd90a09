"""The extracted image service: the bounded context "image generation", moved out of the monolith.

It implements the same image API contract as the legacy stub (strangler_common/contracts/images.yaml),
but generations run concurrently up to a limit instead of one at a time.
"""
