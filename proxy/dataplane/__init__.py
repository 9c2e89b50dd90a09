"""The public listener's request path: the front door (connection limits, parser refusals, Expect), the
handler, request bodies and their buffering, the upstream pools and their slots, forwarding, the
fallback sequence and the WebSocket relay. All I/O; the decisions come from routing/ and resilience/.
"""
