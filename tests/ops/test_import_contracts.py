"""The house's import rules (pyproject.toml [tool.importlinter]), checked by import-linter:
layers point inward (entry points -> composition root -> use cases -> adapters -> FHIR edge ->
domain) and no modules or packages import each other in a cycle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_import_contracts_are_kept() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_new_cycle_or_an_outward_import_breaks_them(tmp_path: Path) -> None:
    """The check can fail: a copy of the package where a use case imports the API (an outward
    arrow that also closes a cycle) is refused."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(
        ROOT / "referral_service",
        tmp_path / "referral_service",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    jobs = tmp_path / "referral_service" / "services" / "jobs.py"
    jobs.write_text(jobs.read_text() + "\nfrom referral_service.api import app  # noqa\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "referral_service.services is not allowed to import referral_service.api" in " ".join(
        result.stdout.split()
    )
    assert "No import cycles, at any depth BROKEN" in " ".join(result.stdout.split())
