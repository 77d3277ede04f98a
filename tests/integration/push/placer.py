"""A referring system that follows the BSeR REST push pattern, over any transport: registers
its organization, practitioner and patient (search by identifier, create if missing), posts the
clinical resources, the ServiceRequest referencing them as `Type/id`, then its own Task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.referrals import FHIR_JSON, ICD10, METRICS

ER = "https://er.example.org"
PLAC = "http://terminology.hl7.org/CodeSystem/v2-0203"

# (method, path, json body or None, headers) -> (status, json body or None)
Send = Callable[[str, str, dict[str, Any] | None, dict[str, str]], tuple[int, Any]]


@dataclass
class Placer:
    send: Send
    case: str  # one referral's worth of business identifiers
    made: dict[str, str] = field(default_factory=dict)  # "Patient" -> "Patient/<id>"

    def ask(self, method: str, path: str, body: dict | None = None, **headers: str) -> Any:
        status, answer = self.send(method, path, body, {"Content-Type": FHIR_JSON, **headers})
        assert status in (200, 201), (method, path, status, answer)
        return answer

    def find_or_create(self, resource: dict[str, Any], key: str) -> str:
        """Search by identifier first, as referring systems do, then create if missing."""
        kind = resource["resourceType"]
        system, value = f"{ER}/{kind.lower()}", f"{key}-{self.case}"
        found = self.ask("GET", f"/fhir/{kind}?identifier={system}|{value}")
        if found["total"]:
            reference = f"{kind}/{found['entry'][0]['resource']['id']}"
        else:
            body = {**resource, "identifier": [{"system": system, "value": value}]}
            reference = self.create(body, f"identifier={system}|{value}")
        self.made[key] = reference
        return reference

    def create(self, resource: dict[str, Any], if_none_exist: str) -> str:
        path = f"/fhir/{resource['resourceType']}"
        answer = self.ask("POST", path, resource, **{"If-None-Exist": if_none_exist})
        return f"{answer['resourceType']}/{answer['id']}"

    def clinical(self, resource: dict[str, Any], key: str) -> str:
        kind = resource["resourceType"]
        system, value = f"{ER}/{kind.lower()}", f"{key}-{self.case}"
        body = {**resource, "identifier": [{"system": system, "value": value}]}
        self.made[key] = self.create(body, f"identifier={system}|{value}")
        return self.made[key]

    def register(self) -> None:
        self.find_or_create({"resourceType": "Organization", "name": "Example ER"}, "org")
        self.find_or_create(practitioner(), "practitioner")
        self.find_or_create(patient(), "patient")

    def refer(self, observations: tuple[str, ...] = ("headache", "migraine")) -> str:
        """Posts the clinical resources, the ServiceRequest, then the placer's Task; returns
        the Task id the clinic answered with."""
        self.register()
        subject = {"reference": self.made["patient"]}
        self.clinical(chronic_migraine(subject), "condition")
        for key in observations:
            self.clinical(OBSERVATIONS[key](subject), key)
        referral = self.ask(
            "POST",
            "/fhir/ServiceRequest",
            self.service_request(observations),
            **{"If-None-Exist": f"identifier={ER}/referrals|sr-{self.case}"},
        )
        self.made["referral"] = f"ServiceRequest/{referral['id']}"
        return self.post_task()["id"]

    def post_task(self) -> dict[str, Any]:
        task = {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "identifier": [{"system": f"{ER}/tasks", "value": f"task-{self.case}"}],
            "focus": {"reference": self.made["referral"]},
            "for": {"reference": self.made["patient"]},
        }
        return self.ask("POST", "/fhir/Task", task)

    def service_request(self, observations: tuple[str, ...]) -> dict[str, Any]:
        return {
            "resourceType": "ServiceRequest",
            "identifier": [{"system": f"{ER}/referrals", "value": f"sr-{self.case}"}],
            "status": "active",
            "intent": "order",
            "priority": "routine",
            "subject": {"reference": self.made["patient"]},
            "requester": {"reference": self.made["practitioner"]},
            "authoredOn": "2026-11-23T09:00:00Z",
            "reasonReference": [{"reference": self.made["condition"]}],
            "supportingInfo": [{"reference": self.made[key]} for key in observations],
        }


def patient() -> dict[str, Any]:
    # Male, so the pregnancy rule does not ask for a pregnancy status.
    return {
        "resourceType": "Patient",
        "name": [{"family": "Testperson", "given": ["Bo"]}],
        "birthDate": "1980-04-02",
        "gender": "male",
    }


def practitioner() -> dict[str, Any]:
    return {"resourceType": "Practitioner", "name": [{"family": "Referrer"}]}


def chronic_migraine(subject: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": ICD10, "code": "G43.909"}]},  # chronic by its days only
        "subject": subject,
        "onsetDateTime": "2025-01-10",
    }


def days_per_month(code: str, value: int) -> Callable[[dict[str, str]], dict[str, Any]]:
    def observation(subject: dict[str, str]) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": METRICS, "code": code}]},
            "subject": subject,
            "effectivePeriod": {"start": "2026-07-01", "end": "2026-11-20"},
            "valueInteger": value,
        }

    return observation


OBSERVATIONS = {
    "headache": days_per_month("headache-days-per-month", 20),
    "migraine": days_per_month("migraine-days-per-month", 12),
}
