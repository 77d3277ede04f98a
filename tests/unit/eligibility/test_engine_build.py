"""The engine as installed is the compiled build, and its plain source passes the same suite:
criteria table, golden decisions, properties (so the two cannot drift apart)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from referral_service.domain.eligibility import ENGINE_BUILD
from tests.support.engine_build import compiled_module, engine_modules, source_only_copy

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
PURE_INSTALL = os.environ.get("REFERRAL_PURE_PYTHON") == "1"


@pytest.mark.skipif(PURE_INSTALL, reason="installed with REFERRAL_PURE_PYTHON=1: nothing compiled")
def test_the_install_compiled_every_engine_module() -> None:
    assert ENGINE_BUILD == "compiled"
    assert [m.name for m in engine_modules() if compiled_module(m) is None] == []


@pytest.mark.slow
@pytest.mark.skipif(ENGINE_BUILD == "source", reason="the suite itself runs the source engine")
def test_the_source_engine_passes_the_engine_suite(tmp_path: Path) -> None:
    source = source_only_copy(tmp_path)
    probe = _python_in(
        source,
        "-c",
        "import referral_service as r; from referral_service.domain.eligibility import "
        "ENGINE_BUILD as b; print(b, r.__file__)",
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    build, package = probe.stdout.split()
    assert build == "source" and package.startswith(str(source)), probe.stdout
    suite = _python_in(
        source,
        *("-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=append"),
        *(f"--rootdir={ROOT}", "-c", str(ROOT / "pyproject.toml")),
        *(str(HERE), f"--ignore={Path(__file__).resolve()}"),
    )
    assert suite.returncode == 0, suite.stdout[-3000:] + suite.stderr[-3000:]
    summary = suite.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary, summary


def _python_in(source: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Python run in the source copy: the working folder is first on its path, so
    `referral_service` comes from the copy (and `tests`, with --import-mode=append, from ROOT)."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=source,
        env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True,
        text=True,
        timeout=600,
    )
