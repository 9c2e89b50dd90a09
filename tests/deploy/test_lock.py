"""requirements.lock, the exact versions every install takes (`make run`, `make test`, CI, the images): pip
accepts it as a constraints file, it pins every package pyproject.toml declares, and the environment these
tests run in was installed from it, so an install that drifted from the lock fails here. Also: pyproject.toml
declares every package the code imports, not only those it happens to get through another one."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from tests.deploy.tools import REPO

LOCK = REPO / "requirements.lock"
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")
PROJECT = "txt2img-strangler"
# `python -m venv` seeds these before the lock is used; nothing the project runs imports them. A locked
# version, if the lock ever pins one, is still checked.
VENV_SEEDS = {"setuptools", "wheel"}
REFRESH = "`make lock` refreshes the lock from pyproject.toml; `make clean test` rebuilds .venv from it"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, raw in enumerate(LOCK.read_text().splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN.fullmatch(line)
        assert match, (
            f"requirements.lock:{number}: {raw!r} is not `name==version`; pip refuses extras, editables and "
            f"options in a constraints file. {REFRESH}"
        )
        name = canonical(match[1])
        assert name not in pins, f"requirements.lock:{number}: {name} is pinned twice"
        pins[name] = match[2]
    return pins


def declared(*, extras: bool = True, extra: str | None = None) -> set[str]:
    """Packages in `dependencies`, plus those of every extra (extras=True) or of the one named."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"]]
    for name, packages in project["optional-dependencies"].items():
        if extras or name == extra:
            requirements.extend(packages)
    names = set()
    for requirement in requirements:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert match, requirement
        names.add(canonical(match[0]))
    return names


SHIPPED = ("proxy", "imageservice", "legacy_stub", "strangler_common")
LOCAL = {*SHIPPED, "bench", "tests"}


# Shipped modules that run only with an extra installed, and the extra whose packages they may import (and
# they only): the rollout controller's ConfigMap target needs `kubernetes` (`k8s`, in the proxy image).
EXTRA_IMPORTERS = {"proxy/controller/configmap.py": "k8s"}


def imported_modules(package: str) -> dict[str, str]:
    """Top-level third-party module -> the first file that imports it (the EXTRA_IMPORTERS not counted)."""
    found: dict[str, str] = {}
    for path in sorted((REPO / package).rglob("*.py")):
        if str(path.relative_to(REPO)) in EXTRA_IMPORTERS:
            continue
        found.update({m: w for m, w in imports_of_file(path).items() if m not in found})
    return found


def imports_of_file(path: Path) -> dict[str, str]:
    """Top-level third-party module -> the file, for one file."""
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for top in (name.split(".")[0] for name in names):
            if top not in sys.stdlib_module_names and top not in LOCAL and top != "__future__":
                found.setdefault(top, str(path.relative_to(REPO)))
    return found


def test_the_lock_is_a_constraints_file_of_exact_versions_pip_itself_included() -> None:
    pins = locked()
    assert {"aiohttp", "pip"} <= pins.keys()


def test_the_lock_pins_every_package_pyproject_declares() -> None:
    missing = sorted(declared() - locked().keys())
    assert not missing, f"pyproject.toml declares {missing}, which requirements.lock does not pin: {REFRESH}"


def test_every_third_party_package_the_code_imports_is_declared_in_pyproject() -> None:
    """Shipped packages need it in `dependencies` (a module EXTRA_IMPORTERS names: or in its extra); bench/
    and tests/ may take it from any extra. A module of an extra that is not installed here (bench's
    matplotlib under `make test`) is taken as its own name."""
    providers = importlib.metadata.packages_distributions()
    checks = [(imported_modules(p), declared(extras=p not in SHIPPED)) for p in sorted(LOCAL)]
    for where, extra in EXTRA_IMPORTERS.items():
        assert (REPO / where).is_file(), f"EXTRA_IMPORTERS names {where}, which does not exist"
        checks.append((imports_of_file(REPO / where), declared(extras=False, extra=extra)))
    undeclared = []
    for imports, allowed in checks:
        for module, where in imports.items():
            candidates = {canonical(name) for name in providers.get(module, [module])}
            if not candidates & allowed:
                undeclared.append(f"{where} imports {module} ({' or '.join(sorted(candidates))})")
    section = (
        "`dependencies` for proxy/, imageservice/, legacy_stub/, strangler_common/ (or the extra that "
        "EXTRA_IMPORTERS names for a module), else an extra"
    )
    assert not undeclared, f"declare in pyproject.toml ({section}): {undeclared}, then run `make lock`"


def test_every_package_installed_here_has_the_version_the_lock_pins() -> None:
    pins = locked()
    drifted, unlocked = [], []
    for distribution in importlib.metadata.distributions():
        name = canonical(distribution.metadata["Name"])
        if name == PROJECT or (name in VENV_SEEDS and name not in pins):
            continue
        if name not in pins:
            unlocked.append(f"{name}=={distribution.version}")
        elif distribution.version != pins[name]:
            drifted.append(f"{name} {distribution.version} (the lock pins {pins[name]})")
    assert not drifted, f"installed versions differ from requirements.lock: {sorted(drifted)}; {REFRESH}"
    assert not unlocked, (
        f"installed but not in requirements.lock: {sorted(unlocked)}; declare what the code imports in "
        f"pyproject.toml. {REFRESH}"
    )
