"""The code checks CI holds us to: ruff (lint and format) on everything, mypy on the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_lint_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "check", "referral_service", "tests", "bench")
    assert result.returncode == 0, result.stdout


def test_ruff_format_is_applied() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", "referral_service", "tests", "bench")
    assert result.returncode == 0, result.stdout


def test_mypy_is_clean_on_the_package() -> None:
    result = _run(str(BIN / "mypy"), "referral_service")
    assert result.returncode == 0, result.stdout
