"""The README is the front door and docs/ holds the rest: the README stays short and starts with the two
commands, every page of docs/ is in the MkDocs navigation, the site builds with --strict, and --strict
really fails on a broken link, a missing anchor and a page left out of the navigation (each proven on a
copy of the docs with that one fault)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.deploy.tools import REPO, run, tool

README = REPO / "README.md"
DOCS = REPO / "docs"
MKDOCS_YML = REPO / "mkdocs.yml"
MAX_README_LINES = 250
TWO_COMMANDS = """\
# txt2img-strangler

```
make run     # installs into .venv if needed, starts legacy, imageservice and proxy
make test    # installs into .venv if needed, runs ruff, mypy and the whole pytest suite
```
"""
# [text](target) outside code; the target up to the first space or closing parenthesis
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def nav_pages(nav: object) -> Iterator[str]:
    """Every page a `nav` names, however deeply nested in sections."""
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from nav_pages(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from nav_pages(value)


def mkdocs_config() -> dict[str, object]:
    config = yaml.safe_load(MKDOCS_YML.read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def build(project: Path, site: Path) -> tuple[int, str]:
    """`mkdocs build --strict` as `make test` runs it: never --quiet, which hides what strict counts."""
    result = run(tool("mkdocs"), "build", "--strict", "--site-dir", str(site), cwd=project, timeout=120)
    return result.returncode, result.stdout + result.stderr


def copy_of_the_docs(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(DOCS, project / "docs")
    shutil.copy(MKDOCS_YML, project / "mkdocs.yml")
    return project


def test_the_readme_is_at_most_250_lines_and_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    lines = len(text.splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines (at most {MAX_README_LINES}): move references and runbooks to docs/"
    )
    assert text.startswith(TWO_COMMANDS), "README.md must open with its title and the two commands"


def test_every_relative_link_of_the_readme_points_at_a_file_that_exists() -> None:
    """MkDocs checks docs/ only; the README's links into docs/ and the packages are checked here."""
    broken = []
    for target in LINK.findall(README.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (REPO / target.split("#", 1)[0]).exists():
            broken.append(target)
    assert not broken, f"README.md links to missing files: {broken}"


def test_every_page_in_docs_is_in_the_mkdocs_nav_and_every_nav_entry_is_a_page() -> None:
    config = mkdocs_config()
    assert config.get("docs_dir", "docs") == "docs"
    listed = list(nav_pages(config["nav"]))
    pages = sorted(str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md"))
    assert sorted(set(listed)) == sorted(listed), f"a page is listed twice in the nav: {listed}"
    left_out, missing = sorted(set(pages) - set(listed)), sorted(set(listed) - set(pages))
    assert not left_out, f"docs/ pages missing from the nav of mkdocs.yml: {left_out}"
    assert not missing, f"the nav of mkdocs.yml names pages docs/ does not have: {missing}"


def test_the_config_makes_every_mkdocs_check_a_warning_and_builds_strictly() -> None:
    """MkDocs reports a page left out of nav and a missing anchor only at INFO by default: strict ignores
    those unless `validation` raises them to warnings."""
    config = mkdocs_config()
    assert config.get("strict") is True
    validation = config.get("validation")
    assert isinstance(validation, dict)
    for check in ("omitted_files", "not_found", "absolute_links", "unrecognized_links", "anchors"):
        assert validation.get(check) == "warn", f"mkdocs.yml validation.{check} should be `warn`"


def test_make_test_builds_the_docs_strictly_and_never_quietly() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe, "the Makefile has no test target"
    builds = [line for line in recipe[1].splitlines() if "mkdocs build" in line]
    assert len(builds) == 1, f"make test should run mkdocs build once: {recipe[1]}"
    assert "--strict" in builds[0]
    assert not re.search(r"\s(--quiet|-q)\b", builds[0]), "--quiet silences the warnings --strict fails on"


def test_the_docs_build_cleanly_with_strict(tmp_path: Path) -> None:
    code, output = build(REPO, tmp_path / "site")
    assert code == 0, output
    assert (tmp_path / "site" / "index.html").exists()


FAULTS = {
    "broken link": ("logs.md", "\nSee [the missing page](no-such-page.md).\n", "no-such-page.md"),
    "missing anchor": ("logs.md", "\nSee [no heading](routes.md#no-such-heading).\n", "no-such-heading"),
    "link outside docs/": ("logs.md", "\nSee [the README](../README.md).\n", "../README.md"),
    "page left out of nav": ("orphan.md", "# Nobody links here\n", "orphan.md"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_strict_build_fails_on_one_fault_in_a_copy_of_the_docs(tmp_path: Path, fault: str) -> None:
    page, text, named = FAULTS[fault]
    project = copy_of_the_docs(tmp_path)
    with (project / "docs" / page).open("a", encoding="utf-8") as file:
        file.write(text)

    code, output = build(project, tmp_path / "site")

    assert code != 0, f"mkdocs build --strict passed with a {fault}:\n{output}"
    assert named in output, output


def test_the_copy_without_a_fault_builds(tmp_path: Path) -> None:
    """The control for the test above: the copy itself is sound, so each failure is its fault's."""
    code, output = build(copy_of_the_docs(tmp_path), tmp_path / "site")
    assert code == 0, output
