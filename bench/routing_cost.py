"""Scenario 6's pure half: the CPU time of one routing decision over the 50-route table, in-process.

Times proxy.routing.decide() alone (no I/O) for a request that matches the last route and one that
matches none; the scenario divides it by the CPU the proxy spends on one proxied request.
"""

from __future__ import annotations

import time

from multidict import CIMultiDict, CIMultiDictProxy

from bench import configs
from proxy.config import parse_config
from proxy.routing import RequestFacts, compile_routes, decide

HEADERS = {"Host": "127.0.0.1:8080", "User-Agent": "wrk", "Accept": "*/*"}


def decision_seconds(path: str, *, loops: int = 20_000, repeats: int = 5) -> float:
    """The best of `repeats` averages over `loops` decisions (best-of: the least disturbed by others)."""
    doc = configs.fifty_routes("http://127.0.0.1:9")
    table = compile_routes(parse_config(configs.dump(doc)))
    facts = RequestFacts(
        method="GET", path=path, headers=CIMultiDictProxy(CIMultiDict(HEADERS)), cookies={}, query={},
        client_ip="127.0.0.1", request_id="0" * 32,
    )  # fmt: skip
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(loops):
            decide(table, facts)
        best = min(best, (time.process_time() - started) / loops)
    return best
