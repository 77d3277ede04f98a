"""Whatever a Subscription's elements hold, the answer is 201 or a 4xx OperationOutcome (never a
500), and a refused one stores nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.following.conftest import subscription

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
PATHS = [
    ["status"],
    ["criteria"],
    ["reason"],
    ["channel"],
    ["channel", "type"],
    ["channel", "endpoint"],
    ["channel", "payload"],
    ["channel", "_payload"],
    ["channel", "_payload", "extension"],
    ["channel", "_payload", "extension", 0],
    ["channel", "_payload", "extension", 0, "valueCode"],
    ["channel", "header"],
    ["channel", "extension"],
    ["_criteria"],
]


def test_no_subscription_body_is_a_server_error(as_sender) -> None:
    a = as_sender("er-fuzz")

    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(changes=st.lists(st.tuples(st.sampled_from(PATHS), JSON), min_size=1, max_size=3))
    def check(changes: list[tuple[list[Any], Any]]) -> None:
        resource = subscription("https://receiver.example.org/hook")
        for path, value in changes:
            target: Any = resource
            for key in path[:-1]:
                inside_dict = isinstance(target, dict) and isinstance(key, str)
                inside_dict = inside_dict and isinstance(target.get(key), dict | list)
                inside_list = (
                    isinstance(target, list) and isinstance(key, int) and len(target) > key
                )
                if inside_dict or inside_list:
                    target = target[key]
                else:
                    target = None
                    break
            if isinstance(target, dict) and isinstance(path[-1], str):
                target[path[-1]] = value
            elif isinstance(target, list) and isinstance(path[-1], int) and target:
                target[0] = value
        before = a("GET", "/fhir/Subscription").get_json()["total"]
        response = a("POST", "/fhir/Subscription", resource)
        assert response.status_code in (201, 400, 422), (response.status_code, resource)
        after = a("GET", "/fhir/Subscription").get_json()["total"]
        if response.status_code == 201:
            assert after == before + 1
        else:
            assert response.get_json()["resourceType"] == "OperationOutcome"
            assert after == before

    check()
