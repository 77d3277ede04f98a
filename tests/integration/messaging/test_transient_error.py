"""With the database unreachable, a well-formed message is answered with a `transient-error`
response message (503, Retry-After): the sender should send it again later."""

from __future__ import annotations

from referral_service.adapters.db.engine import make_engine
from referral_service.api.app import create_app
from referral_service.config import Settings
from referral_service.runtime import Runtime
from tests.integration.messaging.conftest import referral_message
from tests.support.referrals import FHIR_JSON
from tests.support.service import free_port


def test_an_unreachable_database_answers_transient_error() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=2"
    engine = make_engine(url)
    app = create_app(runtime=Runtime(Settings(database_url=url), engine))
    response = app.test_client().post(
        "/fhir/$process-message", json=referral_message(), headers={"Content-Type": FHIR_JSON}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    body = response.get_json()
    assert body["resourceType"] == "Bundle" and body["type"] == "message"
    header = body["entry"][0]["resource"]
    assert header["response"]["identifier"] == "hdr-1"
    assert header["response"]["code"] == "transient-error"
    assert body["entry"][-1]["resource"]["issue"][0]["code"] == "transient"
    engine.dispose()
