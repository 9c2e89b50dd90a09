"""The Lambda entry point with real-shaped API Gateway events (REST payload v1 and HTTP API v2)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from imageservice.entrypoints import lambda_handler
from imageservice.entrypoints.lambda_handler import LambdaApp
from imageservice.settings import Settings
from strangler_common.contract import validate
from strangler_common.shadowmark import sign


def rest_event(
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """API Gateway REST API, Lambda proxy integration (payload format 1.0)."""
    headers = {
        "Host": "abc123.execute-api.eu-west-1.amazonaws.com",
        "User-Agent": "curl/8.5.0",
        "X-Forwarded-Proto": "https",
        **(headers or {}),
    }
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "2gxmpl",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "e0ab4d1a-0b5b-4b5f-9f9f-5d0f5e0c1a11",
            "accountId": "123456789012",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "curl/8.5.0"},
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": 1800000000000,
            "apiId": "abc123",
        },
        "body": body,
        "isBase64Encoded": False,
    }


def http_event(
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
    base64_body: bool = False,
) -> dict[str, Any]:
    """API Gateway HTTP API (payload format 2.0): lower-case headers, rawPath, rawQueryString."""
    headers = {
        "host": "abc123.execute-api.eu-west-1.amazonaws.com",
        "user-agent": "curl/8.5.0",
        **{k.lower(): v for k, v in (headers or {}).items()},
    }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "29/Nov/2026:05:00:00 +0000",
            "timeEpoch": 1800000000000,
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    if body is not None:
        event["body"] = base64.b64encode(body.encode()).decode() if base64_body else body
    return event


@pytest.fixture
def app(tmp_path: Path) -> Iterator[LambdaApp]:
    lambda_app = LambdaApp(Settings(data_dir=tmp_path))
    yield lambda_app
    lambda_app.close()


JSON = {"Content-Type": "application/json"}
BODY = json.dumps({"prompt": "a paper boat", "n": 2, "size": "256x256"})


@pytest.mark.parametrize("shape", ["rest", "http"])
def test_every_route_answers_through_lambda_events(app: LambdaApp, shape: str) -> None:
    if shape == "rest":
        created = app(
            rest_event("POST", "/api/images", body=BODY, headers={**JSON, "X-Request-ID": "lambda-1"})
        )
    else:
        created = app(
            http_event(
                "POST",
                "/api/images",
                body=BODY,
                headers={**JSON, "X-Request-ID": "lambda-1"},
                base64_body=True,
            )
        )
    assert created["statusCode"] == 201
    assert created["headers"]["X-Request-ID"] == "lambda-1"
    generation = json.loads(created["body"])
    validate("Generation", generation)

    event = rest_event if shape == "rest" else http_event
    fetched = app(event("GET", f"/api/images/{generation['id']}"))
    assert fetched["statusCode"] == 200
    assert json.loads(fetched["body"]) == generation

    listing = app(
        rest_event("GET", "/api/images", query={"limit": "5"})
        if shape == "rest"
        else http_event("GET", "/api/images", query="limit=5")
    )
    assert json.loads(listing["body"]) == {"items": [generation]}

    image = generation["images"][0]
    file = app(event("GET", image["url"]))
    assert file["statusCode"] == 200
    assert file["isBase64Encoded"] is True
    assert file["headers"]["Content-Type"] == "image/png"
    assert hashlib.sha256(base64.b64decode(file["body"])).hexdigest() == image["sha256"]

    health = app(event("GET", "/healthz"))
    assert health["statusCode"] == 200
    assert json.loads(health["body"]) == {"status": "ok"}

    metrics = app(event("GET", "/metrics"))
    assert "imageservice_images_total 2.0" in metrics["body"]


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (rest_event("GET", "/api/images/img_missing"), 404, "not_found"),
        (http_event("GET", "/api/images/files/..%2F..%2Fetc%2Fpasswd"), 404, "not_found"),
        (rest_event("GET", "/nowhere"), 404, "not_found"),
        (http_event("DELETE", "/api/images/img_x"), 405, "method_not_allowed"),
        (rest_event("POST", "/api/images", body="{}", headers=JSON), 400, "invalid_request"),
        (
            http_event("POST", "/api/images", body="prompt=x", headers={"Content-Type": "text/plain"}),
            415,
            "unsupported_media_type",
        ),
        (rest_event("POST", "/api/images", body="x" * 70000, headers=JSON), 413, "payload_too_large"),
        (http_event("GET", "/api/images", query="limit=abc"), 400, "invalid_request"),
    ],
)
def test_errors_have_the_contract_shape(
    app: LambdaApp, event: dict[str, Any], status: int, code: str
) -> None:
    response = app(event)
    assert response["statusCode"] == status
    assert json.loads(response["body"])["error"]["code"] == code


def test_idempotency_works_the_same_through_lambda(app: LambdaApp) -> None:
    headers = {**JSON, "Idempotency-Key": "lambda-key"}
    first = app(rest_event("POST", "/api/images", body=BODY, headers=headers))
    again = app(http_event("POST", "/api/images", body=BODY, headers=headers))
    other = app(rest_event("POST", "/api/images", body=json.dumps({"prompt": "x"}), headers=headers))

    assert first["body"] == again["body"]
    assert again["headers"]["Idempotent-Replayed"] == "true"
    assert other["statusCode"] == 422


def test_warm_invocations_reuse_one_event_loop(app: LambdaApp) -> None:
    app(rest_event("GET", "/healthz"))
    loop = app.loop
    app(http_event("GET", "/healthz"))
    assert loop is not None
    assert app.loop is loop
    assert not loop.is_closed()


def test_the_module_handler_builds_from_the_environment_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGESERVICE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(lambda_handler, "_app", None)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", root.handlers[:])  # the handler configures logging: undo it after
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(logging.getLogger("aiohttp.access"), "disabled", False)
    saved_structlog = structlog.get_config()
    try:
        response = lambda_handler.handler(http_event("POST", "/api/images", body=BODY, headers=JSON), None)
        assert response["statusCode"] == 201
        assert (tmp_path / "images").is_dir()
    finally:
        built = lambda_handler._app
        if built is not None:
            built.close()
        structlog.configure(**saved_structlog)


def test_a_named_stage_prefix_and_multi_value_only_headers_are_understood(app: LambdaApp) -> None:
    staged = http_event("GET", "/prod/healthz")
    staged["requestContext"]["stage"] = "prod"
    assert app(staged)["statusCode"] == 200

    event = rest_event("POST", "/api/images", body=BODY)
    event["headers"] = None
    event["multiValueHeaders"] = {"Content-Type": ["application/json"]}
    assert app(event)["statusCode"] == 201


@pytest.mark.parametrize("shape", ["rest", "http"])
def test_behind_api_gateway_only_a_signed_marker_makes_a_shadow_copy(tmp_path: Path, shape: str) -> None:
    """API Gateway reaches the Lambda without the proxy: a client's marker must not skip storage."""
    key = b"a-lambda-shadow-key-0123456789abcdef"
    event = rest_event if shape == "rest" else http_event
    lambda_app = LambdaApp(Settings(data_dir=tmp_path, shadow_key=key))
    try:
        forged = {**JSON, "X-Request-ID": "r-1", "X-Strangler-Shadow": "1", "Idempotency-Key": "k1"}
        stored = app_json(lambda_app(event("POST", "/api/images", body=BODY, headers=forged)))
        assert lambda_app(event("GET", f"/api/images/{stored['id']}"))["statusCode"] == 200
        reused = lambda_app(event("POST", "/api/images", body=json.dumps({"prompt": "x"}), headers=forged))
        assert reused["statusCode"] == 422  # the forged request claimed its key like any other

        marker = sign(key, "r-2", now=time.time())
        genuine = {**JSON, "X-Request-ID": "r-2", "X-Strangler-Shadow": marker, "Idempotency-Key": "k2"}
        copy = app_json(lambda_app(event("POST", "/api/images", body=BODY, headers=genuine)))
        assert lambda_app(event("GET", f"/api/images/{copy['id']}"))["statusCode"] == 404
    finally:
        lambda_app.close()


def app_json(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 201, response
    return dict(json.loads(response["body"]))


def test_background_settling_left_when_an_invocation_ends_is_logged_not_silent(tmp_path: Path) -> None:
    from imageservice.bootstrap import Overrides
    from tests.unit.imageservice.fakes import (
        FakeGenerator,
        Faults,
        FlakyBlobStore,
        FlakyRepository,
        InMemoryBlobStore,
        InMemoryRepository,
    )

    faults = Faults()
    faults.fail("put")
    faults.fail("release")  # the key cannot be released before the invocation returns
    overrides = Overrides(
        generator=FakeGenerator(),
        blobs=FlakyBlobStore(InMemoryBlobStore(), faults),
        repository=FlakyRepository(InMemoryRepository(), faults),
    )
    lambda_app = LambdaApp(Settings(data_dir=tmp_path, shutdown_settle_s=0.01), overrides=overrides)
    try:
        with structlog.testing.capture_logs() as logs:
            keyed = {**JSON, "Idempotency-Key": "k"}
            answer = lambda_app(rest_event("POST", "/api/images", body=BODY, headers=keyed))
    finally:
        lambda_app.close()

    assert answer["statusCode"] == 503
    (paused,) = [line for line in logs if line["event"] == "background_settling_paused"]
    assert paused["log_level"] == "warning"
    assert paused["jobs"] == 1
