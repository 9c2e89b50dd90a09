"""How the stores write a Generation and an idempotency record down, and read them back."""

from __future__ import annotations

import json
from typing import Any

from imageservice.domain.idempotency import IdempotencyRecord, KeyStatus
from imageservice.domain.model import Generation, ImageRecord, Size, Status

__all__ = ["generation_from_fields", "images_to_json", "record_from_fields"]


def images_to_json(generation: Generation) -> str:
    return json.dumps(
        [
            {"name": i.name, "width": i.width, "height": i.height, "bytes": i.bytes, "sha256": i.sha256}
            for i in generation.images
        ],
        separators=(",", ":"),
    )


def generation_from_fields(
    *, generation_id: str, created: int, prompt: str, size: str, images_json: str
) -> Generation:
    images = tuple(
        ImageRecord(
            name=i["name"], width=i["width"], height=i["height"], bytes=i["bytes"], sha256=i["sha256"]
        )
        for i in json.loads(images_json)
    )
    return Generation(
        id=generation_id,
        created=int(created),
        prompt=prompt,
        size=Size.parse(size),
        n=len(images),
        images=images,
        status=Status.COMPLETED,
    )


def record_from_fields(fields: dict[str, Any]) -> IdempotencyRecord:
    generation_id = fields.get("generation_id")
    return IdempotencyRecord(
        key=str(fields["key"]),
        fingerprint=str(fields["fingerprint"]),
        status=KeyStatus(str(fields["status"])),
        owner=str(fields["owner"]),
        expires_at=float(fields["expires_at"]),
        in_progress_expires_at=float(fields["in_progress_expires_at"]),
        generation_id=str(generation_id) if generation_id else None,
    )
