"""Fact extraction at the FHIR edge: a ServiceRequest, its contained resources, its Bundle and
the EHR (through a resolver) become the ReferralFacts the eligibility engine reads.

Works on FHIR JSON dicts (R4, tolerating R5 shapes). Nothing a sender writes can make it raise:
a malformed field is skipped, an unresolvable reference is missing data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from referral_service.domain.facts import (
    Concept,
    FreeText,
    ReferralFacts,
    UnreadableReference,
)
from referral_service.fhir.json_read import as_dict as _dict
from referral_service.fhir.json_read import as_list as _list
from referral_service.fhir.json_read import as_str as _str
from referral_service.fhir.json_read import concept, parse_datetime
from referral_service.fhir.medication_facts import medication_fact
from referral_service.fhir.references import unreadable
from referral_service.fhir.resource_facts import (
    allergy_fact,
    condition_fact,
    date_only,
    encounter_fact,
    notes_of,
    observation_fact,
    patient_facts,
    reference_of,
    report_fact,
)

log = logging.getLogger(__name__)

Resolver = Callable[[str], dict | None]
_MEDICATIONS = ("MedicationStatement", "MedicationRequest", "MedicationAdministration")
# The ED work-up counts when attached: any Bundle entry, whatever its subject says (cc §8 item 6)
_ATTACHED = frozenset({"DiagnosticReport", "Encounter"})


def referral_label(service_request: dict[str, Any]) -> str:
    """The referral's name in a Decision: first identifier as system|value, else the id."""
    for ident in _list(service_request.get("identifier")):
        ident = _dict(ident)
        value = _str(ident.get("value"))
        if value is not None:
            return f"{_str(ident.get('system')) or ''}|{value}"
    return _str(service_request.get("id")) or ""


# --- finding the resources -----------------------------------------------------------------


class _Library:
    """Every resource in hand, by each reference string that may name it; the resolver for
    the rest. Remembers each resource's evidence reference."""

    def __init__(
        self, request: dict[str, Any], entries: Iterable[dict[str, Any]], resolver: Resolver | None
    ) -> None:
        self.by_ref: dict[str, dict[str, Any]] = {}
        self.evidence: dict[int, str] = {}
        self.resolver = resolver
        self.bundle: list[dict[str, Any]] = []
        self.unreadable: dict[str, UnreadableReference] = {}  # referenced, never found
        for item in entries:
            self._add_entry(_dict(item))
        for res in _list(request.get("contained")):
            res = _dict(res)
            if _str(res.get("id")):
                self.by_ref["#" + res["id"].strip()] = res
                self.evidence[id(res)] = "#" + res["id"].strip()

    def _add_entry(self, item: dict[str, Any]) -> None:
        res = _dict(item["resource"]) if "resource" in item else item
        rtype, rid = _str(res.get("resourceType")), _str(res.get("id"))
        if rtype is None:
            return
        keys = [_str(item.get("fullUrl"))]
        if rid:
            keys.append(f"{rtype}/{rid}")
        for key in filter(None, keys):
            self.by_ref.setdefault(key, res)
            self.by_ref.setdefault(_tail(key), res)
        self.evidence[id(res)] = f"{rtype}/{rid}" if rid else (keys[0] or rtype)
        self.bundle.append(res)

    def resolve(self, ref: str | None) -> dict[str, Any] | None:
        if ref is None:
            return None
        found = self.by_ref.get(ref) or self.by_ref.get(_tail(ref))
        if found is None and self.resolver is not None and not ref.startswith("#"):
            found = self._ask_resolver(ref)
        return found

    def _ask_resolver(self, ref: str) -> dict[str, Any] | None:
        try:
            found = self.resolver(ref) if self.resolver else None
        except Exception:  # an EHR read that fails is missing data, never an error here
            log.warning("reference could not be resolved", extra={"reference_type": ref[:40]})
            found = None
        found = found if isinstance(found, dict) and _str(found.get("resourceType")) else None
        self.by_ref[ref] = found  # type: ignore[assignment]
        if found is not None:
            self.evidence.setdefault(id(found), ref)
        return found

    def ref_of(self, res: dict[str, Any]) -> str:
        known = self.evidence.get(id(res))
        if known:
            return known
        rtype, rid = _str(res.get("resourceType")) or "", _str(res.get("id"))
        return f"{rtype}/{rid}" if rid else rtype


def _request_references(request: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, reference) of each resource the ServiceRequest points to."""
    for key in ("reasonReference", "supportingInfo", "reason"):
        for item in _list(request.get(key)):
            ref = reference_of(item)
            if ref:
                yield key, ref
    encounter = reference_of(request.get("encounter"))
    if encounter:
        yield "encounter", encounter


def _subject_of(res: dict[str, Any]) -> str | None:
    return reference_of(res.get("subject")) or reference_of(res.get("patient"))


def _gather(
    request: dict[str, Any], library: _Library, subject_keys: set[str]
) -> list[dict[str, Any]]:
    """Referenced, contained, and Bundle resources about the subject; each once."""
    found: dict[int, dict[str, Any]] = {}
    for field, ref in _request_references(request):
        res = library.resolve(ref)
        if res is not None:
            found.setdefault(id(res), res)
        elif ref not in library.unreadable:
            library.unreadable[ref] = unreadable(field, ref)
    for res in _list(request.get("contained")):
        if isinstance(res, dict):
            found.setdefault(id(res), res)
    for res in library.bundle:
        subject = _subject_of(res)
        if (
            subject is None
            or subject in subject_keys
            or _tail(subject) in subject_keys
            or res.get("resourceType") in _ATTACHED
        ):
            found.setdefault(id(res), res)
    return list(found.values())


def _patient(request: dict[str, Any], library: _Library) -> tuple[dict[str, Any] | None, set[str]]:
    ref = reference_of(request.get("subject"))
    patient = library.resolve(ref)
    if patient is None or patient.get("resourceType") != "Patient":
        patients = [r for r in library.bundle if r.get("resourceType") == "Patient"]
        patient = patients[0] if len(patients) == 1 else None
    keys = {k for k, v in library.by_ref.items() if v is patient and patient is not None}
    if ref:
        keys.update((ref, _tail(ref)))
    return patient, keys


def _tail(ref: str) -> str:
    """'http://ehr/fhir/Patient/1' -> 'Patient/1'."""
    return "/".join(ref.rsplit("/", 2)[-2:])


# --- the whole referral -----------------------------------------------------------------------


def extract_facts(
    service_request: dict[str, Any],
    *,
    bundle_resources: Iterable[dict[str, Any]] = (),
    resolver: Resolver | None = None,
    received_at: datetime,
    time_zone: tzinfo = UTC,
) -> ReferralFacts:
    """ReferralFacts from a ServiceRequest and what came with it.

    `bundle_resources` holds the other Bundle entries (entries with fullUrl, or bare
    resources); `resolver` reads a reference not in hand (None or an exception: missing data);
    `time_zone` is the clinic's, in which ages are counted.
    """
    request = _dict(service_request)
    library = _Library(request, bundle_resources, resolver)
    patient_res, subject_keys = _patient(request, library)
    patient = patient_facts(patient_res, library.ref_of(patient_res)) if patient_res else None
    birth = patient.birth_date if patient else None
    sr_ref = (
        f"ServiceRequest/{_str(request.get('id'))}"
        if _str(request.get("id"))
        else ("ServiceRequest")
    )
    sorted_facts = _facts_by_type(_gather(request, library, subject_keys), library, birth)
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=UTC)
    now = parse_datetime(request.get("authoredOn")) or received_at.astimezone(UTC)
    return ReferralFacts(
        referral=referral_label(request),
        ref=sr_ref,
        now=now,
        time_zone=time_zone,
        reference_date=date_only(request.get("authoredOn")) or now.astimezone(time_zone).date(),
        patient=patient,
        requested=concept(request["code"]) if isinstance(request.get("code"), dict) else None,
        priority=_str(request.get("priority")),
        reason_codes=_reason_codes(request),
        free_texts=_free_texts(request, sr_ref),
        unreadable=tuple(library.unreadable.values()),
        **sorted_facts,
    )


def _reason_codes(request: dict[str, Any]) -> tuple[Concept, ...]:
    found = [concept(c) for c in _list(request.get("reasonCode"))]
    found += [concept(r) for r in _list(request.get("reason")) if "concept" in _dict(r)]
    return tuple(c for c in found if c.codes or c.text)


def _free_texts(request: dict[str, Any], ref: str) -> tuple[FreeText, ...]:
    texts = [c.text for c in _reason_codes(request) if c.text]
    texts += list(notes_of(request))
    return tuple(FreeText(t, ref) for t in texts)


def _facts_by_type(
    resources: list[dict[str, Any]], library: _Library, birth: date | None
) -> dict[str, tuple[Any, ...]]:
    sorted_facts: dict[str, list[Any]] = {
        "conditions": [],
        "observations": [],
        "medications": [],
        "allergies": [],
        "encounters": [],
        "reports": [],
    }
    for res in resources:
        try:
            _sort_one(res, library.ref_of(res), library, birth, sorted_facts)
        except Exception:  # a malformed resource is skipped, never fatal
            log.info(
                "skipped a malformed resource",
                extra={"resource_type": str(res.get("resourceType"))[:40]},
            )
    return {key: tuple(values) for key, values in sorted_facts.items()}


def _sort_one(
    res: dict[str, Any], ref: str, library: _Library, birth: date | None, out: dict[str, list[Any]]
) -> None:
    rtype = res.get("resourceType")
    if rtype == "Condition":
        out["conditions"].append(condition_fact(res, ref, birth))
    elif rtype == "Observation":
        out["observations"].append(observation_fact(res, ref))
    elif rtype in _MEDICATIONS:
        out["medications"].append(medication_fact(res, ref, library))
    elif rtype == "AllergyIntolerance":
        out["allergies"].append(allergy_fact(res, ref))
    elif rtype == "Encounter":
        out["encounters"].append(encounter_fact(res, ref))
    elif rtype == "DiagnosticReport":
        out["reports"].append(report_fact(res, ref))
