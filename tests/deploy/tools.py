"""Helpers of the static deployment checks: where the repo is, how to find a tool, how to read a Dockerfile.

A missing tool fails the test loudly: `make test` installs every one of them (Debian packages through
scripts/system-deps.sh, Python ones through the project's test extra), so a skip would only hide a
broken install.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def tool(name: str) -> str:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        pytest.fail(
            f"{name} is not installed; `make test` installs it (scripts/system-deps.sh for Debian packages, "
            "the test extra of pyproject.toml for Python ones)"
        )
    return found


def run(*args: str, cwd: Path = REPO, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/HEALTHCHECK CMD, or None in shell form."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            if text.strip().upper() == "NONE":
                return None
            text = text[text.index("CMD") + 3 :] if "CMD" in text else ""
        text = text.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list)
        assert all(isinstance(item, str) for item in value)
        return value


@dataclass
class Stage:
    name: str | None
    base: str
    instructions: list[Instruction] = field(default_factory=list)

    def last(self, keyword: str) -> Instruction | None:
        found = [i for i in self.instructions if i.keyword == keyword]
        return found[-1] if found else None


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages and their instructions; continuation lines joined, comments dropped."""
    stages: list[Stage] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text, pending = pending + line, ""
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = shlex.split(args)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(name=name, base=words[0]))
        else:
            assert stages, f"{path.name}:{start}: {keyword} before FROM"
            stages[-1].instructions.append(Instruction(keyword, args.strip(), start))
    return stages
