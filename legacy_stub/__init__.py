"""The legacy monolith stand-in: a storefront, orders, transparency probes and the slow image module.

It is what the strangler proxy sits in front of. Its image module implements the image API contract
(strangler_common/contracts/images.yaml) the way the monolith does: one worker, a few seconds per image.
"""
