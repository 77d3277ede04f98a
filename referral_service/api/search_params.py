"""FHIR search over HTTP: the query of a GET or of a form-encoded `POST [type]/_search`, the
`Prefer: handling` the client asked for, and the searchset Bundle with its paging links."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import request

from referral_service.api.fhir_io import public_base
from referral_service.fhir.outcome import UnsupportedMediaType
from referral_service.fhir.search import Criteria, SearchParameter, read_criteria

FORM = "application/x-www-form-urlencoded"


def search_pairs() -> list[tuple[str, str]]:
    """The parameters of the search: a `_search` POST may carry them in the URL and the body."""
    pairs = list(request.args.items(multi=True))
    if request.method == "POST":
        kind = (request.mimetype or "").lower()
        if request.content_length and kind != FORM:
            raise UnsupportedMediaType.single(
                "not-supported", f"POST _search takes a {FORM} body", "Content-Type"
            )
        pairs += list(request.form.items(multi=True))
    return pairs


def strict_handling() -> bool:
    """`Prefer: handling=strict` (FHIR http.html#prefer); lenient is the default."""
    for header in request.headers.getlist("Prefer"):
        for part in header.split(","):
            for preference in part.split(";"):
                name, _, value = preference.strip().partition("=")
                if name.strip().lower() == "handling" and value.strip().strip('"') == "strict":
                    return True
    return False


def read_search(parameters: Mapping[str, SearchParameter]) -> Criteria:
    return read_criteria(search_pairs(), parameters, strict=strict_handling())


def search_bundle(
    resource_type: str, resources: list[dict[str, Any]], total: int, criteria: Criteria
) -> dict[str, Any]:
    """A searchset: links self, first, previous, next and last as they apply, built only from
    what the search applied; `entry` only when something matched (R4: no empty arrays)."""
    base = public_base()
    link = _linker(f"{base}/fhir/{resource_type}", criteria)
    count, offset = criteria.count, criteria.offset
    links = [link("self", offset), link("first", 0)]
    if count:
        if offset > 0:
            links.append(link("previous", max(offset - count, 0)))
        if offset + count < total:
            links.append(link("next", offset + count))
        links.append(link("last", max((total - 1) // count * count, 0)))
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
    }
    if resources:
        bundle["entry"] = [
            {
                "fullUrl": f"{base}/fhir/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ]
    return bundle


def _linker(url: str, criteria: Criteria) -> Any:
    def link(relation: str, offset: int) -> dict[str, str]:
        paging = [("_count", str(criteria.count)), ("_offset", str(offset))]
        return {"relation": relation, "url": f"{url}?{urlencode(list(criteria.applied) + paging)}"}

    return link
