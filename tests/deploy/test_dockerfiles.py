"""The Dockerfiles, checked without a Docker engine: lint, non-root multi-stage builds, every file they
copy exists (and is not hidden by .dockerignore), every command they run is a real entry point."""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from tests.deploy.tools import REPO, Stage, parse_dockerfile, run, tool

DOCKERFILES = ("Dockerfile.proxy", "Dockerfile.service")
LAMBDA_STAGE = "lambda"  # AWS's Lambda base image: Lambda itself runs the code as a non-root user
PROJECT_ITSELF = re.compile(r"""\s(\.|(["'])\.\[[\w,-]+\]\2)\s*$""")  # `.` or `".[extra,...]"`, last word


def console_scripts() -> dict[str, str]:
    return dict(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])


def stages(name: str) -> list[Stage]:
    return parse_dockerfile(REPO / name)


def runnable_stages() -> list[tuple[str, Stage, list[Stage]]]:
    """(dockerfile, stage, its chain of stages from the first FROM) for every stage that runs something."""
    found = []
    for name in DOCKERFILES:
        all_stages = stages(name)
        by_name = {stage.name: stage for stage in all_stages if stage.name}
        for stage in all_stages:
            chain = [stage]
            while chain[0].base in by_name:
                chain.insert(0, by_name[chain[0].base])
            if any(s.last("ENTRYPOINT") or s.last("CMD") for s in chain):
                found.append((name, stage, chain))
    return found


def inherited(chain: list[Stage], keyword: str) -> str | None:
    for stage in reversed(chain):
        instruction = stage.last(keyword)
        if instruction is not None:
            return instruction.args
    return None


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    parts = Path(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        pattern = pattern.removeprefix("/")
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            return True
    return False


def test_the_dockerfiles_pass_hadolint_without_a_single_finding() -> None:
    result = run(tool("hadolint"), "--no-color", *DOCKERFILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_reject_a_dockerfile_that_breaks_its_rules(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install flask\nUSER root\n")
    result = run(tool("hadolint"), "--no-color", str(bad))
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # the `latest` tag


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_image_is_built_in_stages_from_a_pinned_slim_python(name: str) -> None:
    all_stages = stages(name)
    assert len(all_stages) >= 2
    python_bases = {s.base for s in all_stages if s.base.startswith("python:")}
    assert python_bases
    assert all(re.fullmatch(r"python:3\.\d+-slim(-\w+)?", b) for b in python_bases)
    build = all_stages[0]
    assert any("pip wheel" in i.args and PROJECT_ITSELF.search(i.args) for i in build.instructions), (
        "dependencies must come from the project's own metadata (pip wheel . or pip wheel \".[extra]\")"
    )


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_package_an_image_installs_comes_at_the_version_requirements_lock_pins(name: str) -> None:
    """pip resolves from an index only with the lock as constraints, in a stage that copied the lock in;
    `--no-index` installs take only the wheels a build stage made that way."""
    resolving = 0
    for stage in stages(name):
        copied: list[str] = []
        for instruction in stage.instructions:
            if instruction.keyword == "COPY" and "--from=" not in instruction.args:
                copied.extend(shlex.split(instruction.args)[:-1])
            if instruction.keyword != "RUN" or not re.search(r"\bpip (install|wheel)\b", instruction.args):
                continue
            if "--no-index" in instruction.args:
                continue
            resolving += 1
            where = f"{name}:{instruction.line}"
            constraint = re.search(r"(?:--constraint|-c)[ =](\S+)", instruction.args)
            assert constraint, f"{where}: pip resolves without --constraint requirements.lock"
            assert Path(constraint.group(1)).name == "requirements.lock", where
            assert "requirements.lock" in copied, f"{where}: the stage never copies requirements.lock in"
    assert resolving >= 1


@pytest.mark.parametrize(("name", "stage", "chain"), runnable_stages(), ids=lambda v: getattr(v, "name", v))
def test_every_runnable_stage_runs_as_a_non_root_user_with_a_healthcheck(
    name: str, stage: Stage, chain: list[Stage]
) -> None:
    if stage.name == LAMBDA_STAGE:
        assert stage.base.startswith("public.ecr.aws/lambda/python:")
        return
    user = inherited(chain, "USER")
    assert user is not None, f"{name} stage {stage.name}: no USER"
    assert user.split(":")[0] not in {"0", "root"}, f"{name} stage {stage.name} runs as root"
    assert stage.last("HEALTHCHECK") is not None, f"{name} stage {stage.name}: no HEALTHCHECK"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_no_secret_is_baked_into_a_layer(name: str) -> None:
    for stage in stages(name):
        for instruction in stage.instructions:
            if instruction.keyword in {"ENV", "ARG"}:
                assert not re.search(r"(KEY|TOKEN|SECRET|PASSWORD)\w*[= ]\S", instruction.args, re.I), (
                    f"{name}:{instruction.line}: {instruction.args}"
                )


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_file_a_dockerfile_copies_exists_and_reaches_the_build_context(name: str) -> None:
    patterns = dockerignore_patterns()
    copied = 0
    for stage in stages(name):
        for instruction in stage.instructions:
            if instruction.keyword not in {"COPY", "ADD"} or "--from=" in instruction.args:
                continue
            words = [w for w in shlex.split(instruction.args) if not w.startswith("--")]
            for source in words[:-1]:
                assert (REPO / source).exists(), f"{name}:{instruction.line}: {source} does not exist"
                where = f"{name}:{instruction.line}"
                assert not ignored(source, patterns), f"{where}: .dockerignore hides {source}"
                copied += 1
    assert copied >= 3


def test_the_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context() -> None:
    patterns = dockerignore_patterns()
    hidden = (".git", ".venv", ".env", "secrets/openai", "deploy/secrets/x", "var/imageservice", "tests/e2e")
    for path in hidden:
        assert ignored(path, patterns), path
    shipped = ("pyproject.toml", "requirements.lock", "README.md", "proxy/app.py")
    for path in (*shipped, "strangler_common/contracts/images.yaml"):
        assert not ignored(path, patterns), path


def _check_console_script(script: str, args: list[str]) -> None:
    """The script is one of pyproject's [project.scripts]; its subcommand exists and knows every option."""
    assert script in console_scripts(), f"{script} is not in [project.scripts]"
    subcommand = []
    for arg in args:
        if arg.startswith("-"):
            break
        subcommand.append(arg)
    result = run(tool(script), *subcommand, "--help", timeout=60)
    assert result.returncode == 0, f"{script} {' '.join(subcommand)}: {result.stderr}"
    for option in (arg.split("=")[0] for arg in args if arg.startswith("--")):
        assert re.search(rf"(^|\s|\[){re.escape(option)}\b", result.stdout), f"{script} has no {option}"


def _check_python_module(argv: list[str]) -> None:
    assert argv[:2] == ["python", "-m"], argv
    module = argv[2]
    spec = importlib.util.find_spec(module)
    assert spec is not None, f"{module} is not importable"
    assert callable(getattr(importlib.import_module(module), "main", None)), f"{module} has no main()"
    assert module.split(".")[0] in {"proxy", "imageservice", "legacy_stub", "strangler_common"}


@pytest.mark.parametrize(("name", "stage", "chain"), runnable_stages(), ids=lambda v: getattr(v, "name", v))
def test_every_command_an_image_runs_is_a_real_entry_point_of_the_package(
    name: str, stage: Stage, chain: list[Stage]
) -> None:
    entry = next((i for s in reversed(chain) for i in [s.last("ENTRYPOINT")] if i), None)
    cmd = next((i for s in reversed(chain) for i in [s.last("CMD")] if i), None)
    if stage.name == LAMBDA_STAGE:  # CMD names the handler the Lambda runtime imports
        assert entry is None
        assert cmd is not None
        handler = (cmd.exec_form() or [""])[0]
        module, _, attribute = handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute)), handler
        return
    assert entry is not None, f"{name} {stage.name}: no ENTRYPOINT"
    assert cmd is not None, f"{name} {stage.name}: no CMD"
    entry_argv, cmd_argv = entry.exec_form(), cmd.exec_form()
    assert entry_argv is not None, "use the exec form (signals reach the process)"
    assert cmd_argv is not None, "use the exec form"
    _check_console_script(entry_argv[0], [*entry_argv[1:], *cmd_argv])
    healthcheck = stage.last("HEALTHCHECK")
    assert healthcheck is not None
    probe = healthcheck.exec_form()
    assert probe is not None
    _check_python_module(probe)
    port = re.search(r":(\d+)/", probe[-1])
    assert port is not None
    assert port.group(1) in " ".join(cmd_argv), "the probe asks the port the CMD serves"


def test_the_proxy_image_runs_one_worker_per_cpu_by_default() -> None:
    (runtime,) = [stage for name, stage, _ in runnable_stages() if name == "Dockerfile.proxy"]
    cmd = runtime.last("CMD")
    assert cmd is not None
    argv = cmd.exec_form() or []
    assert argv[argv.index("--workers") + 1] == "auto"
