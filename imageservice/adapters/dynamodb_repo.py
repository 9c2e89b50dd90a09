"""Generation metadata and idempotency records in one DynamoDB table: the calls and their conditions.

Items: `gen#<id>` (a generation; listed newest first through the `newest` index) and `idem#<key>`
(an idempotency record); what their attributes look like is dynamodb_items.py's. Claiming is one
conditional put in the Powertools shape; completing is one TransactWriteItems (the generation and
the key together); the image bytes live in S3, never here. A claim's put that botocore retries after
a lost response meets our own item: the owner token tells, and the claim proceeds. `reconcile` scans
both kinds of item (a Scan: fine for a maintenance job).

Listing reads a GSI with one partition key: fine for this service's volume, and eventually
consistent (a generation may show up in the list a moment after its 201). Reads by id are strongly
consistent. Every call goes through `_call`, which turns a refusal of our credentials into
StoragePermissionDenied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from imageservice.adapters.aws import NEWEST_INDEX, AwsClients, error_code, permission_checked
from imageservice.adapters.dynamodb_items import (
    GENERATION_PREFIX,
    GENERATIONS,
    KEY_PREFIX,
    claim_item,
    generation_from_item,
    generation_item,
    generation_pk,
    key_pk,
    number,
    record_from_item,
    string,
)
from imageservice.domain.errors import StorageOutcomeUnknown
from imageservice.domain.idempotency import Claim, ClaimResult, ClaimTerms, IdempotencyRecord, KeyStatus
from imageservice.domain.model import Generation

__all__ = ["DynamoDbRepository"]

_T = TypeVar("_T")
_CLAIM_CONDITION = (
    "attribute_not_exists(pk) OR expires_at < :now"
    " OR (#status = :in_progress AND in_progress_expires_at < :now)"
)


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _retried(exc: ClientError) -> bool:
    return bool(exc.response.get("ResponseMetadata", {}).get("RetryAttempts"))


class DynamoDbRepository:
    def __init__(self, clients: AwsClients) -> None:
        self._clients = clients
        self._db = clients.dynamodb
        self._table = clients.settings.table

    async def _call(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        with permission_checked("DynamoDB", f"dynamodb:{self._table}"):
            return await self._clients.call(fn, *args, **kwargs)

    async def claim(self, terms: ClaimTerms) -> ClaimResult:
        record = IdempotencyRecord.claimed(terms)

        def work() -> ClaimResult:
            for _ in range(3):  # a record released between our put and our read: try again
                try:
                    self._db.put_item(
                        TableName=self._table,
                        Item=claim_item(record),
                        ConditionExpression=_CLAIM_CONDITION,
                        ExpressionAttributeNames={"#status": "status"},
                        ExpressionAttributeValues={
                            ":now": number(terms.now),
                            ":in_progress": string(KeyStatus.IN_PROGRESS.value),
                        },
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
                except ClientError as exc:
                    if error_code(exc) != "ConditionalCheckFailedException":
                        raise
                    old = exc.response.get("Item") or self._get_item(key_pk(record.key))
                    if old is None:
                        continue
                    existing = record_from_item(old)
                    if existing.held_by(record.owner):  # botocore retried our put after its answer was lost
                        return ClaimResult(claim=Claim(record))
                    return ClaimResult(existing=existing)
                return ClaimResult(claim=Claim(record))
            raise RuntimeError("the idempotency key kept changing under us")

        try:
            return await self._call(work)
        except (BotoCoreError, ClientError) as exc:
            if isinstance(exc, ClientError) and _status(exc) < 500 and not _retried(exc):
                raise  # refused at the first attempt (validation, throttling): nothing was written
            # botocore retried; any attempt before the last may have landed with its answer lost.
            raise StorageOutcomeUnknown("claiming the idempotency key failed; it may have landed") from exc

    def _get_item(self, key: dict[str, Any]) -> dict[str, Any] | None:
        response = self._db.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        item: dict[str, Any] | None = response.get("Item")
        return item

    async def complete(self, generation: Generation, claim: Claim | None, *, now: float) -> None:
        put = {
            "TableName": self._table,
            "Item": generation_item(generation, now),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        if claim is None:
            await self._call(self._db.put_item, **put)
            return
        update = {
            "TableName": self._table,
            "Key": key_pk(claim.record.key),
            "UpdateExpression": "SET #status = :completed, generation_id = :gid",
            "ConditionExpression": "#owner = :owner AND #status = :in_progress",
            "ExpressionAttributeNames": {"#status": "status", "#owner": "owner"},
            "ExpressionAttributeValues": {
                ":completed": string(KeyStatus.COMPLETED.value),
                ":gid": string(generation.id),
                ":owner": string(claim.record.owner),
                ":in_progress": string(KeyStatus.IN_PROGRESS.value),
            },
        }
        await self._call(
            self._db.transact_write_items, TransactItems=[{"Put": put}, {"Update": update}]
        )

    async def release(self, claim: Claim) -> None:
        def work() -> None:
            try:
                self._db.delete_item(
                    TableName=self._table,
                    Key=key_pk(claim.record.key),
                    ConditionExpression="#owner = :owner AND #status = :in_progress",
                    ExpressionAttributeNames={"#status": "status", "#owner": "owner"},
                    ExpressionAttributeValues={
                        ":owner": string(claim.record.owner),
                        ":in_progress": string(KeyStatus.IN_PROGRESS.value),
                    },
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise  # not ours any more (expired and re-claimed, or completed): nothing to release

        await self._call(work)

    async def get(self, generation_id: str) -> Generation | None:
        item = await self._call(self._get_item, generation_pk(generation_id))
        return generation_from_item(item) if item is not None else None

    async def list_recent(self, limit: int) -> list[Generation]:
        response = await self._call(
            self._db.query,
            TableName=self._table,
            IndexName=NEWEST_INDEX,
            KeyConditionExpression="gsi_pk = :g",
            ExpressionAttributeValues={":g": string(GENERATIONS)},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [generation_from_item(item) for item in response.get("Items", [])]

    async def held_keys(self) -> list[str]:
        """In-progress keys (for tests and operators): after a failed saga there must be none."""
        return [record.key for record in await self.all_keys() if record.status is KeyStatus.IN_PROGRESS]

    # ------------------------------------------------------------ for reconcile

    def _scan(self, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for page in self._db.get_paginator("scan").paginate(
            TableName=self._table,
            FilterExpression="begins_with(pk, :prefix)",
            ExpressionAttributeValues={":prefix": string(prefix)},
            ConsistentRead=True,
        ):
            items.extend(page.get("Items", []))
        return items

    async def all_generations(self) -> list[Generation]:
        return [generation_from_item(item) for item in await self._call(self._scan, GENERATION_PREFIX)]

    async def all_keys(self) -> list[IdempotencyRecord]:
        return [record_from_item(item) for item in await self._call(self._scan, KEY_PREFIX)]

    async def delete_generation(self, generation_id: str) -> None:
        await self._call(self._db.delete_item, TableName=self._table, Key=generation_pk(generation_id))

    async def drop_key(self, record: IdempotencyRecord) -> bool:
        condition = "#owner = :owner AND #status = :status"
        values = {":owner": string(record.owner), ":status": string(record.status.value)}
        if record.generation_id is not None:
            condition += " AND generation_id = :gid"
            values[":gid"] = string(record.generation_id)

        def work() -> bool:
            try:
                self._db.delete_item(
                    TableName=self._table,
                    Key=key_pk(record.key),
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#status": "status", "#owner": "owner"},
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                return False  # changed since it was read (completed, re-claimed): not ours to drop
            return True

        return await self._call(work)
