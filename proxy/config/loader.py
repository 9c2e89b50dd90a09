"""routes.yaml: load it, validate it, and report every error at its file and line.

Owns: ConfigError, LoadedConfig, parse_config(), load_config(); re-exports the models of
schema.py and routes.py so callers import everything config-related from here.
Does not own: the YAML dialect and line bookkeeping (yamlsource.py), the models (schema.py),
the cross-field rules (checks.py), turning a Config into a route table (the routing package).

Every error reads `routes.yaml:14: routes[0].rollout.percent: must be between 0 and 100`. All
errors are reported together, sorted by line.
"""

from __future__ import annotations

import hashlib
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from proxy.config.checks import Issue, cross_checks, describe_pydantic_error
from proxy.config.resilience import Limits
from proxy.config.routes import Flag, Match, Rollout
from proxy.config.schema import Config, Route, Upstream
from proxy.config.yamlsource import YamlSyntaxError, format_path, read_yaml

__all__ = [
    "Config", "ConfigError", "Flag", "Issue", "Limits", "LoadedConfig", "Match", "Rollout", "Route",
    "Upstream", "load_config", "parse_bytes", "parse_config",
]


class ConfigError(Exception):
    """The config is unusable. `errors`: every problem as 'file:line: path: message'."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = sorted(set(issues), key=lambda issue: (issue.line, issue.path, issue.message))
        self.errors = [str(issue) for issue in self.issues]
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    path: str
    text: str
    sha256: str
    loaded_at: float


def parse_config(text: str, *, filename: str = "routes.yaml") -> Config:
    """Validate `text` completely; raise ConfigError listing every problem with its line."""
    try:
        doc = read_yaml(text)
    except YamlSyntaxError as exc:
        raise ConfigError([Issue(filename, exc.line, "(yaml)", exc.message)]) from None
    issues = [Issue(filename, p.line, format_path(p.path), p.message) for p in doc.problems]
    if not isinstance(doc.data, dict):
        what = "the file is empty" if doc.data is None else "the top level is not a mapping"
        issues.append(Issue(filename, doc.line_of(()), "(root)",
                            f"{what}: expected a mapping with version, upstreams and default_upstream"))
        raise ConfigError(issues)
    for path, message in cross_checks(doc.data):
        issues.append(Issue(filename, doc.line_of(path), format_path(path), message))
    try:
        config = Config.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors():
            if error["type"] == "cross_check":
                continue  # already reported above, with precise paths
            path = tuple(part for part in error["loc"] if part != "[key]")
            message = describe_pydantic_error(error)
            issues.append(Issue(filename, doc.line_of(path), format_path(path), message))
        raise ConfigError(issues) from None
    if issues:
        raise ConfigError(issues)
    return config


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate the file at `path`; errors name it as it was given."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([Issue(name, 1, "(file)", f"cannot read: {exc.strerror or exc}")]) from None
    return parse_bytes(raw, name)


def parse_bytes(raw: bytes, name: str, *, sha256: str | None = None) -> LoadedConfig:
    """Validate the bytes of a file already read (`sha256`: their digest, when the caller has it)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([Issue(name, line, "(file)", "is not valid UTF-8")]) from None
    config = parse_config(text, filename=name)
    file_issues = _bundle_issues(config, text, name)
    if file_issues:
        raise ConfigError(file_issues)
    digest = sha256 if sha256 is not None else hashlib.sha256(raw).hexdigest()
    return LoadedConfig(config=config, path=name, text=text, sha256=digest, loaded_at=time.time())


def _bundle_issues(config: Config, text: str, name: str) -> list[Issue]:
    """What only the file system can tell (so not parse_config, which stays pure): every upstream's
    ca_bundle is a readable PEM file of CA certificates. Checked at start and on every reload, so a
    bad bundle keeps the last good config serving instead of failing the first request."""
    wanted = [(upstream, spec.ca_bundle) for upstream, spec in config.upstreams.items() if spec.ca_bundle]
    if not wanted:
        return []
    doc = read_yaml(text)
    issues = []
    for upstream, bundle in wanted:
        try:
            ssl.create_default_context(cafile=bundle)
        except OSError as exc:  # ssl.SSLError is an OSError: not PEM, or no certificate in it
            reason = exc.strerror or getattr(exc, "reason", None) or str(exc)
            path = ("upstreams", upstream, "ca_bundle")
            message = f"cannot use {bundle!r} as a CA bundle: {reason}"
            issues.append(Issue(name, doc.line_of(path), format_path(path), message))
    return issues
