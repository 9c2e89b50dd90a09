"""A store refusing the service's credentials is a 500 `storage_permission_denied`, never a 404.

moto (server mode, over HTTP) enforces IAM here: the service runs as an IAM user whose policy allows
what the service does, with an explicit Deny where a test wants a refusal. A missing object stays a 404.
(moto does not emulate S3's "403 for a missing key without s3:ListBucket"; tests/deploy checks the SAM
policy for that.)
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from botocore.config import Config
from structlog.testing import capture_logs

from imageservice.adapters.aws import AwsClients, AwsSettings
from imageservice.adapters.dynamodb_repo import DynamoDbRepository
from imageservice.entrypoints.http import create_app
from imageservice.settings import Settings
from strangler_common.contract import validate

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]
Statement = dict[str, Any]
Restrict = Callable[..., Awaitable[Client]]


def set_iam_enforcement(endpoint: str, *, on: bool) -> None:
    """moto's switch: authenticate and authorise every request from now on (or none)."""
    request = urllib.request.Request(  # noqa: S310 - loopback moto only
        f"{endpoint}/moto-api/reset-auth",
        data=b"0" if on else b"inf",
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback moto only
        assert response.status == 200


def service_policy(bucket: str, *extra: Statement) -> list[Statement]:
    """What the service needs. moto checks DynamoDB actions against resource "*" only, hence the "*"."""
    return [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": f"arn:aws:s3:::{bucket}/images/*",
        },
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{bucket}"},
        {"Effect": "Allow", "Action": ["dynamodb:*"], "Resource": "*"},
        *extra,
    ]


def admin(settings: AwsSettings, service: str) -> Any:
    """A client with the fixture's credentials, for setting the scene before IAM is enforced."""
    config = Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required")
    return boto3.client(
        service, endpoint_url=settings.endpoint_url, region_name=settings.region, config=config
    )


def blob_name() -> str:
    return f"img_{uuid.uuid4().hex}_0.png"


@pytest.fixture
def restricted(
    aws_settings: AwsSettings,
    aiohttp_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Restrict]:
    """Start the image service as an IAM user with only `statements`, with moto enforcing IAM."""
    endpoint = aws_settings.endpoint_url
    assert endpoint is not None

    async def start(*statements: Statement) -> Client:
        iam = admin(aws_settings, "iam")
        iam.create_user(UserName="imageservice")
        iam.put_user_policy(
            UserName="imageservice",
            PolicyName="imageservice",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
        )
        key = iam.create_access_key(UserName="imageservice")["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        set_iam_enforcement(endpoint, on=True)
        settings = Settings(
            storage="aws",
            s3_bucket=aws_settings.bucket,
            dynamodb_table=aws_settings.table,
            aws_endpoint_url=endpoint,
            data_dir=tmp_path,
        )
        return await aiohttp_client(create_app(settings))

    yield start
    set_iam_enforcement(endpoint, on=False)  # the moto server is shared by the whole session


async def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    validate("Error", body)
    error: dict[str, Any] = body["error"]
    return error


async def test_with_the_services_own_permissions_a_missing_image_is_a_404(
    restricted: Restrict, aws_settings: AwsSettings
) -> None:
    client = await restricted(*service_policy(aws_settings.bucket))

    created = await client.post("/api/images", json={"prompt": "allowed", "size": "256x256"})
    assert created.status == 201, await created.text()
    assert (await client.get((await created.json())["images"][0]["url"])).status == 200

    missing_file = await error_of(await client.get(f"/api/images/files/{blob_name()}"), 404)
    missing_generation = await error_of(await client.get(f"/api/images/img_{uuid.uuid4().hex}"), 404)
    assert missing_file["code"] == missing_generation["code"] == "not_found"


async def test_an_image_the_credentials_may_not_read_is_a_500_permission_error_never_a_404(
    restricted: Restrict, aws_settings: AwsSettings
) -> None:
    name = blob_name()
    admin(aws_settings, "s3").put_object(Bucket=aws_settings.bucket, Key=f"images/{name}", Body=b"png")
    deny = {
        "Effect": "Deny",
        "Action": ["s3:GetObject"],
        "Resource": f"arn:aws:s3:::{aws_settings.bucket}/images/{name}",
    }
    client = await restricted(*service_policy(aws_settings.bucket, deny))

    with capture_logs() as logs:
        error = await error_of(await client.get(f"/api/images/files/{name}"), 500)

    assert error["code"] == "storage_permission_denied"
    assert "lack permission for S3 GetObject" in error["message"]
    assert "not found" not in error["message"].lower()
    (logged,) = [entry for entry in logs if entry["event"] == "storage_permission_denied"]
    assert logged["log_level"] == "error"
    assert logged["operation"] == "S3 GetObject"
    assert logged["resource"] == f"s3://{aws_settings.bucket}/images/{name}"
    assert logged["aws_error"] == "AccessDenied"
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in repr(logs)


async def test_a_generation_read_refused_by_dynamodb_is_the_same_permission_error(
    restricted: Restrict, aws_settings: AwsSettings
) -> None:
    deny = {"Effect": "Deny", "Action": ["dynamodb:GetItem"], "Resource": "*"}
    client = await restricted(*service_policy(aws_settings.bucket, deny))

    with capture_logs() as logs:
        error = await error_of(await client.get(f"/api/images/img_{uuid.uuid4().hex}"), 500)

    assert error["code"] == "storage_permission_denied"
    assert "DynamoDB GetItem" in error["message"]
    (logged,) = [entry for entry in logs if entry["event"] == "storage_permission_denied"]
    assert logged["resource"] == f"dynamodb:{aws_settings.table}"


async def test_a_generation_whose_images_may_not_be_written_is_refused_and_releases_its_key(
    restricted: Restrict, aws_settings: AwsSettings
) -> None:
    deny = {"Effect": "Deny", "Action": ["s3:PutObject"], "Resource": "*"}
    client = await restricted(*service_policy(aws_settings.bucket, deny))

    response = await client.post(
        "/api/images", json={"prompt": "refused", "size": "256x256"}, headers={"Idempotency-Key": "k-1"}
    )

    error = await error_of(response, 500)
    assert error["code"] == "storage_permission_denied"
    assert "S3 PutObject" in error["message"]
    assert (await (await client.get("/api/images")).json())["items"] == []
    assert aws_settings.endpoint_url is not None
    set_iam_enforcement(aws_settings.endpoint_url, on=False)
    clients = AwsClients(aws_settings)
    try:
        assert await DynamoDbRepository(clients).held_keys() == []  # the saga released the key
    finally:
        clients.close()
