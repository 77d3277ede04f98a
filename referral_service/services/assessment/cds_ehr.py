"""Reading a referrer's EHR during a CDS Hooks call: only a FHIR server on the allow-list
(REFERRAL_CDS_FHIR_SERVER_ALLOWLIST) is read and given the call's access token; every request
ends by the call's deadline, with no retry and no redirect followed.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

import requests

from referral_service.adapters.ehr.auth import BearerAuth
from referral_service.adapters.ehr.client import FhirClient
from referral_service.adapters.ehr.errors import (
    EhrAuthError,
    EhrError,
    EhrNotFound,
    EhrUnavailable,
)
from referral_service.config import fhir_base
from referral_service.services.assessment.cds_chart import (
    PREFETCH,
    TIMED_OUT,
    ChartReader,
    ChartUnreadable,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 1.5  # a reachable EHR accepts a connection well within this
FETCH_LIMIT = 200  # resources per prefetch key read from the EHR; a chart is smaller than this
NO_SERVER = "the EHR did not prefetch it and gave no FHIR server to read it from"
NOT_ALLOWED = "this service is not set up to read the FHIR server named in the call"


@dataclass(frozen=True)
class EhrAccess:
    """A FHIR server this call may read, and the access token the CDS client granted for it."""

    server: str
    token: str | None


def ehr_access(
    server: str | None, grant: dict[str, Any] | None, allowlist: tuple[str, ...]
) -> tuple[EhrAccess | None, str]:
    """Access to the call's fhirServer if it is allow-listed; else None and why not."""
    if not server:
        return None, NO_SERVER
    try:
        base = fhir_base(server)
        allowed = {fhir_base(entry) for entry in allowlist}
    except ValueError:
        base, allowed = "", set()
    if base not in allowed:
        return None, NOT_ALLOWED
    token = (grant or {}).get("access_token")
    return EhrAccess(base, token if isinstance(token, str) and token else None), ""


class DeadlineSession(requests.Session):
    """A requests Session whose every request ends by `deadline` (time.monotonic()) and never
    follows a redirect (the token stays with the allow-listed server)."""

    def __init__(self, deadline: float) -> None:
        super().__init__()
        self.deadline = deadline

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise requests.Timeout("the CDS Hooks time budget is spent")
        kwargs["timeout"] = (min(CONNECT_TIMEOUT, remaining), remaining)
        kwargs["allow_redirects"] = False
        return super().request(method, url, *args, **kwargs)


def chart_reader(access: EhrAccess, patient_id: str, deadline: float) -> ChartReader:
    """Reads one prefetch key for the patient; a client (and connection) per key, so the
    reads run side by side."""

    def read(key: str) -> Any:
        client = FhirClient(
            access.server,
            auth=BearerAuth(access.token) if access.token else None,
            session=DeadlineSession(deadline),
            max_retries=0,
        )
        try:
            if key == "patient":
                return client.read("Patient", patient_id)
            kind = PREFETCH[key].split("?")[0]
            found = client.search(kind, {"patient": patient_id, "_count": 100})
            return list(itertools.islice(found, FETCH_LIMIT))
        except EhrError as exc:
            log.warning("CDS chart read failed", extra={"key": key, "error": type(exc).__name__})
            raise ChartUnreadable(why_unread(exc)) from None
        finally:
            client.close()

    return read


def why_unread(exc: EhrError) -> str:
    """The reason a read failed, as the card tells it."""
    if isinstance(exc, EhrUnavailable) and exc.status is None:
        if isinstance(exc.__cause__, requests.Timeout):
            return TIMED_OUT
        return "the EHR could not be reached"
    if isinstance(exc, EhrAuthError):
        return f"the EHR refused the read (HTTP {exc.status})"
    if isinstance(exc, EhrNotFound):
        return f"the EHR did not find it (HTTP {exc.status})"
    if isinstance(exc, EhrUnavailable):
        return f"the EHR answered with an error (HTTP {exc.status})"
    if exc.status is not None:
        return f"the EHR answered HTTP {exc.status} instead of the data"
    return "the EHR's answer could not be used"
