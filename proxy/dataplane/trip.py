"""One request's trip through the public listener: what was decided, who serves it, how it ended.

Owns Trip: the handler makes one per request and hands it down to the steps below it (failover.Caller,
forwarding.forward, refusals), which write what they learn into it — the upstream that served the
request (the primary after a fallback), a client that went away, every upstream failure met on the way —
instead of out-parameters or callbacks. The handler reads it once, when the request ends, to record the
request's metrics, its upstream errors and its access log line (handler.ProxyHandler._record).
"""

from __future__ import annotations

from dataclasses import dataclass

from multidict import CIMultiDict

from proxy.dataplane.bodies import BufferedBody
from proxy.dataplane.http1 import Request, Responder
from proxy.routing import Decision, RouteTable

__all__ = ["Failure", "Trip"]

Failure = tuple[str, str, str]  # (upstream, kind, detail): one failed upstream call, for the record


@dataclass(slots=True)
class Trip:
    request: Request
    responder: Responder  # where the answer goes (the http1 server's; forward() writes it)
    request_id: str
    path: str  # as received (undecoded) until it is normalized, then normalized
    query: str
    # the labels of the record: "none" until the routing decision is made
    route: str = "none"
    upstream: str = "none"  # who serves it: the decision's upstream, or the primary after a fallback
    role: str = "none"
    table: RouteTable | None = None  # read once: the request finishes on this table
    decision: Decision | None = None
    headers: CIMultiDict[str] | None = None  # what goes upstream (request_headers)
    body: BufferedBody | None = None  # read whole before any upstream call (request_body: buffer)
    client_gone: bool = False  # the client disconnected while the answer was being sent
    failures: list[Failure] | None = None  # upstream errors met on the way (most requests: none)

    def decided(self, decision: Decision) -> None:
        self.decision = decision
        self.route, self.upstream, self.role = decision.route, decision.upstream, decision.role

    def served_by(self, upstream: str, role: str) -> None:
        self.upstream, self.role = upstream, role

    def failed(self, upstream: str, kind: str, detail: str) -> None:
        if self.failures is None:
            self.failures = []
        self.failures.append((upstream, kind, detail))

    @property
    def routing(self) -> tuple[RouteTable, Decision]:
        """The table and the decision, once made (the forwarding steps run only after it)."""
        table, decision = self.table, self.decision
        assert table is not None, "the request was not routed yet"
        assert decision is not None, "the request was not routed yet"
        return table, decision
