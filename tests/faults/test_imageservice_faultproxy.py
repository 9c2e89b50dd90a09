"""The fault proxy itself, in front of moto, driven by a plain boto3 client: each fault does what the
image service's fault tests rely on (a fault that silently did not happen would make them vacuous)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

from imageservice.adapters.aws import AwsClients
from tests.faults.conftest import TABLE
from tests.faults.faultproxy import ANY, Call, Rule, ThreadedFaultProxy

CUT = (ConnectionClosedError, EndpointConnectionError)


@pytest.fixture
def table(moto: AwsClients, faults: ThreadedFaultProxy) -> Iterator[Any]:
    """DynamoDB through the proxy: one attempt per call, so every fault reaches the caller."""
    config = Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=1)
    client = boto3.client("dynamodb", endpoint_url=faults.endpoint, region_name="us-east-1", config=config)
    yield client
    client.close()


def put(client: Any, pk: str) -> None:
    client.put_item(TableName=TABLE, Item={"pk": {"S": pk}})


def stored(moto: AwsClients, pk: str) -> bool:
    return "Item" in moto.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": pk}}, ConsistentRead=True)


def test_a_dropped_response_is_applied_upstream_but_never_reaches_the_client(
    moto: AwsClients, faults: ThreadedFaultProxy, table: Any
) -> None:
    faults.add_rule(Rule(Call.dynamodb("PutItem"), "drop_response", nth=2))
    put(table, "first")

    with pytest.raises(CUT):
        put(table, "second")

    put(table, "third")  # the rule acted once, on the second matching call
    assert [stored(moto, pk) for pk in ("first", "second", "third")] == [True, True, True]
    assert faults.faults == {"drop_response PutItem": 1}


def test_a_refused_call_never_reaches_the_upstream(
    moto: AwsClients, faults: ThreadedFaultProxy, table: Any
) -> None:
    faults.add_rule(Rule(Call.dynamodb("PutItem"), "refuse"))

    with pytest.raises(CUT):
        put(table, "refused")

    assert not stored(moto, "refused")


def test_an_outage_cuts_open_connections_and_new_ones_until_it_is_over(
    moto: AwsClients, faults: ThreadedFaultProxy, table: Any
) -> None:
    put(table, "before")  # leaves a kept-alive connection in the client's pool
    faults.refuse()
    with pytest.raises(CUT):
        put(table, "during")
    with pytest.raises(CUT):
        put(table, "during")
    faults.passthrough()

    put(table, "after")
    assert [stored(moto, pk) for pk in ("before", "during", "after")] == [True, False, True]


def test_a_frozen_call_is_held_unanswered_and_never_forwarded(
    moto: AwsClients, faults: ThreadedFaultProxy, table: Any
) -> None:
    faults.freeze()

    with pytest.raises(ReadTimeoutError):
        put(table, "frozen")

    faults.passthrough()
    assert not stored(moto, "frozen")
    put(table, "thawed")
    assert stored(moto, "thawed")


def test_an_armed_rule_waits_for_its_trigger_to_go_through(
    moto: AwsClients, faults: ThreadedFaultProxy, table: Any
) -> None:
    faults.add_rule(Rule(ANY, "refuse", times=None, armed_by=Call.dynamodb("DeleteItem")))
    put(table, "a")
    table.delete_item(TableName=TABLE, Key={"pk": {"S": "a"}})  # goes through, and arms the outage

    with pytest.raises(CUT):
        put(table, "b")
    with pytest.raises(CUT):
        table.describe_table(TableName=TABLE)
    assert faults.calls == ["PutItem", "DeleteItem", "PutItem", "DescribeTable"]


def test_what_the_upstream_answers_is_relayed_unchanged(faults: ThreadedFaultProxy, table: Any) -> None:
    with pytest.raises(ClientError) as missing:
        table.describe_table(TableName="no-such-table")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
