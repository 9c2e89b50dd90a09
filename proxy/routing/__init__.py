"""The routing decision, pure: paths in, a Decision out.

Owns the compiled route table (table.py: RequestFacts, Decision, UpstreamSpec, CompiledRoute,
RouteTable, compile_routes, decide), the index by first path segment (segments.py), the rule
predicates (rules.py), sticky bucketing (bucketing.py)
and the client address behind trusted proxies (clientip.py). No I/O, no clock, no randomness: the
same facts and table always give the same decision.
"""

from proxy.routing.table import (
    CompiledRoute,
    Decision,
    RequestFacts,
    RouteTable,
    UpstreamSpec,
    compile_routes,
    decide,
)

__all__ = [
    "CompiledRoute", "Decision", "RequestFacts", "RouteTable", "UpstreamSpec", "compile_routes", "decide",
]
