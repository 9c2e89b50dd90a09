"""How generations and idempotency records look as items of the DynamoDB table, and how they read back.

Items: `gen#<id>` (a generation, with the `newest` index's `gsi_pk`/`gsi_sk`: one partition, newest
first) and `idem#<key>` (an idempotency record, with a `ttl` attribute DynamoDB's TTL tidies up by).
Attribute values only: the calls, their conditions and their errors are dynamodb_repo.py's.
"""

from __future__ import annotations

import math
from typing import Any

from imageservice.adapters.codec import generation_from_fields, images_to_json, record_from_fields
from imageservice.domain.idempotency import IdempotencyRecord
from imageservice.domain.model import Generation

__all__ = [
    "GENERATIONS",
    "GENERATION_PREFIX",
    "KEY_PREFIX",
    "claim_item",
    "generation_from_item",
    "generation_item",
    "generation_pk",
    "key_pk",
    "number",
    "record_from_item",
    "string",
]

GENERATIONS = "generations"  # the one partition of the `newest` index
GENERATION_PREFIX = "gen#"
KEY_PREFIX = "idem#"


def string(value: str) -> dict[str, str]:
    return {"S": value}


def number(value: float) -> dict[str, str]:
    return {"N": repr(float(value)) if not float(value).is_integer() else str(int(value))}


def generation_pk(generation_id: str) -> dict[str, dict[str, str]]:
    return {"pk": string(f"{GENERATION_PREFIX}{generation_id}")}


def key_pk(key: str) -> dict[str, dict[str, str]]:
    return {"pk": string(f"{KEY_PREFIX}{key}")}


def generation_item(generation: Generation, now: float) -> dict[str, Any]:
    return {
        **generation_pk(generation.id),
        "id": string(generation.id),
        "created": number(generation.created),
        "prompt": string(generation.prompt),
        "size": string(str(generation.size)),
        "images": string(images_to_json(generation)),
        "gsi_pk": string(GENERATIONS),
        "gsi_sk": string(f"{int(now * 1000):015d}#{generation.id}"),
    }


def claim_item(record: IdempotencyRecord) -> dict[str, Any]:
    """The item a fresh claim puts: the record, plus `ttl` (whole seconds) for DynamoDB's TTL."""
    return {
        **key_pk(record.key),
        "key": string(record.key),
        "fingerprint": string(record.fingerprint),
        "status": string(record.status.value),
        "owner": string(record.owner),
        "expires_at": number(record.expires_at),
        "in_progress_expires_at": number(record.in_progress_expires_at),
        "ttl": number(math.ceil(record.expires_at)),
        **({"generation_id": string(record.generation_id)} if record.generation_id else {}),
    }


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: (value.get("S") if "S" in value else value.get("N")) for name, value in item.items()}


def generation_from_item(item: dict[str, Any]) -> Generation:
    fields = _plain(item)
    return generation_from_fields(
        generation_id=fields["id"],
        created=int(float(fields["created"])),
        prompt=fields["prompt"],
        size=fields["size"],
        images_json=fields["images"],
    )


def record_from_item(item: dict[str, Any]) -> IdempotencyRecord:
    return record_from_fields(_plain(item))
