"""bench/booking_against.py on a tiny load: a reference build unpacked from the history and this
tree each run their own bench/booking.py, and the round's p95 ratio is computed from both."""

from __future__ import annotations

import pytest

from bench import booking_against
from tests.support.sekmet import _sekmet_executable


@pytest.mark.usefixtures("postgres_url")
def test_a_reference_build_and_this_tree_book_in_turn_and_are_compared() -> None:
    _sekmet_executable()  # skips when SEKMET is not installed
    result = booking_against.run(
        "HEAD", rounds=1, referrals=2, options=("--chairs", "2", "--days", "3", "--probes", "2")
    )
    (row,) = result["rounds"]
    for name in ("reference", "this tree"):
        assert row[name]["p95"] >= row[name]["p50"] > 0, name
        assert row[name]["requests"] > 0, name
    assert result["ratio"] == pytest.approx(row["this tree"]["p95"] / row["reference"]["p95"])
