"""The domain errors of image generation: everything the service layer reports, each with its code.

`code` is the image API contract's error code; which HTTP status it becomes is the entry points'
business (entrypoints/api.py), not this module's.
"""

from __future__ import annotations

__all__ = [
    "ContentPolicy",
    "DomainError",
    "GeneratorFailure",
    "GeneratorTimeout",
    "GeneratorUnavailable",
    "InProgress",
    "InvalidInput",
    "KeyReused",
    "NotFound",
    "Overloaded",
    "RateLimited",
    "StorageFailure",
    "StorageOutcomeUnknown",
    "StoragePermissionDenied",
]


class DomainError(Exception):
    """Base of every error the service layer reports; `code` is the contract's error code."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    code = "invalid_request"


class NotFound(DomainError):
    code = "not_found"


class InProgress(DomainError):
    code = "in_progress"


class KeyReused(DomainError):
    code = "idempotency_key_reused"


class Overloaded(DomainError):
    code = "overloaded"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class GeneratorFailure(DomainError):
    """A generator could not deliver; subclasses say why."""

    code = "generator_error"


class ContentPolicy(GeneratorFailure):
    code = "content_policy"


class RateLimited(GeneratorFailure):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class GeneratorUnavailable(GeneratorFailure):
    code = "generator_unavailable"


class GeneratorTimeout(GeneratorFailure):
    code = "generator_timeout"


class StorageFailure(DomainError):
    code = "storage_unavailable"


class StorageOutcomeUnknown(StorageFailure):
    """A write failed without saying whether it landed: its answer was lost, or the store's client
    retried it and a later attempt failed after an earlier one may have gone through."""


class StoragePermissionDenied(StorageFailure):
    """The store refused the service's own credentials for an operation: a deployment misconfiguration
    (a missing IAM permission), neither a missing item nor an outage, so retrying will not help."""

    code = "storage_permission_denied"

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"the image service's storage credentials lack permission for {operation}: "
            "a deployment misconfiguration (see the service's log for the resource)"
        )
        self.operation = operation
