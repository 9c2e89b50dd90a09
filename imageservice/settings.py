"""The service's settings, read from the environment once, at startup (never at import time).

The API key is held in a `Secret` whose repr never shows it, so printing or logging Settings is safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from strangler_common.envsecret import SecretError, shadow_key

__all__ = ["MAX_BODY_BYTES", "Secret", "Settings", "SettingsError"]

MAX_BODY_BYTES = 64 * 1024


class SettingsError(ValueError):
    pass


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class Settings:
    generator: str = "local"  # local | openai
    storage: str = "local"  # local | aws
    data_dir: Path = Path("var/imageservice")
    max_concurrency: int = 8
    max_queue: int = 32
    retry_after_s: int = 1
    local_delay_s: float = 0.0
    idempotency_ttl_s: float = 24 * 3600
    in_progress_ttl_s: float = 900.0  # longer than the worst OpenAI budget (timeout x attempts + waits)
    openai_model: str = "gpt-image-2.5-flare"
    openai_base_url: str | None = None
    openai_api_key: Secret | None = field(default=None, repr=False)
    openai_timeout_s: float = 120.0
    openai_max_retries: int = 2
    openai_max_retry_wait_s: float = 20.0
    s3_bucket: str = "imageservice-images"
    dynamodb_table: str = "imageservice"
    aws_region: str = "us-east-1"
    aws_endpoint_url: str | None = None
    aws_max_workers: int = 16
    aws_connect_timeout_s: float = 5.0
    aws_read_timeout_s: float = 30.0
    aws_max_attempts: int = 4  # in all, the first included (botocore's `total_max_attempts`)
    settle_attempts: int = 12  # background key releases and unknown commits: ~2 minutes in all
    settle_backoff_s: float = 0.5
    settle_max_backoff_s: float = 15.0
    shutdown_settle_s: float = 10.0
    shadow_key: bytes | None = field(default=None, repr=False)  # verifies the proxy's shadow marker

    def __post_init__(self) -> None:
        if self.generator not in {"local", "openai"}:
            raise SettingsError("IMAGESERVICE_GENERATOR must be local or openai")
        if self.storage not in {"local", "aws"}:
            raise SettingsError("IMAGESERVICE_STORAGE must be local or aws")
        if self.max_concurrency < 1 or self.max_queue < 0:
            raise SettingsError("IMAGESERVICE_MAX_CONCURRENCY must be >= 1 and IMAGESERVICE_MAX_QUEUE >= 0")
        if self.openai_max_retries < 0 or self.openai_timeout_s <= 0:
            raise SettingsError("the OpenAI timeout must be > 0 and its retries >= 0")
        if self.aws_max_attempts < 1 or min(self.aws_connect_timeout_s, self.aws_read_timeout_s) <= 0:
            raise SettingsError("the AWS timeouts must be > 0 and IMAGESERVICE_AWS_MAX_ATTEMPTS >= 1")
        if self.settle_attempts < 1 or min(self.settle_backoff_s, self.settle_max_backoff_s) < 0:
            raise SettingsError("IMAGESERVICE_SETTLE_ATTEMPTS must be >= 1 and its backoffs >= 0")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        def get(name: str, default: str | None = None) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else default

        def number(name: str, default: float, kind: type[int] | type[float] = float) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                return kind(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a number, got {raw!r}") from None

        return cls(
            generator=get("IMAGESERVICE_GENERATOR", "local") or "local",
            storage=get("IMAGESERVICE_STORAGE", "local") or "local",
            data_dir=Path(get("IMAGESERVICE_DATA_DIR", "var/imageservice") or "var/imageservice"),
            max_concurrency=int(number("IMAGESERVICE_MAX_CONCURRENCY", 8, int)),
            max_queue=int(number("IMAGESERVICE_MAX_QUEUE", 32, int)),
            retry_after_s=int(number("IMAGESERVICE_RETRY_AFTER_S", 1, int)),
            local_delay_s=number("IMAGESERVICE_LOCAL_DELAY_S", 0.0),
            idempotency_ttl_s=number("IMAGESERVICE_IDEMPOTENCY_TTL_S", 24 * 3600),
            in_progress_ttl_s=number("IMAGESERVICE_IN_PROGRESS_TTL_S", 900),
            openai_model=get("IMAGESERVICE_OPENAI_MODEL", "gpt-image-2.5-flare") or "gpt-image-2.5-flare",
            openai_base_url=get("OPENAI_BASE_URL"),
            openai_api_key=_api_key(get("OPENAI_API_KEY"), get("OPENAI_API_KEY_FILE")),
            openai_timeout_s=number("IMAGESERVICE_OPENAI_TIMEOUT_S", 120.0),
            openai_max_retries=int(number("IMAGESERVICE_OPENAI_MAX_RETRIES", 2, int)),
            openai_max_retry_wait_s=number("IMAGESERVICE_OPENAI_MAX_RETRY_WAIT_S", 20.0),
            s3_bucket=get("IMAGESERVICE_S3_BUCKET", "imageservice-images") or "imageservice-images",
            dynamodb_table=get("IMAGESERVICE_DYNAMODB_TABLE", "imageservice") or "imageservice",
            aws_region=get("AWS_REGION") or get("AWS_DEFAULT_REGION") or "us-east-1",
            aws_endpoint_url=get("AWS_ENDPOINT_URL"),
            aws_max_workers=int(number("IMAGESERVICE_AWS_MAX_WORKERS", 16, int)),
            aws_connect_timeout_s=number("IMAGESERVICE_AWS_CONNECT_TIMEOUT_S", 5.0),
            aws_read_timeout_s=number("IMAGESERVICE_AWS_READ_TIMEOUT_S", 30.0),
            aws_max_attempts=int(number("IMAGESERVICE_AWS_MAX_ATTEMPTS", 4, int)),
            settle_attempts=int(number("IMAGESERVICE_SETTLE_ATTEMPTS", 12, int)),
            settle_backoff_s=number("IMAGESERVICE_SETTLE_BACKOFF_S", 0.5),
            settle_max_backoff_s=number("IMAGESERVICE_SETTLE_MAX_BACKOFF_S", 15.0),
            shutdown_settle_s=number("IMAGESERVICE_SHUTDOWN_SETTLE_S", 10.0),
            shadow_key=_shadow_key(env),
        )


def _shadow_key(env: Mapping[str, str]) -> bytes | None:
    try:
        return shadow_key(env)
    except SecretError as exc:
        raise SettingsError(str(exc)) from None


def _api_key(value: str | None, file_name: str | None) -> Secret | None:
    if value:
        return Secret(value.strip())
    if file_name:
        try:
            text = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"OPENAI_API_KEY_FILE cannot be read ({exc.strerror})") from None
        return Secret(text) if text else None
    return None
