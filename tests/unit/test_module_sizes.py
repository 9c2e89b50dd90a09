"""Modules stay small: none over 250 lines, no function or method over 60 (issue 13).

A function counts from its first decorator to its last line, docstring included. The checks
read the source with `ast`; nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_MODULE_LINES = 250
MAX_FUNCTION_LINES = 60


def oversized(package: str) -> list[str]:
    """Every module over MAX_MODULE_LINES and every def over MAX_FUNCTION_LINES, as file:line."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        lines = len(source.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{where}:1 module has {lines} lines (at most {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(source, filename=str(where))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = (node.end_lineno or node.lineno) - first + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(
                        f"{where}:{first} {node.name}() has {length} lines (at most {MAX_FUNCTION_LINES})"
                    )
    return found


def test_the_checker_reports_a_long_function_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (package / "mod.py").write_text(f"import os\n\n\n@staticmethod\ndef long():\n{body}\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)

    assert oversized("pkg") == [
        f"pkg/mod.py:4 long() has {MAX_FUNCTION_LINES + 2} lines (at most {MAX_FUNCTION_LINES})"
    ]


def assert_small(package: str) -> None:
    problems = oversized(package)
    assert not problems, "\n" + "\n".join(problems)


@pytest.mark.parametrize("package", ["imageservice", "legacy_stub", "strangler_common"])
def test_the_service_packages_are_small(package: str) -> None:
    assert_small(package)


def test_proxy_modules_are_small() -> None:
    assert_small("proxy")
