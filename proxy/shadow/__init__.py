"""Shadow mode (parallel run): mirror primary-served requests to the candidate and compare the answers.

Pure: the policy and its sampling (policy.py), the comparison (compare.py), the learned noise
(noise.py), the kept mismatches (mismatches.py), the cost budget (budget.py). I/O: the mirror
(mirror.py: Shadower; call.py: ShadowCall, one mirrored request; exchange.py: its HTTP calls), which
calls the candidate off the request path.
"""
