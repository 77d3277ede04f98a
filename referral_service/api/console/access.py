"""Who may use the console, and proof that a form was sent from a console page (CSRF).

With auth off the service trusts its one local caller, so the console answers loopback
clients only; with auth on it needs the staff scope the auth layer puts in `g.is_staff`.
CSRF uses a double-submit token: a random value in an HttpOnly, SameSite=Strict cookie that
each form repeats in a hidden field. No server secret is needed, so any number of API
processes accept each other's forms.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from flask import Response, g, request

from referral_service.fhir.outcome import FhirError

CSRF_COOKIE = "console_csrf"
CSRF_FIELD = "csrf_token"
_TOKEN_BYTES = 32


def is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address((address or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def check_access(auth_mode: str) -> None:
    if auth_mode == "none":
        if not is_loopback(request.remote_addr):
            raise FhirError.single(
                "forbidden", "with REFERRAL_AUTH=none the console serves loopback only", status=403
            )
        return
    if not g.get("is_staff", False):
        raise FhirError.single("forbidden", "the console needs the staff scope", status=403)


def staff_member() -> str:
    """The name actions are recorded under: the authenticated subject, else the local user."""
    return str(g.get("staff_subject") or g.get("sender") or "local-staff")


def csrf_token() -> str:
    """This browser's token, made on first use and sent back as a cookie by `keep_csrf_cookie`."""
    token = g.get("console_csrf")
    if token is None:
        token = request.cookies.get(CSRF_COOKIE, "")
        if len(token) < _TOKEN_BYTES:
            token = secrets.token_urlsafe(_TOKEN_BYTES)
            g.console_csrf_new = True
        g.console_csrf = token
    return str(token)


def keep_csrf_cookie(response: Response) -> Response:
    if g.get("console_csrf_new"):
        response.set_cookie(
            CSRF_COOKIE,
            g.console_csrf,
            httponly=True,
            samesite="Strict",
            secure=request.is_secure,
            path="/console",
        )
    return response


def check_csrf() -> None:
    """A console POST must carry the cookie's token and, when the browser says, our origin."""
    if request.method != "POST":
        return
    kept = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get(CSRF_FIELD, "")
    if len(kept) < _TOKEN_BYTES or not hmac.compare_digest(kept.encode(), sent.encode()):
        raise FhirError.single("forbidden", "the form's CSRF token is missing or stale", status=403)
    origin = request.headers.get("Origin")
    # Our Referrer-Policy (no-referrer) makes browsers send "Origin: null" with our own forms;
    # only a named foreign origin is proof of a cross-site post.
    if origin and origin != "null" and origin != request.host_url.rstrip("/"):
        raise FhirError.single("forbidden", "the form came from another origin", status=403)
