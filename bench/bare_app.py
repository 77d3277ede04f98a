"""The baseline for bench/intake.py: a Flask app that only parses the JSON body and answers 201."""

from __future__ import annotations

import json

from flask import Flask, Response, request

app = Flask(__name__)


@app.post("/fhir/ServiceRequest")
def create() -> Response:
    document = json.loads(request.get_data())
    return Response(
        json.dumps({"id": "x", "resourceType": document["resourceType"]}),
        201,
        mimetype="application/fhir+json",
    )


@app.get("/healthz")
def healthz() -> Response:
    return Response("{}", 200, mimetype="application/json")
