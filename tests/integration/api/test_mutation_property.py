"""Property: any mutation of a valid referral yields a 2xx or a 4xx OperationOutcome, never a
500, and never a half-stored referral (a referral row always has its version and its Task)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from referral_service.adapters.db.tables import jobs, referral_versions, referrals, tasks
from tests.support.referrals import FHIR_JSON, eligible_referral


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            paths += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += _paths(child, (*prefix, index))
    return paths


BASE = eligible_referral("mutant")
PATHS = _paths(BASE)


@st.composite
def mutated_referral(draw: st.DrawFn) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = document
        try:
            for step in path[:-1]:
                parent = parent[step]
            if isinstance(parent, dict) and not isinstance(path[-1], str):
                continue  # an earlier mutation made a list a dict: JSON keys are strings
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(JUNK)
        except (KeyError, IndexError, TypeError):
            continue
    return document


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar() or 0)
            for t in (referrals, referral_versions, tasks, jobs)
        }


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=mutated_referral())
def test_mutations_never_500_and_never_half_store(client, engine, document) -> None:
    before = _counts(engine)
    response = client.post(
        "/fhir/ServiceRequest", json=document, headers={"Content-Type": FHIR_JSON}
    )
    after = _counts(engine)
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert response.get_json()["resourceType"] == "OperationOutcome"
        assert after == before
    else:
        assert after["referrals"] == after["tasks"]
        assert after["referral_versions"] >= after["referrals"]
