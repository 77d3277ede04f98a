"""Build step for the one compiled part: the eligibility engine (referral_service/domain/
eligibility), plain Python source that Cython turns into C extension modules at install time.

The source is the engine; the build only makes it faster (about 1.6x, `bench/evaluate.py`).
Everything else is in pyproject.toml. `annotation_typing=False` keeps Python's semantics: type
hints stay hints, as they are for the interpreter. `__init__.py` stays Python, so the package
can tell which build is in use (referral_service.domain.eligibility.ENGINE_BUILD).
REFERRAL_PURE_PYTHON=1 at install time skips the compilation (no C compiler at hand, or to
step through the engine in a debugger): the same engine, interpreted.
"""

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import setup

ENGINE = Path("referral_service/domain/eligibility")


def engine_extensions() -> list:
    if os.environ.get("REFERRAL_PURE_PYTHON") == "1":
        return []
    return cythonize(
        sorted(str(path) for path in ENGINE.glob("*.py") if path.name != "__init__.py"),
        build_dir="build/cython",
        compiler_directives={"language_level": 3, "annotation_typing": False},
        quiet=True,
    )


setup(ext_modules=engine_extensions())
