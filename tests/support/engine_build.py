"""The eligibility engine's two builds: compiled in place by the install (setup.py), or its
plain Python source. Tests run the compiled one, as the service does, and check the source
against the same suite."""

from __future__ import annotations

import shutil
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import referral_service

PACKAGE = Path(referral_service.__file__).parent
ENGINE = PACKAGE / "domain" / "eligibility"


def engine_modules() -> list[Path]:
    """The engine's source modules that the install compiles (all but __init__.py)."""
    return sorted(path for path in ENGINE.glob("*.py") if path.name != "__init__.py")


def compiled_module(source: Path) -> Path | None:
    for suffix in EXTENSION_SUFFIXES:
        built = source.with_name(source.stem + suffix)
        if built.exists():
            return built
    return None


def stale_modules() -> list[str]:
    """Engine modules edited after they were compiled: Python would import the old build."""
    stale = []
    for source in engine_modules():
        built = compiled_module(source)
        if built is not None and built.stat().st_mtime < source.stat().st_mtime:
            stale.append(source.name)
    return stale


def source_only_copy(dest: Path) -> Path:
    """A copy of the package without compiled modules; put the returned folder first on the
    path and `referral_service` is imported from source."""
    shutil.copytree(PACKAGE, dest / PACKAGE.name, ignore=shutil.ignore_patterns("*.so", "*.pyd"))
    return dest
