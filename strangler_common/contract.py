"""The image API contract (contracts/images.yaml, OpenAPI 3.1) and request validation against it.

Both implementations validate `POST /api/images` bodies with the schema in the document itself,
so the document cannot drift from what the services accept.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_CONTRACT_URI = "urn:strangler:contracts:images"
SIZES = ("256x256", "512x512", "1024x1024")


class InvalidRequest(ValueError):
    """A request body the contract refuses; `field` names the culprit (empty for the whole body)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


@dataclass(frozen=True, slots=True)
class GenerateParams:
    prompt: str
    n: int
    size: str


def contract_text() -> str:
    return files("strangler_common").joinpath("contracts/images.yaml").read_text(encoding="utf-8")


@cache
def load_contract() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(contract_text())
    return document


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    resource = Resource.from_contents(load_contract(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_CONTRACT_URI, resource)
    return Draft202012Validator(
        {"$ref": f"{_CONTRACT_URI}#/components/schemas/{schema_name}"}, registry=registry
    )


def _describe(error: ValidationError) -> InvalidRequest:
    field = ".".join(str(part) for part in error.absolute_path)
    kind = error.validator
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return InvalidRequest(missing, "is required")
    if kind == "additionalProperties":
        extras = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return InvalidRequest(extras[0] if extras else field, "is not a known field")
    if kind == "type":
        return InvalidRequest(field, f"must be of type {error.validator_value}")
    if kind == "enum":
        return InvalidRequest(field, "must be one of " + ", ".join(map(str, error.validator_value)))
    if kind in {"minimum", "maximum"}:
        schema = error.schema
        return InvalidRequest(field, f"must be between {schema.get('minimum')} and {schema.get('maximum')}")
    if kind in {"minLength", "maxLength"}:
        schema = error.schema
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        return InvalidRequest(field, f"must be {low} to {high} characters long")
    return InvalidRequest(field, error.message)


def validate(schema_name: str, instance: object) -> None:
    """Raise InvalidRequest for the first (most relevant) violation of a contract schema."""
    validator = _validator(schema_name)
    errors = sorted(validator.iter_errors(instance), key=lambda e: (len(e.absolute_path), str(e.path)))
    if errors:
        raise _describe(errors[0])


def parse_generate_request(payload: object) -> GenerateParams:
    """Validate a decoded JSON body of POST /api/images and apply the contract's defaults."""
    if not isinstance(payload, dict):
        raise InvalidRequest("", "the body must be a JSON object")
    validate("GenerateRequest", payload)
    # bool is an int subclass in Python but not in JSON Schema; jsonschema already refuses it.
    # JSON Schema counts 2.0 as an integer, so int() it: callers get the int the dataclass promises.
    return GenerateParams(
        prompt=payload["prompt"], n=int(payload.get("n", 1)), size=payload.get("size", "1024x1024")
    )
