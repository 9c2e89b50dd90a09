"""The parent's GET /metrics under `serve --workers N`: every worker scraped, merged by metrics/merge.py.

Aggregation, not prometheus_client's multiprocess mode: the workers' hot path keeps its plain in-memory
counters (no mmap'd file per metric and process) and collectors that compute at scrape time (the
rollout gauge) keep working. What multiprocess mode gives for free is kept here: a counter summed over
the workers must never go down, or Prometheus reads a reset and rate() a spike. So the counts of a
worker that died stay in the sum: when a worker's generation changes (supervisor.py), the cumulative
families (counters, histograms, summaries) of its last scrape move into `retired`, summed into every
exposition after. A worker that does not answer a scrape stands in with its last one (counted in
strangler_workers_scrape_errors_total). Its gauges go with it.

families() is the same merge of fewer samples, for the console's figures every 10 s: each worker sends
only the samples asked for, as JSON (families.py), so nothing is rendered or parsed as text. What they
say refreshes those samples of the worker's last scrape, so retiring and standing in work as for a
full scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence

import structlog
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.metrics_core import Metric

from proxy.admin import families as wire
from proxy.admin.fanmerge import Answer
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
        generations = self._generations()
        answers = await self._peers.every("GET", "/metrics", text=True, request_id=request_id,
                                          timeout_s=SCRAPE_TIMEOUT_S)  # fmt: skip
        for answer, generation in zip(answers, generations, strict=True):
            families = self._fresh(answer, generation, _parsed)
            if families is not None:
                self._last[answer.worker] = (generation, families)
        sources = [self._retired, *(self._last[i][1] for i in sorted(self._last))]
        sources.append(parse(generate_latest(self._own).decode()))
        return render(merge(sources))

    async def families(self, names: Collection[str], request_id: str | None = None) -> list[Metric]:
        """What exposition() would say of the samples called `names`, as families: cheaper, the same."""
        generations = self._generations()
        query = [(wire.NAME_PARAM, name) for name in names]
        answers = await self._peers.every("GET", "/metrics/families", query=query, request_id=request_id,
                                          timeout_s=SCRAPE_TIMEOUT_S)  # fmt: skip
        for answer, generation in zip(answers, generations, strict=True):
            families = self._fresh(answer, generation, _decoded)
            if families is not None:
                kept = self._last.get(answer.worker, (generation, []))[1]  # _retire() kept this process's
                self._last[answer.worker] = (generation, _refreshed(kept, families, frozenset(names)))
        own = self._own.restricted_registry(names).collect()
        sources = [self._retired, *(self._last[i][1] for i in sorted(self._last)), own]
        return merge([_restricted(families, frozenset(names)) for families in sources])

    def _fresh(self, answer: Answer, generation: int, read: _Reader) -> list[Metric] | None:
        """The families of `answer`; None, counted and logged, when it failed or came from another process."""
        # An answer that raced a replacement may come from either process: keep none of it.
        fresh = answer.ok and self._peers.roster.generation(answer.worker) == generation
        families = read(answer.body) if fresh else None
        if families is None:
            self._scrape_errors.inc()
            _log.warning("worker_scrape_failed", worker=answer.worker, status=answer.status,
                         error=answer.error)  # fmt: skip
        return families

    def _generations(self) -> list[int]:
        """Each worker's generation now; what replaced workers had counted moves into `retired` first."""
        roster = self._peers.roster
        generations = [roster.generation(i) for i in range(len(roster.sockets()))]
        self._retire(generations)
        return generations

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


def _decoded(body: object) -> list[Metric] | None:
    try:
        return wire.decode(body)
    except ValueError:
        return None


_Reader = Callable[[object], list[Metric] | None]


def _restricted(families: Iterable[Metric], names: frozenset[str]) -> list[Metric]:
    """The families with only the samples called `names`; those left without one are left out."""
    kept = []
    for family in families:
        samples = [sample for sample in family.samples if sample.name in names]
        if samples:
            subset = Metric(family.name, family.documentation, family.type)
            subset.samples = samples
            kept.append(subset)
    return kept


def _refreshed(last: Sequence[Metric], fresh: Sequence[Metric], names: frozenset[str]) -> list[Metric]:
    """`last` with its samples called `names` replaced by `fresh`'s (which holds only such samples)."""
    by_name = {family.name: family for family in fresh}
    refreshed = []
    for family in last:
        update = Metric(family.name, family.documentation, family.type)
        new = by_name.pop(family.name, None)
        update.samples = [sample for sample in family.samples if sample.name not in names]
        update.samples += new.samples if new is not None else []
        refreshed.append(update)
    return refreshed + list(by_name.values())
