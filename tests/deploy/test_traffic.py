"""bench.traffic, the demo traffic generator, against the real legacy stub on loopback."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestServer

from bench.traffic import Plan, main, parse_args, run
from legacy_stub.app import create_app
from legacy_stub.settings import Settings


async def test_the_mix_reaches_every_kind_of_page_and_a_few_requests_are_bad(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    server: TestServer = await aiohttp_server(create_app(Settings(image_delay_s=0.0)))
    plan = Plan(target=str(server.make_url("")).rstrip("/"), rate=200, duration_s=1.0, seed=7)

    report = await run(plan)

    assert report.unanswered == 0
    ok = {action for (action, status), _ in report.statuses.items() if status < 400}
    assert ok >= {
        "storefront", "catalog", "order", "order_get", "image_generate", "image_get", "image_download",
        "image_list",
    }  # fmt: skip
    bad = {status for (action, status), _ in report.statuses.items() if action == "bad"}
    assert bad
    assert bad <= {400, 404, 415, 422}
    assert report.sent + report.shed <= plan.total + 1  # the catalog look-up comes on top


def test_a_target_that_does_not_answer_exits_1(unused_tcp_port: int) -> None:
    assert main(["--rate", "20", "--duration", "0.2", "--target", f"http://127.0.0.1:{unused_tcp_port}"]) == 1


@pytest.mark.parametrize(
    "argv",
    [["--rate", "0"], ["--duration", "-1"], ["--target", "ftp://x"], ["--users", "0"], ["--rate", "x"]],
)
def test_bad_arguments_are_refused_with_usage(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
