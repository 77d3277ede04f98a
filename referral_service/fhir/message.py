"""FHIR R4 messages on the FHIR edge: reading a `message` Bundle sent to `$process-message`
(its MessageHeader, the event, the focus, every reference resolved inside the Bundle) and
building the response message. A message that cannot be read as one is refused here, before
anything is stored."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from referral_service.fhir.outcome import FhirError, Issue, TooLarge, Unprocessable, Unreadable

V2_EVENTS = "http://terminology.hl7.org/CodeSystem/v2-0003"
FHIR_EVENTS = "http://terminology.hl7.org/CodeSystem/message-events"
RESPONSE_CODES = "http://hl7.org/fhir/response-code"
PROCESS_MESSAGE = "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"

# REF^I12 "patient referral": the event BSeR's referral MessageHeader fixes.
REFERRAL_EVENTS = frozenset({(V2_EVENTS, "I12")})
# ADT^A04 register a patient, ADT^A28 add person information (what v2-to-FHIR bridges send),
# and FHIR's admin-notify when its focus is a Patient.
REGISTRATION_EVENTS = frozenset(
    {(V2_EVENTS, "A04"), (V2_EVENTS, "A28"), (FHIR_EVENTS, "admin-notify")}
)
# REF^I13 "modify patient referral": the sender's answers to the clinic's referral form (a
# QuestionnaireResponse `basedOn` its referral) for a referral waiting for information.
ANSWER_EVENTS = frozenset({(V2_EVENTS, "I13")})
MAX_ENTRIES = 200
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_RELATIVE = re.compile(r"^([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?$")


@dataclass(frozen=True)
class Message:
    message_id: str  # Bundle.id: what a resend repeats, the key of idempotency
    header_id: str  # MessageHeader.id (Bundle.id without one): what the response names
    event: dict[str, Any]  # the eventCoding as sent
    kind: str  # "referral" | "registration" | "answers" | "unknown"
    source_endpoint: str
    focus: dict[str, Any] | None = None  # the ServiceRequest, Patient or QuestionnaireResponse
    placer_task: dict[str, Any] | None = None  # BSeR: the Task the header focuses on
    entries: list[dict[str, Any]] = field(default_factory=list)  # the rest, as sent
    positions: tuple[int, ...] = ()  # where each of `entries` is in the message Bundle
    content_digest: str = ""  # what a resend under the same id must repeat (content_digest)

    @property
    def event_label(self) -> str:
        return f"{self.event.get('system')}|{self.event.get('code')}"


def read_message(bundle: dict[str, Any]) -> Message:
    """The message in a Bundle, or the FhirError (4xx) that says why it is not one."""
    if bundle.get("type") != "message":
        raise Unreadable.single("invalid", "$process-message takes a message Bundle", "Bundle.type")
    message_id = bundle.get("id")
    if not isinstance(message_id, str) or not _ID.match(message_id):
        raise Unreadable.single(
            "required", "a message needs a Bundle.id: it identifies the message", "Bundle.id"
        )
    raw = bundle.get("entry")
    if not isinstance(raw, list) or not raw:
        raise Unreadable.single("required", "the message has no entries", "Bundle.entry")
    if len(raw) > MAX_ENTRIES:
        raise TooLarge.single(
            "too-costly", f"a message may carry at most {MAX_ENTRIES} entries", "Bundle.entry"
        )
    _check_entries(raw)
    header = raw[0]["resource"]
    if header.get("resourceType") != "MessageHeader":
        raise Unreadable.single(
            "structure", "the first entry of a message must be its MessageHeader", "Bundle.entry[0]"
        )
    event = _event(header)
    source = header.get("source")
    endpoint = source.get("endpoint") if isinstance(source, dict) else None
    if not isinstance(endpoint, str) or not endpoint:
        raise Unreadable.single(
            "required", "MessageHeader.source.endpoint is required", "MessageHeader.source"
        )
    if header.get("response") is not None:
        raise Unprocessable.single(
            "not-supported",
            "this is a response message; the service sends none that need one",
            "MessageHeader.response",
        )
    kind = _kind(event)
    # Answers name the referral (and its patient) already on this server, as `Type/id`.
    _check_references(raw, server_names=kind == "answers")
    header_id = header.get("id") if isinstance(header.get("id"), str) else message_id
    digest = content_digest(bundle)
    message = Message(message_id, header_id, event, kind, endpoint, content_digest=digest)
    if kind == "unknown":
        return message
    return _with_focus(message, header, raw)


# What says when and how the Bundle was assembled, not what it carries: a sender or an
# intermediary may stamp a resend afresh.
_ENVELOPE = frozenset({"meta", "timestamp", "signature"})


def content_digest(bundle: dict[str, Any]) -> str:
    """SHA-256 of the message as sent, key order and the envelope's stamps aside: a resend
    repeats it, another message under the same id does not."""
    kept = {key: value for key, value in bundle.items() if key not in _ENVELOPE}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_entries(raw: list[Any]) -> None:
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw):
        where = f"Bundle.entry[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            raise Unreadable.single("required", f"{where}.resource is required", where)
        if not isinstance(entry["resource"].get("resourceType"), str):
            raise Unreadable.single(
                "required", f"{where}.resource has no resourceType", f"{where}.resource"
            )
        if "request" in entry or "response" in entry:
            # bdl-3/bdl-4: request and response belong to batches, transactions and histories.
            raise Unreadable.single(
                "invariant", f"{where}: a message entry has no request or response", where
            )
        full_url = entry.get("fullUrl")
        if full_url is None:
            continue
        if not isinstance(full_url, str) or not full_url:
            raise Unreadable.single("value", f"{where}.fullUrl is not a URI", f"{where}.fullUrl")
        if full_url in seen:
            # bdl-7: fullUrl is unique in a Bundle.
            raise Unreadable.single(
                "invariant",
                f"{where}.fullUrl repeats Bundle.entry[{seen[full_url]}].fullUrl",
                f"{where}.fullUrl",
            )
        seen[full_url] = index


def _event(header: dict[str, Any]) -> dict[str, Any]:
    if "eventUri" in header and "eventCoding" not in header:
        uri = header["eventUri"]
        return {"system": None, "code": uri} if isinstance(uri, str) else {}
    coding = header.get("eventCoding")
    if not isinstance(coding, dict):
        raise Unreadable.single(
            "required", "MessageHeader.eventCoding is required", "MessageHeader.eventCoding"
        )
    system, code = coding.get("system"), coding.get("code")
    if not isinstance(system, str) or not system or not isinstance(code, str) or not code:
        raise Unreadable.single(
            "value",
            "MessageHeader.eventCoding needs a system and a code",
            "MessageHeader.eventCoding",
        )
    return coding


def _kind(event: dict[str, Any]) -> str:
    key = (event.get("system"), event.get("code"))
    if key in REFERRAL_EVENTS:
        return "referral"
    if key in REGISTRATION_EVENTS:
        return "registration"
    if key in ANSWER_EVENTS:
        return "answers"
    return "unknown"


def _names(raw: list[dict[str, Any]]) -> dict[str, int]:
    """Every way the message names one of its entries (fullUrl, `Type/id`) -> entry index."""
    names: dict[str, int] = {}
    for index, entry in enumerate(raw):
        resource = entry["resource"]
        if isinstance(entry.get("fullUrl"), str):
            names[entry["fullUrl"]] = index
        if isinstance(resource.get("id"), str):
            names[f"{resource['resourceType']}/{resource['id']}"] = index
    return names


def _resolve(reference: str, names: dict[str, int]) -> int | None:
    if reference in names:
        return names[reference]
    match = _RELATIVE.match(reference)
    if match:  # a versioned reference names the entry too
        return names.get(f"{match.group(1)}/{match.group(2)}")
    return None


def _references(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference":
                yield path, item
            elif key != "contained":  # contained resources reference one another by `#id`
                yield from _references(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(item, f"{path}[{index}]")


def _check_references(raw: list[dict[str, Any]], server_names: bool = False) -> None:
    """A message travels whole: every reference names an entry of the same Bundle (or, with
    `server_names`, a `Type/id` on this server)."""
    names = _names(raw)
    for index, entry in enumerate(raw):
        for path, reference in _references(entry["resource"], f"Bundle.entry[{index}].resource"):
            if not isinstance(reference, str) or not reference:
                raise Unreadable.single("value", f"{path}.reference is not a string", path)
            if reference.startswith("#") or (server_names and _RELATIVE.match(reference)):
                continue
            if _resolve(reference, names) is None:
                raise Unprocessable.single(
                    "not-found",
                    f"{path} names no entry of this message (references must resolve inside it)",
                    path,
                )


def _with_focus(message: Message, header: dict[str, Any], raw: list[dict[str, Any]]) -> Message:
    focus = header.get("focus")
    if not isinstance(focus, list) or len(focus) != 1:
        raise Unprocessable.single(
            "required", "this event needs exactly one MessageHeader.focus", "MessageHeader.focus"
        )
    names = _names(raw)
    index = _resolve(str(focus[0].get("reference")), names) if isinstance(focus[0], dict) else None
    if index is None or index == 0:
        raise Unprocessable.single(
            "not-found", "MessageHeader.focus names no entry of this message", "MessageHeader.focus"
        )
    resource = raw[index]["resource"]
    kind = resource["resourceType"]
    if message.kind == "registration":
        if kind != "Patient":
            raise _wrong_focus("a registration's focus must be a Patient", kind)
        return _replace(message, focus=resource)
    if message.kind == "answers":
        if kind != "QuestionnaireResponse":
            raise _wrong_focus("answers' focus must be a QuestionnaireResponse", kind)
        return _replace(message, focus=resource)
    if kind == "ServiceRequest":
        return _taking(message, raw, (0,), focus=resource)
    if kind != "Task":
        raise _wrong_focus("a referral's focus must be a ServiceRequest or a Task", kind)
    target = resource.get("focus") if isinstance(resource.get("focus"), dict) else {}
    request_index = _resolve(str(target.get("reference")), names)
    if request_index is None or raw[request_index]["resource"]["resourceType"] != "ServiceRequest":
        raise Unprocessable.single(
            "required",
            "the focused Task's focus must be the message's ServiceRequest",
            "Task.focus",
        )
    return _taking(
        message, raw, (0, index), focus=raw[request_index]["resource"], placer_task=resource
    )


def _wrong_focus(text: str, kind: str) -> FhirError:
    return Unprocessable.single("invalid", f"{text}, not a {kind}", "MessageHeader.focus")


def _replace(message: Message, **changes: Any) -> Message:
    return replace(message, **changes)


def _taking(
    message: Message, raw: list[dict[str, Any]], left_out: tuple[int, ...], **changes: Any
) -> Message:
    """The message with the entries intake takes: all but the header (and the placer Task)."""
    positions = tuple(i for i in range(len(raw)) if i not in left_out)
    entries = [raw[i] for i in positions]
    return replace(message, entries=entries, positions=positions, **changes)


_ENTRY = re.compile(r"Bundle\.entry\[(\d+)\]")


def renumbered(error: FhirError, message: Message) -> FhirError:
    """An intake refusal of the transaction made from `message`, its `Bundle.entry[n]` naming
    the entry's place in the message instead."""

    def place(text: str) -> str:
        return _ENTRY.sub(lambda m: f"Bundle.entry[{message.positions[int(m.group(1))]}]", text)

    issues = tuple(
        Issue(i.code, place(i.diagnostics), tuple(place(e) for e in i.expression), i.severity)
        for i in error.issues
    )
    return type(error)(*issues, status=error.status, headers=error.headers)


def as_transaction(message: Message) -> dict[str, Any]:
    """A referral message as the transaction Bundle the intake already takes: the ServiceRequest
    and its supporting resources, created together (the placer Task is adopted, not created)."""
    entries = message.entries
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                **({"fullUrl": e["fullUrl"]} if "fullUrl" in e else {}),
                "resource": e["resource"],
                "request": {"method": "POST", "url": e["resource"]["resourceType"]},
            }
            for e in entries
        ],
    }


def response_message(
    request: Message,
    *,
    response_id: str,
    code: str,
    timestamp: str,
    endpoint: str,
    focus: list[dict[str, Any]] | None = None,
    issues: tuple[Issue, ...] = (),
) -> dict[str, Any]:
    """The answer to `request`: source and destination swapped, `response` naming the request,
    the focus entries (the referral's Task, or the Patient) and any OperationOutcome after it."""
    header: dict[str, Any] = {
        "resourceType": "MessageHeader",
        "id": response_id,
        "eventCoding": request.event or {"system": FHIR_EVENTS, "code": "admin-notify"},
        "destination": [{"endpoint": request.source_endpoint}],
        "source": {"name": "referral-service", "endpoint": endpoint},
        "response": {"identifier": request.header_id, "code": code},
    }
    entries: list[dict[str, Any]] = [{"fullUrl": f"urn:uuid:{response_id}", "resource": header}]
    if focus:
        header["focus"] = [{"reference": item["fullUrl"]} for item in focus]
        entries.extend(focus)
    if issues:
        outcome_url = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, response_id)}"
        header["response"]["details"] = {"reference": outcome_url}
        outcome = {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}
        entries.append({"fullUrl": outcome_url, "resource": outcome})
    return {
        "resourceType": "Bundle",
        "id": response_id,
        "type": "message",
        "timestamp": timestamp,
        "entry": entries,
    }
