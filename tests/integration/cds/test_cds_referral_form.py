"""An order-sign card for a draft referral lacking data offers the clinic's referral form;
other cards do not."""

from __future__ import annotations

from tests.integration.cds.cds_requests import draft_order, full_prefetch, hook_request
from tests.integration.cds.test_cds_hooks import cards

FORM_URL = "https://referral-service.dev/Questionnaire/headache-infusion-referral"


def test_a_card_for_missing_data_links_the_referral_form(client) -> None:
    prefetch = full_prefetch()
    del prefetch["patient"]["birthDate"]
    prefetch["observations"] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    body = hook_request([draft_order()], prefetch=prefetch)
    del body["fhirServer"]
    [card] = cards(client, body)
    assert card["indicator"] == "warning"
    assert card["links"] == [
        {"label": "The clinic's referral form", "url": FORM_URL, "type": "absolute"}
    ]
    form = client.get("/fhir/Questionnaire/headache-infusion-referral")
    assert form.status_code == 200 and form.get_json()["url"] == FORM_URL


def test_an_eligible_card_has_no_form_link(client) -> None:
    [card] = cards(client, hook_request([draft_order()]))
    assert card["indicator"] == "info"
    assert "links" not in card
