"""The floor for bench/intake.py: the least any intake that meets issue 2 must do per referral.

It parses the body, validates it with fhir.resources (the validator the design card and issue 2
prescribe) and stores it durably in one PostgreSQL transaction (one INSERT, one COMMIT, plain
psycopg, one connection per thread), then answers 201. No idempotency key, Task, job, history,
audit, rate limit or OperationOutcome: whatever the real service does beyond this is ours to
tune; this much is not. Its throughput bounds the ratio any implementation can reach.
"""

from __future__ import annotations

import json
import os
import threading

import psycopg
from fhir.resources.R4B.servicerequest import ServiceRequest
from flask import Flask, Response, request
from sqlalchemy.engine import make_url

# bench/intake.py creates it before starting this app.
TABLE_DDL = "CREATE TABLE floor_referrals (id bigserial PRIMARY KEY, body jsonb NOT NULL)"

app = Flask(__name__)
_local = threading.local()


def _connection() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        # the bench's SQLAlchemy URL as a libpq URI (its search_path option included)
        url = make_url(os.environ["REFERRAL_DATABASE_URL"]).set(drivername="postgresql")
        conn = _local.conn = psycopg.connect(url.render_as_string(hide_password=False))
    return conn


@app.post("/fhir/ServiceRequest")
def create() -> Response:
    body = request.get_data()
    referral = ServiceRequest.model_validate(json.loads(body))
    conn = _connection()
    row = conn.execute(
        "INSERT INTO floor_referrals (body) VALUES (%s) RETURNING id", (body.decode(),)
    ).fetchone()
    conn.commit()
    assert row is not None
    return Response(
        json.dumps({"id": str(row[0]), "resourceType": referral.get_resource_type()}),
        201,
        mimetype="application/fhir+json",
    )


@app.get("/healthz")
def healthz() -> Response:
    return Response("{}", 200, mimetype="application/json")
