"""routes.yaml: its YAML dialect with line numbers, the schema (pydantic, strict, frozen), the rules that
span fields, loading with file:line errors, and the pure helpers the schema needs (path normalization,
the shadow field-path language, the reload settle rule).

Pure: no aiohttp, no os, no logging. Reading the file (loader.load_config) is its only I/O. Everything
config-related is imported from here; the modules say who owns what.
"""

from proxy.config.loader import (
    Config,
    ConfigError,
    Flag,
    Issue,
    Limits,
    LoadedConfig,
    Match,
    Rollout,
    Route,
    Upstream,
    load_config,
    parse_config,
)

__all__ = [
    "Config", "ConfigError", "Flag", "Issue", "Limits", "LoadedConfig", "Match", "Rollout", "Route",
    "Upstream", "load_config", "parse_config",
]
