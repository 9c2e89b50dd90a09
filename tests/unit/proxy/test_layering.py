"""The proxy's house: subpackages stacked in one order, no arrow from a lower one to a higher one, and
pure modules that do no I/O. Read from the source with `ast`: every import counts, even inside a
function, so a layer cannot be crossed by hiding the import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PROXY = Path(__file__).resolve().parents[3] / "proxy"
# Lowest first: a package may import its own modules and those of the packages before it.
LAYERS = (
    "config", "routing", "resilience", "shadow", "live", "rollout", "dataplane", "admin", "console",
    "controller",
)  # fmt: skip
# top-level modules that import nothing of the proxy: any I/O module may use them
LEAVES = {"metrics", "client", "upstream"}
# the other leaves a leaf may import (upstream raises proxy.client's UpstreamError); nothing else
LEAF_IMPORTS = {"upstream": {"client"}}
PURE = {
    "config": None,  # None: every module of the package
    "routing": None,
    "resilience": {"breaker", "guard", "fallback", "slots", "memory"},
    "shadow": {"policy", "compare", "noise", "mismatches", "budget", "samples", "userkey"},
    "live": {"gate"},
    "rollout": {"stats", "analysis", "state", "statefile", "yamledit"},
    "console": {"sessions", "figures", "jsonview", "overview", "pictures"},
}
IMPURE_IMPORTS = ("aiohttp", "os", "logging", "structlog", "socket", "subprocess", "boto3", "requests")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PROXY.rglob("*.py")):
        parts = path.relative_to(PROXY).with_suffix("").parts
        found[".".join(parts)] = path
    return found


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "proxy":  # `from proxy import x`
                found.update(f"proxy.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            found.add("importlib:" + ast.unparse(node.args[0]) if node.args else "importlib")
    return found


def layer_of(module: str) -> int:
    """The package's position; top-level modules (entry points, wiring) sit above every package."""
    head = module.split(".")[0]
    return LAYERS.index(head) if head in LAYERS else len(LAYERS)


def is_pure(module: str) -> bool:
    head, _, rest = module.partition(".")
    if head not in PURE:
        return False
    allowed = PURE[head]
    return allowed is None or rest.split(".")[0] in allowed or rest in ("", "__init__")


def test_no_package_imports_from_a_package_above_it() -> None:
    upward = []
    for module, path in modules().items():
        for target in imports_of(path):
            if not target.startswith("proxy."):
                continue
            name = target.removeprefix("proxy.")
            if name.split(".")[0] in LEAVES:
                continue
            if layer_of(name) > layer_of(module):
                upward.append(f"proxy/{path.relative_to(PROXY)} imports {target}")
    assert not upward, "imports against the layering " + " < ".join(LAYERS) + ":\n" + "\n".join(upward)


def leaf_modules(leaf: str) -> list[Path]:
    """A leaf is a module (leaf.py) or a package (leaf/): then every module in it."""
    package = PROXY / leaf
    return sorted(package.rglob("*.py")) if package.is_dir() else [PROXY / f"{leaf}.py"]


def relative_imports_of(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level]


def test_the_leaves_import_nothing_of_the_proxy() -> None:
    for leaf in LEAVES:
        paths = leaf_modules(leaf)
        assert paths, f"no module for the leaf {leaf}"
        # a leaf package may import its own modules, and the leaves LEAF_IMPORTS names: only them
        allowed = [leaf, *sorted(LEAF_IMPORTS.get(leaf, ()))]
        outside = [
            f"proxy/{path.relative_to(PROXY)} imports {target}"
            for path in paths
            for target in imports_of(path)
            if target.startswith("proxy")
            and not any(target == f"proxy.{name}" or target.startswith(f"proxy.{name}.") for name in allowed)
        ]
        outside += [f"proxy/{p.relative_to(PROXY)}: {i}" for p in paths for i in relative_imports_of(p)]
        assert not outside, "\n".join(outside)


def test_pure_modules_do_no_io() -> None:
    impure = []
    for module, path in modules().items():
        if not is_pure(module):
            continue
        for target in imports_of(path):
            top = target.split(".")[0]
            inner = target.removeprefix("proxy.")
            if top in IMPURE_IMPORTS or (target.startswith("proxy.") and not is_pure(inner)):
                impure.append(f"proxy/{path.relative_to(PROXY)} imports {target}")
    assert not impure, "pure modules doing I/O:\n" + "\n".join(impure)


def test_no_module_hides_an_import_behind_importlib() -> None:
    hidden = [f"{m}: {t}" for m, p in modules().items() for t in imports_of(p) if t.startswith("importlib")]
    assert not hidden


@pytest.mark.parametrize("package", LAYERS)
def test_every_subpackage_says_what_it_owns(package: str) -> None:
    tree = ast.parse((PROXY / package / "__init__.py").read_text())
    assert ast.get_docstring(tree), f"proxy/{package}/__init__.py has no docstring"
