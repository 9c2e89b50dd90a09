"""The parent's GET /metrics under `serve --workers N`: every worker scraped, merged by metrics/merge.py.

Aggregation, not prometheus_client's multiprocess mode: the workers' hot path keeps its plain in-memory
counters (no mmap'd file per metric and process) and collectors that compute at scrape time (the
rollout gauge) keep working. What multiprocess mode gives for free is kept here: a counter summed over
the workers must never go down, or Prometheus reads a reset and rate() a spike. So the counts of a
worker that died stay in the sum: when a worker's generation changes (supervisor.py), the cumulative
families (counters, histograms, summaries) of its last scrape move into `retired`, summed into every
exposition after. A worker that does not answer a scrape stands in with its last one (counted in
strangler_workers_scrape_errors_total). Its gauges go with it.
"""

from __future__ import annotations

import structlog
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.metrics_core import Metric

from proxy.admin.peers import Peers
from proxy.metrics.merge import cumulative, merge, parse, render

__all__ = ["SCRAPE_TIMEOUT_S", "MetricsFan"]

SCRAPE_TIMEOUT_S = 5.0  # per worker, well inside Prometheus's default scrape timeout (10 s)
_log = structlog.get_logger("proxy.admin")


class MetricsFan:
    def __init__(self, peers: Peers, own: CollectorRegistry, scrape_errors: Counter) -> None:
        self._peers = peers
        self._own = own  # the parent's families (metrics/workers.py)
        self._scrape_errors = scrape_errors
        self._last: dict[int, tuple[int, list[Metric]]] = {}  # worker -> (generation, its last scrape)
        self._retired: list[Metric] = []  # what replaced workers had counted

    async def exposition(self, request_id: str | None = None) -> bytes:
        roster = self._peers.roster
        generations = [roster.generation(i) for i in range(len(roster.sockets()))]
        self._retire(generations)
        answers = await self._peers.every("GET", "/metrics", text=True, request_id=request_id,
                                          timeout_s=SCRAPE_TIMEOUT_S)  # fmt: skip
        for answer, generation in zip(answers, generations, strict=True):
            # An answer that raced a replacement may come from either process: keep none of it.
            fresh = answer.ok and roster.generation(answer.worker) == generation
            families = _parsed(answer.body) if fresh else None
            if families is None:
                self._scrape_errors.inc()
                _log.warning("worker_scrape_failed", worker=answer.worker, status=answer.status,
                             error=answer.error)  # fmt: skip
                continue
            self._last[answer.worker] = (generation, families)
        sources = [self._retired, *(self._last[i][1] for i in sorted(self._last))]
        sources.append(parse(generate_latest(self._own).decode()))
        return render(merge(sources))

    def _retire(self, generations: list[int]) -> None:
        for worker, (generation, families) in list(self._last.items()):
            if worker >= len(generations) or generations[worker] != generation:
                self._retired = merge([self._retired, cumulative(families)])
                del self._last[worker]


def _parsed(text: object) -> list[Metric] | None:
    try:
        return parse(text) if isinstance(text, str) else None
    except ValueError:
        return None
