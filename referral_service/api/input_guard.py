"""Control characters in a request's URL (path ids, search and query parameters) or form fields
are refused with 400 before any endpoint runs; JSON bodies are checked where they are decoded
(fhir/validation.py). Names where the character was, never what surrounded it."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.datastructures import MultiDict

from referral_service.fhir.control_characters import (
    string_control_character,
    url_control_character,
)
from referral_service.fhir.outcome import Issue, Unreadable


def _refuse(where: str, code_point: str, *expression: str) -> Unreadable:
    return Unreadable(
        Issue("value", f"{where} holds the control character {code_point}", expression)
    )


def refuse_control_characters() -> None:
    code_point = url_control_character(request.path)
    if code_point:
        raise _refuse("the URL path", code_point)
    for name, values in request.args.lists():
        for text in (name, *values):
            code_point = url_control_character(text)
            if code_point:
                raise _refuse(f"parameter {_printable(name)}", code_point, _printable(name))
    # Form fields are text a person typed (a review note spans lines): FHIR's string rule.
    for name, values in _form_fields().lists():
        for text in values:
            code_point = url_control_character(name) or string_control_character(text)
            if code_point:
                raise _refuse(f"form field {_printable(name)}", code_point, _printable(name))


def _form_fields() -> MultiDict[str, str]:
    # Only forms are parsed here: reading a JSON body is left to the endpoint and its bounds.
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form
    return MultiDict()


def _printable(name: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in name)[:64]


def init_input_guard(app: Flask) -> None:
    app.before_request(refuse_control_characters)
