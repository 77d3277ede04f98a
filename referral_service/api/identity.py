"""Who is calling: the referring system (sender) each request acts for."""

from __future__ import annotations

from flask import g

LOCAL_SENDER = "local"


def current_sender() -> str:
    """The authenticated client; with auth off, every caller is the one local sender."""
    return str(g.get("sender", LOCAL_SENDER))


def sees_everything() -> bool:
    """Staff and admin read across senders."""
    return bool(g.get("is_staff", False))


def scope_sender() -> str | None:
    """The sender a read is limited to, or None when the caller may read across senders."""
    return None if sees_everything() else current_sender()
