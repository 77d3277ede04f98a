"""With the database unreachable, clients get 503 + Retry-After (an OperationOutcome), not 500."""

from __future__ import annotations

from referral_service.adapters.db.engine import make_engine
from referral_service.api.app import create_app
from referral_service.config import Settings
from referral_service.runtime import Runtime
from tests.support.referrals import FHIR_JSON, eligible_referral
from tests.support.service import free_port


def test_an_unreachable_database_answers_503() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=2"
    engine = make_engine(url)
    app = create_app(runtime=Runtime(Settings(database_url=url), engine))
    response = app.test_client().post(
        "/fhir/ServiceRequest", json=eligible_referral("down"), headers={"Content-Type": FHIR_JSON}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.get_json()["issue"][0]["code"] == "transient"
    engine.dispose()
