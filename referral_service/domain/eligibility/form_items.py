"""Which items of the referral form would settle which missing data (Decision.missing): the
engine's words on one side, the policy's extraction map on the other."""

from __future__ import annotations

from referral_service.domain.eligibility import missing
from referral_service.domain.referral_form import ReferralForm

_METRIC_MISSING = {
    "headache_days": (missing.HEADACHE_DAYS, missing.DURATION),
    "migraine_days": (missing.MIGRAINE_DAYS,),
    "debilitating_days": (missing.DEBILITATING_DAYS,),
}
_SETTLES: dict[str, tuple[str, ...]] = {
    "metric-months": (missing.DURATION,),
    "acute-days": (missing.ACUTE_MEDICATION,),
    "preventive-drug": (missing.PREVENTIVES,),
    "preventive-months": (missing.PREVENTIVES,),
    "preventive-outcome": (missing.PREVENTIVES,),
    "pregnancy-asked": (missing.PREGNANCY_STATUS,),
    "pregnancy-status": (missing.PREGNANCY_STATUS,),
    "pregnancy-status-date": (missing.PREGNANCY_STATUS,),
}


def settles(form: ReferralForm, link_id: str, pregnancy_days: int) -> tuple[str, ...]:
    """The `Decision.missing` items an answer to `link_id` settles."""
    rule = form.extraction.get(link_id)
    if rule is None:
        return ()
    found = _METRIC_MISSING.get(rule.metric or "", ()) if rule.fact == "metric" else ()
    found += _SETTLES.get(rule.fact, ())
    return tuple(m.format(days=pregnancy_days) for m in found)


def items_for(form: ReferralForm, wanted: str, pregnancy_days: int) -> tuple[str, ...]:
    """The linkIds, in the form's order, whose answers would settle one missing item."""
    return _settled_by(form, pregnancy_days).get(wanted, ())


# The last form's answers to items_for, for every missing item at once: a needs-information
# Task asks for each of its missing items on every write, and the form never changes.
_last: tuple[ReferralForm, int, dict[str, tuple[str, ...]]] | None = None


def _settled_by(form: ReferralForm, pregnancy_days: int) -> dict[str, tuple[str, ...]]:
    global _last
    last = _last  # one read: another thread may replace it meanwhile
    if last is not None and last[0] is form and last[1] == pregnancy_days:
        return last[2]
    links: dict[str, list[str]] = {}
    for link in form.items:
        for item in dict.fromkeys(settles(form, link, pregnancy_days)):
            links.setdefault(item, []).append(link)
    index = {item: tuple(found) for item, found in links.items()}
    _last = (form, pregnancy_days, index)
    return index
