"""A referral on hold for missing data resumes when the sender pushes that data later."""

from __future__ import annotations

from sqlalchemy import func, select

from referral_service.adapters.db.tables import jobs
from referral_service.worker import Worker
from tests.integration.push.placer import OBSERVATIONS, Placer, days_per_month


def _task_state(placer: Placer, task_id: str) -> tuple[str, str]:
    task = placer.ask("GET", f"/fhir/Task/{task_id}")
    return task["status"], task["businessStatus"]["coding"][0]["code"]


def _evaluations(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.engine.connect() as conn:
        query = select(func.count()).select_from(jobs).where(jobs.c.kind == "evaluate")
        return int(conn.execute(query).scalar() or 0)


def test_an_on_hold_referral_resumes_when_the_missing_observation_arrives(
    placer: Placer, runtime
) -> None:
    task_id = placer.refer(observations=("headache",))
    Worker(runtime).run_until_idle()
    assert _task_state(placer, task_id) == ("on-hold", "needs-information")
    missing = placer.ask("GET", f"/fhir/Task/{task_id}")["input"]
    assert any("migraine" in item["valueString"] for item in missing), missing

    subject = {"reference": placer.made["patient"]}
    placer.clinical(OBSERVATIONS["migraine"](subject), "migraine")
    assert Worker(runtime).run_until_idle() >= 2  # evaluate, then book
    assert _task_state(placer, task_id) == ("accepted", "booked")


def test_an_updated_observation_resumes_the_referral(placer: Placer, runtime) -> None:
    task_id = placer.refer(observations=("headache",))
    pending = OBSERVATIONS["migraine"]({"reference": placer.made["patient"]})
    pending = {key: value for key, value in pending.items() if key != "valueInteger"}
    placer.clinical({**pending, "status": "registered"}, "migraine")
    Worker(runtime).run_until_idle()
    assert _task_state(placer, task_id) == ("on-hold", "needs-information")

    # The count comes in: the referrer updates its Observation (a PUT with If-Match).
    observation = placer.ask("GET", f"/fhir/{placer.made['migraine']}")
    counted = {**observation, "status": "final", "valueInteger": 12}
    before = _evaluations(runtime)
    path = f"/fhir/{placer.made['migraine']}"
    updated = placer.ask("PUT", path, counted, **{"If-Match": 'W/"1"'})
    assert updated["meta"]["versionId"] == "2"
    assert _evaluations(runtime) == before + 1  # one evaluation per change, per referral
    Worker(runtime).run_until_idle()
    assert _task_state(placer, task_id) == ("accepted", "booked")


def test_new_data_about_another_patient_resumes_nothing(placer: Placer, as_sender, runtime) -> None:
    task_id = placer.refer(observations=("headache",))
    Worker(runtime).run_until_idle()
    before = _evaluations(runtime)
    other = Placer(placer.send, case="c2")
    other.register()
    other.clinical(OBSERVATIONS["migraine"]({"reference": other.made["patient"]}), "migraine")
    stranger = Placer(as_sender("er-b"), case="c1")
    stranger.register()
    stranger.clinical(
        days_per_month("migraine-days-per-month", 12)({"reference": placer.made["patient"]}),
        "migraine",
    )
    assert _evaluations(runtime) == before
    assert _task_state(placer, task_id)[0] == "on-hold"


def test_data_arriving_before_the_first_evaluation_queues_another(placer: Placer, runtime) -> None:
    """The first evaluation may read the data just before a push commits: evaluate again."""
    task_id = placer.refer(observations=("headache",))
    assert _task_state(placer, task_id) == ("received", "received")
    before = _evaluations(runtime)
    placer.clinical(OBSERVATIONS["migraine"]({"reference": placer.made["patient"]}), "migraine")
    assert _evaluations(runtime) == before + 1
    Worker(runtime).run_until_idle()
    assert _task_state(placer, task_id) == ("accepted", "booked")
