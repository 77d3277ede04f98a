"""bench/intake.py on a tiny load: all four apps (bare, floor, SEKMET, the service with its
worker) answer under the same gunicorn settings and load generator, and every ratio is printed
with its verdict."""

from __future__ import annotations

import pytest

from bench import intake
from tests.support.sekmet import _sekmet_executable


@pytest.mark.usefixtures("postgres_url")
def test_the_intake_bench_measures_four_apps_and_judges_every_ratio() -> None:
    _sekmet_executable()  # skips when SEKMET is not installed
    result = intake.run(seconds=0.5, connections=4, warmup=0.3)
    for name in intake.APPS:
        assert result[name]["requests"] > 0, name
        assert result[name]["p99_ms"] >= result[name]["p50_ms"] > 0, name
        assert result[name]["cpu_ms"]["web"] > 0, name
    assert result["service"]["cpu_ms"]["worker"] > 0  # the worker ran beside the service
    lines = intake.report(result)
    for key, label, _met, target in intake.TARGETS:
        assert result[key] > 0
        (line,) = [line for line in lines if line.startswith(label)]
        assert target in line and ("meets" in line or "MISSES" in line)
