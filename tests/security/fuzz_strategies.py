"""Hypothesis strategies for hostile clients: FHIR-shaped bodies (real referrals with parts
dropped, retyped or replaced), Bundles, staff API and webhook bodies, and plain junk."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

from tests.support.referrals import eligible_referral

# Header values must stay sendable (no CR/LF); everything else about them is fair game.
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=16,
)
FHIR_KEYS = (
    "resourceType", "id", "meta", "status", "intent", "priority", "subject", "identifier",
    "code", "reasonCode", "reasonReference", "contained", "authoredOn", "supportingInfo", "note",
    "extension", "occurrenceDateTime", "requester", "basedOn", "focus", "valueInteger",
    "effectivePeriod", "birthDate", "name", "gender", "component", "entry", "type", "request",
)  # fmt: skip
RESOURCE_TYPES = (
    "ServiceRequest", "Patient", "Observation", "Condition", "MedicationStatement", "Bundle",
    "Task", "Practitioner", "Organization", "QuestionnaireResponse", "Parameters", "Foo", "",
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """`base` with a few elements dropped or replaced, at the top or inside a contained resource."""
    document = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 4))):
        target = document
        contained = document.get("contained")
        if isinstance(contained, list) and contained and draw(st.booleans()):
            target = contained[draw(st.integers(0, len(contained) - 1))]
            if not isinstance(target, dict):
                continue
        key = draw(st.sampled_from(FHIR_KEYS))
        if draw(st.integers(0, 3)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(json_value | st.sampled_from(RESOURCE_TYPES))
    return document


def referral_bodies() -> st.SearchStrategy[dict[str, Any]]:
    return mutated(eligible_referral("fuzz-base"))


def supporting_bodies(resource_type: str) -> st.SearchStrategy[dict[str, Any]]:
    base = {"resourceType": resource_type, "status": "final", "subject": {"reference": "Patient/p"}}
    return mutated(base)


@st.composite
def bundle_bodies(draw: st.DrawFn) -> dict[str, Any]:
    entries = []
    for _ in range(draw(st.integers(0, 4))):
        resource = draw(referral_bodies() | supporting_bodies("Patient") | json_value)
        entry: dict[str, Any] = {
            "fullUrl": draw(
                st.sampled_from(["urn:uuid:5e6f", "urn:uuid:x", ""]) | st.text(max_size=20)
            ),
            "resource": resource,
            "request": {
                "method": draw(
                    st.sampled_from(["POST", "PUT", "GET", "DELETE"]) | st.text(max_size=6)
                ),
                "url": draw(
                    st.sampled_from(["ServiceRequest", "Patient", "Patient/1"])
                    | st.text(max_size=12)
                ),
            },
        }
        entries.append(draw(mutated(entry)) if draw(st.booleans()) else entry)
    bundle_type = draw(
        st.sampled_from(["transaction", "batch", "collection"]) | st.text(max_size=8)
    )
    return {"resourceType": "Bundle", "type": bundle_type, "entry": entries}


def review_bodies() -> st.SearchStrategy[Any]:
    decision = st.sampled_from(["approve", "decline"]) | json_value
    return st.fixed_dictionaries({"action": decision}, optional={"note": json_value}) | json_value


@st.composite
def notification_bodies(draw: st.DrawFn) -> dict[str, Any]:
    status = {
        "resourceType": draw(st.sampled_from(["SubscriptionStatus", "Parameters"])),
        "status": "active",
        "type": draw(st.sampled_from(["event-notification", "handshake", "heartbeat"])),
        "eventsSinceSubscriptionStart": draw(st.integers(-5, 10**12) | st.text(max_size=5)),
        "subscription": {"reference": draw(st.text(max_size=20))},
    }
    entry = {
        "fullUrl": "https://ehr.example.org/fhir/ServiceRequest/1",
        "resource": draw(json_value),
    }
    bundle = {"resourceType": "Bundle", "type": "history", "entry": [{"resource": status}, entry]}
    return draw(mutated(bundle))


def junk_bytes() -> st.SearchStrategy[bytes]:
    valid = json.dumps(eligible_referral("fuzz-junk")).encode()
    return (
        st.binary(max_size=200)
        | st.text(max_size=200).map(str.encode)
        | json_value.map(lambda value: json.dumps(value).encode())
        | st.integers(0, len(valid)).map(lambda n: valid[:n])
    )


def body_for(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Mostly the FHIR-shaped strategy serialized, sometimes junk."""
    return st.one_of(
        strategy.map(lambda document: json.dumps(document).encode()),
        strategy.map(lambda document: json.dumps(document).encode()),
        junk_bytes(),
    )


content_types = st.sampled_from(
    ["application/fhir+json"] * 6
    + [
        "application/json",
        "application/fhir+json; charset=utf-8",
        "text/plain",
        "application/fhir+xml",
        "",
    ]
)


@st.composite
def request_headers(draw: st.DrawFn) -> dict[str, str]:
    headers = {"Content-Type": draw(content_types)}
    optional = {
        "If-Match": st.sampled_from(['W/"1"', 'W/"2"', '"x"', "*"]) | header_text,
        "If-None-Exist": st.sampled_from(["identifier=https://er.example.org/referrals|fuzz-base"])
        | header_text,
        "Prefer": st.sampled_from(["return=minimal", "return=OperationOutcome"]) | header_text,
        "Accept": st.sampled_from(["application/fhir+json", "application/xml"]) | header_text,
    }
    for name, strategy in optional.items():
        if draw(st.integers(0, 4)) == 0:
            headers[name] = draw(strategy)
    return headers
