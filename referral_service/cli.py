"""The `referral-service` command: serve, worker, db upgrade, evaluate, ehr ..."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from referral_service.config import Settings, SettingsError
from referral_service.observability.logging_setup import configure_logging


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _runtime(settings: Settings) -> Any:
    from referral_service.runtime import Runtime

    runtime = Runtime(settings)
    try:
        runtime.check_configuration()
    except Exception as exc:  # a malformed policy or clinic file stops start-up, clearly
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from None
    return runtime


def _prepare_database(runtime: Any) -> None:
    """Migrate (or check) the schema; a known condition is one clear line, not a traceback."""
    from sqlalchemy.exc import OperationalError

    from referral_service.adapters.db.migrate import SchemaBehind

    try:
        runtime.prepare_database()
    except SchemaBehind as exc:
        raise click.ClickException(str(exc)) from None
    except OperationalError as exc:
        url = runtime.engine.url.render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise click.ClickException(f"cannot reach the database {url}: {reason}") from None


@click.group()
def main() -> None:
    """FHIR referral intake, eligibility and booking for headache infusion therapy."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn workers")
@click.option("--no-worker", is_flag=True, help="do not start the background worker")
def serve(host: str, port: int, workers: int, no_worker: bool) -> None:
    """Run the HTTP API under gunicorn, plus the background worker."""
    settings = _settings()
    try:
        settings.check_bind(host)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    configure_logging(settings.log_format, settings.log_level)
    from referral_service.observability import prepare_multiprocess_dir

    # Shared by gunicorn's workers and the background worker; prepared before anything here
    # imports the metrics (building the runtime does).
    prepare_multiprocess_dir()
    runtime = _runtime(settings)
    _prepare_database(runtime)
    env = dict(os.environ, REFERRAL_BIND=_bind(host, port), REFERRAL_WEB_CONCURRENCY=str(workers))
    env.setdefault("REFERRAL_PUBLIC_URL", f"http://{_bind(host, port)}")
    if not no_worker:
        from referral_service.adapters.wakeup import free_udp_port

        env.setdefault("REFERRAL_WORKER_WAKE", f"127.0.0.1:{free_udp_port()}")
    children = [
        _spawn(
            [
                "-m",
                "gunicorn",
                "-c",
                "python:referral_service.gunicorn_conf",
                "referral_service.wsgi:app",
            ],
            env,
        )
    ]
    if not no_worker:
        children.append(_spawn(["-m", "referral_service.cli", "worker"], env))
    sys.exit(_supervise(children))


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, *args], env=env)


def _supervise(children: list[subprocess.Popen[bytes]]) -> int:
    """Forward SIGTERM/SIGINT to the children; if one dies, stop the others."""
    stopping = False

    def _forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    while all(child.poll() is None for child in children):
        time.sleep(0.2)
    if not stopping:
        _forward(signal.SIGTERM, None)
    codes = [child.wait() for child in children]
    return 0 if stopping else max(abs(code) for code in codes) or 1


@main.command()
@click.option("--once", is_flag=True, help="run the jobs due now, then exit")
def worker(once: bool) -> None:
    """Run the background worker (EHR calls, retries, webhook follow-ups)."""
    settings = _settings()
    configure_logging(settings.log_format, settings.log_level)
    from referral_service.heap import freeze_after_startup
    from referral_service.worker import Worker
    from referral_service.worker_lanes import WorkerLanes

    runtime = _runtime(settings)
    _prepare_database(runtime)
    if once:
        click.echo(json.dumps({"jobs": Worker(runtime).run_until_idle()}))
        return
    background = WorkerLanes(runtime)
    signal.signal(signal.SIGTERM, lambda *_: background.stop())
    signal.signal(signal.SIGINT, lambda *_: background.stop())
    freeze_after_startup()
    background.run_forever()


@main.command("worker-heartbeat")
@click.option(
    "--max-age",
    type=float,
    default=None,
    help="seconds; default: the job lease or idle poll, whichever is longer, plus 60",
)
def worker_heartbeat(max_age: float | None) -> None:
    """Liveness probe for a worker: exit 0 when its loop beat recently, 1 when it did not.
    Reads REFERRAL_WORKER_HEARTBEAT_FILE (the worker's own setting); touches nothing else."""
    from referral_service.adapters.heartbeat import heartbeat_age

    settings = _settings()
    path = settings.worker_heartbeat_file
    if not path:
        raise click.UsageError("REFERRAL_WORKER_HEARTBEAT_FILE is not set")
    limit = (
        max_age
        if max_age is not None
        else max(settings.job_lease_seconds, settings.worker_poll_seconds) + 60
    )
    age = heartbeat_age(path)
    if age is None:
        click.echo(f"no heartbeat at {path}: the worker has not started its loop", err=True)
        sys.exit(1)
    if age > limit:
        click.echo(f"worker heartbeat is {age:.0f} s old (limit {limit:.0f} s): hung", err=True)
        sys.exit(1)
    click.echo(f"worker alive: heartbeat {age:.1f} s old")


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations."""
    from referral_service.adapters.db import migrate
    from referral_service.adapters.db.engine import make_engine

    engine = make_engine(_settings().database_url)
    migrate.upgrade(engine, revision)
    click.echo(f"database at {migrate.current_revision(engine)}")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def evaluate(files: tuple[str, ...]) -> None:
    """Evaluate referrals offline: one JSON decision per file, on stdout."""
    from referral_service.domain.errors import DomainError
    from referral_service.fhir.outcome import FhirError
    from referral_service.fhir.validation import decode_json_object
    from referral_service.services.assessment.evaluate import dry_run_evaluation

    runtime = _runtime(_settings())
    unreadable = 0
    for name in files:
        try:
            document = decode_json_object(Path(name).read_bytes())
            decision = dry_run_evaluation(runtime, document)
        except (OSError, FhirError, DomainError) as exc:
            click.echo(f"{name}: {exc}", err=True)
            unreadable += 1
            continue
        click.echo(json.dumps(decision.to_dict()))
    if unreadable:
        sys.exit(2)


@main.command()
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="a running service")
@click.option("--token", envvar="REFERRAL_DEMO_TOKEN", default=None, help="bearer token (auth on)")
def demo(url: str, token: str | None) -> None:
    """Send the example referrals (examples/) to a running service through its FHIR API."""
    import requests

    from referral_service.demo import DemoError, send_examples

    try:
        for line in send_examples(url, token):
            click.echo(line)
    except (DemoError, requests.RequestException) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"sent; the console shows them at {url.rstrip('/')}/console")


@main.group()
def policy() -> None:
    """The eligibility policy (REFERRAL_POLICY_FILE)."""


@policy.command("reevaluate")
@click.option("--dry-run", is_flag=True, help="list the decisions that would change; write nothing")
def policy_reevaluate(dry_run: bool) -> None:
    """Re-evaluate open referrals under the current policy version, once after a new version.

    Prints one JSON line per changed decision (referral id, from -> to: decision, category,
    protocol, excluded drugs, policy version), one per referral skipped, then a summary line.
    Each change is recorded in the referral's history as a `re-evaluated` event and its Task
    follows; unchanged referrals are left alone."""
    settings = _settings()
    configure_logging(settings.log_format, settings.log_level)
    from referral_service.services.assessment.policy_reevaluation import reevaluate_open_referrals

    runtime = _runtime(settings)
    try:
        runtime.migrate_if_sqlite()
        report = reevaluate_open_referrals(runtime, dry_run=dry_run)
    finally:
        runtime.engine.dispose()
    for change in report.changes:
        click.echo(json.dumps(change.to_dict()))
    for referral_id, why in report.skipped:
        click.echo(json.dumps({"referral": referral_id, "skipped": why}))
    click.echo(json.dumps(report.summary()))


@main.group()
def ehr() -> None:
    """The clinic EHR: demo seeding, webhook subscription."""


@ehr.command("seed-demo")
@click.option("--days", default=14, show_default=True, type=int)
@click.option("--chairs", default=4, show_default=True, type=int)
def ehr_seed_demo(days: int, chairs: int) -> None:
    """Create the clinic's chairs as Locations, Schedules and free Slots on the EHR."""
    from datetime import UTC, datetime

    from referral_service.services.ehr.seed import seed_demo

    runtime = _runtime(_settings())
    if runtime.ehr_client is None:
        raise click.ClickException("REFERRAL_EHR_BASE_URL is not set")
    report = seed_demo(
        runtime.ehr_client, runtime.clinic, days=days, chairs=chairs, start=datetime.now(UTC).date()
    )
    click.echo(json.dumps(report, default=str))


@ehr.command("subscribe")
@click.option("--endpoint", default=None, help="webhook URL [REFERRAL_PUBLIC_URL/webhooks/fhir]")
@click.option("--status", "show_status", is_flag=True, help="show the Subscription's state only")
def ehr_subscribe(endpoint: str | None, show_status: bool) -> None:
    """Register (idempotently) this service's webhook as a Subscription on the EHR."""
    from referral_service.adapters.ehr.errors import EhrError
    from referral_service.services.ehr import subscriptions

    runtime = _runtime(_settings())
    if runtime.ehr_client is None:
        raise click.ClickException("REFERRAL_EHR_BASE_URL is not set")
    try:
        url = subscriptions.webhook_endpoint(runtime.settings, endpoint)
        if show_status:
            state = subscriptions.subscription_status(runtime.ehr_client, url)
            click.echo(json.dumps(state or {"subscription": None, "endpoint": url}))
            sys.exit(0 if state else 1)
        runtime.migrate_if_sqlite()
        click.echo(json.dumps(subscriptions.subscribe_service(runtime, url)))
    except (subscriptions.SubscriptionError, EhrError) as exc:
        raise click.ClickException(str(exc)) from None


if __name__ == "__main__":
    main()
