"""SMART scope grammar and the permission each request needs (pure functions, no app)."""

from __future__ import annotations

import pytest

from referral_service.api.auth import grants, required_permission


@pytest.mark.parametrize(
    "scopes,resource_type,permission,expected",
    [
        ("system/ServiceRequest.c", "ServiceRequest", "c", True),
        ("system/ServiceRequest.cu", "ServiceRequest", "u", True),
        ("system/ServiceRequest.rs", "ServiceRequest", "c", False),
        ("system/ServiceRequest.rs", "ServiceRequest", "s", True),
        ("system/*.cruds", "Task", "r", True),
        ("system/ServiceRequest.write", "ServiceRequest", "c", True),
        ("system/ServiceRequest.read", "ServiceRequest", "c", False),
        ("system/*.read", "Appointment", "s", True),
        ("system/*.*", "Patient", "u", True),
        ("user/ServiceRequest.cruds", "ServiceRequest", "c", False),
        ("patient/*.*", "ServiceRequest", "r", False),
        ("system/Task.rs", "ServiceRequest", "r", False),
        ("system/ServiceRequest.xyz", "ServiceRequest", "r", False),
        ("system/ServiceRequest.sr", "ServiceRequest", "r", True),  # letters, any order
        ("", "ServiceRequest", "r", False),
    ],
)
def test_grants(scopes: str, resource_type: str, permission: str, expected: bool) -> None:
    assert grants(frozenset(scopes.split()), resource_type, permission) is expected


@pytest.mark.parametrize(
    "method,path,needed",
    [
        ("POST", "/fhir/ServiceRequest", ("ServiceRequest", "c")),
        ("PUT", "/fhir/ServiceRequest/1", ("ServiceRequest", "u")),
        ("POST", "/fhir", ("ServiceRequest", "c")),
        ("POST", "/fhir/ServiceRequest/$evaluate", ("ServiceRequest", "c")),
        ("GET", "/fhir/ServiceRequest", ("ServiceRequest", "s")),
        ("GET", "/fhir/ServiceRequest/1/_history/1", ("ServiceRequest", "r")),
        ("GET", "/fhir/Task/1", ("Task", "r")),
        ("POST", "/fhir/Observation", ("Observation", "c")),
        ("GET", "/fhir/AuditEvent", None),
        ("POST", "/fhir/Task/_search", ("Task", "s")),  # a search, not a create (issue 21)
        ("GET", "/fhir/ServiceRequest/1/_history", ("ServiceRequest", "r")),
        ("POST", "/fhir/$process-message", ("ServiceRequest", "c")),
        ("POST", "/fhir/Subscription", ("Subscription", "c")),
        ("DELETE", "/fhir/Subscription/1", ("Subscription", "d")),
        ("GET", "/fhir/Subscription/1/$status", ("Subscription", "r")),
    ],
)
def test_required_permission(method: str, path: str, needed: tuple[str, str] | None) -> None:
    assert required_permission(method, path) == needed
