"""Deployment artefacts checked without a container engine or a cluster.

Dockerfile (hadolint, plus the rules we rely on), docker-compose.yml (Compose specification
schema plus start-order semantics the schema cannot see), Kubernetes manifests (their OpenAPI
schemas, strict), .env.example (placeholders only) and the gunicorn configuration (loads, is
accepted by gunicorn, and really writes PHI-free JSON access lines).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.support.service import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
K8S = ROOT / "deploy" / "kubernetes"
GUNICORN_CONF = ROOT / "referral_service" / "gunicorn_conf.py"
BASE_IMAGE = re.compile(r"^python:(3\.11\.\d+)-(slim-)?bookworm$")


def tool(name: str) -> str:
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: pip install -e '.[dev]' (pinned in pyproject dev extras)")
    return str(found)


def run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kwargs)


# --- Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from:]


def test_hadolint_reports_nothing() -> None:
    result = run(tool("hadolint"), "--no-color", "--failure-threshold", "style", str(DOCKERFILE))
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_dockerfile_is_multi_stage_on_one_pinned_python_with_a_slim_runtime() -> None:
    """The build stage may be the full image; the runtime is slim; both the same pinned Python
    on the same Debian, so the venv moves between them."""
    bases = [args.split()[0] for kw, args in dockerfile_instructions() if kw == "FROM"]
    assert len(bases) >= 2, "build and runtime stages"
    matches = [BASE_IMAGE.match(base) for base in bases]
    assert all(matches), f"base images not pinned to python:3.11.x[-slim]-bookworm: {bases}"
    assert len({m.group(1) for m in matches if m}) == 1, f"one Python version: {bases}"
    assert matches[-1] and matches[-1].group(2), f"runtime stage not slim: {bases[-1]}"


def test_runtime_stage_runs_as_non_root_with_healthcheck_and_no_build_tools() -> None:
    stage = final_stage()
    users = [args for kw, args in stage if kw == "USER"]
    assert users, "final stage sets USER"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]
    healthchecks = [args for kw, args in stage if kw == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0]
    assert "curl" not in healthchecks[0] and "wget" not in healthchecks[0]
    runs = " ".join(args for kw, args in stage if kw == "RUN")
    for build_tool in ("gcc", "build-essential", "apt-get install", "pip install"):
        assert build_tool not in runs, f"runtime stage must not run {build_tool!r}"
    assert any(kw == "COPY" and "--from=build" in args for kw, args in stage)


def test_image_starts_gunicorn_with_its_config_and_never_migrates() -> None:
    stage = final_stage()
    cmd = json.loads(next(args for kw, args in stage if kw == "CMD"))
    assert cmd[0] == "gunicorn"
    assert "python:referral_service.gunicorn_conf" in cmd
    assert "referral_service.wsgi:app" in cmd
    starts = " ".join(args for kw, args in stage if kw in ("CMD", "ENTRYPOINT"))
    assert "upgrade" not in starts, "migrations run by an explicit one-shot command"


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build_context() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert patterns[0] == "**", "deny everything, then allow what the build needs"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "referral_service"}


# --- docker-compose.yml -----------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_follows_the_compose_specification() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_can_fail(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        "services:\n  api:\n    image: x\n    depends_on:\n      db: {condition: up}\n"
    )
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken))
    assert result.returncode != 0


def test_compose_services_and_start_order(compose: dict) -> None:
    services = compose["services"]
    assert {"api", "worker", "postgres", "migrate", "ehr", "ehr-seed"} <= services.keys()
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if rule["condition"] == "service_healthy":
                check = services[target].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), (
                    f"{target} needs a healthcheck"
                )
    for app in ("api", "worker"):
        assert services[app]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["migrate"]["command"] == ["referral-service", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["ehr-seed"]["restart"] == "no"
    assert "referral-service ehr seed-demo" in " ".join(services["ehr-seed"]["command"])
    assert services["worker"]["depends_on"]["ehr-seed"]["condition"] == (
        "service_completed_successfully"
    )


def test_compose_worker_can_scale(compose: dict) -> None:
    worker = compose["services"]["worker"]
    assert "ports" not in worker and "container_name" not in worker
    assert worker["command"] == ["referral-service", "worker"]


def test_compose_worker_health_is_its_heartbeat(compose: dict) -> None:
    worker = compose["services"]["worker"]
    assert worker["healthcheck"]["test"] == ["CMD", "referral-service", "worker-heartbeat"]
    assert worker["environment"]["REFERRAL_WORKER_HEARTBEAT_FILE"].startswith("/tmp/")


def test_compose_postgres_keeps_data_in_a_named_volume(compose: dict) -> None:
    postgres = compose["services"]["postgres"]
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_compose_images_are_pinned(compose: dict) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        if name in ("postgres", "ehr"):
            tag = image.rsplit(":", 1)[1] if ":" in image else "latest"
            assert tag != "latest" and any(c.isdigit() for c in tag), f"{name}: {image}"
    assert compose["services"]["ehr"]["image"].startswith("hapiproject/hapi:")


def test_compose_secrets_come_from_env_files(compose: dict) -> None:
    text = COMPOSE.read_text()
    assert not re.search(r"(?i)(password|secret|token)\s*[:=]\s*\S", text)
    for name in ("api", "worker", "migrate", "postgres"):
        assert compose["services"][name]["env_file"] == ".env"


def test_env_example_holds_placeholders_only() -> None:
    values = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    secret_keys = [k for k in values if re.search("PASSWORD|SECRET|TOKEN", k)]
    assert secret_keys
    for key in secret_keys:
        assert values[key].startswith("change-me"), key
    assert "change-me" in values["REFERRAL_DATABASE_URL"]
    ignored = run("git", "check-ignore", "-q", ".env", cwd=ROOT)
    assert ignored.returncode == 0, ".env must be git-ignored"


# --- Kubernetes -------------------------------------------------------------------------


def k8s_documents() -> dict[str, dict]:
    return {
        path.name: yaml.safe_load(path.read_text())
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def by_kind(kind: str) -> list[dict]:
    return [doc for doc in k8s_documents().values() if doc["kind"] == kind]


def test_kubernetes_manifests_match_their_schemas() -> None:
    files = [str(K8S / name) for name in k8s_documents()]
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_schema_check_can_fail(tmp_path: Path) -> None:
    broken = tmp_path / "deployment.yaml"
    broken.write_text((K8S / "api-deployment.yaml").read_text().replace("replicas:", "replica:"))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", str(broken))
    assert result.returncode != 0


def test_kubernetes_has_the_pieces_of_a_deployment() -> None:
    kinds = sorted(doc["kind"] for doc in k8s_documents().values())
    for kind in ("ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Job", "Service"):
        assert kind in kinds
    assert "Secret" not in kinds, "secret values are never committed"
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    expected = set(k8s_documents()) - {"migrate-job.yaml"}
    assert set(kustomization["resources"]) == expected


def containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def test_every_pod_is_non_root_with_resources_and_secret_references() -> None:
    for doc in by_kind("Deployment") + by_kind("Job"):
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in containers(doc):
            assert {"requests", "limits"} <= container["resources"].keys()
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            refs = [src.get("secretRef", {}).get("name") for src in container["envFrom"]]
            assert "referral-service-secrets" in refs


def test_api_probes_and_service_wiring() -> None:
    api = next(d for d in by_kind("Deployment") if d["metadata"]["name"] == "referral-api")
    container = containers(api)[0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    pod_labels = api["spec"]["template"]["metadata"]["labels"]
    service = by_kind("Service")[0]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    hpa = by_kind("HorizontalPodAutoscaler")[0]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "referral-api"
    job = by_kind("Job")[0]
    assert containers(job)[0]["command"] == ["referral-service", "db", "upgrade"]


def test_worker_liveness_probe_reads_a_heartbeat_on_a_writable_volume() -> None:
    worker = next(d for d in by_kind("Deployment") if d["metadata"]["name"] == "referral-worker")
    container = containers(worker)[0]
    probe = container["livenessProbe"]
    assert probe["exec"]["command"] == ["referral-service", "worker-heartbeat"]
    # The default limit is the job lease + 60 s; the probe must not give up much sooner.
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 60
    env = {item["name"]: item["value"] for item in container["env"]}
    beat = Path(env["REFERRAL_WORKER_HEARTBEAT_FILE"])
    # The root filesystem is read-only: the heartbeat must live on a mounted volume.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = [m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")]
    assert any(beat.is_relative_to(mount) for mount in mounts), (beat, mounts)


# --- gunicorn configuration ---------------------------------------------------------------

_PRINT_CONF = """
import importlib.util
import json
from referral_service import gunicorn_conf as c
print(json.dumps({"bind": c.bind, "workers": c.workers, "graceful_timeout": c.graceful_timeout,
                  "multiproc_dir": c.multiproc_dir, "logger": c.logger_class.__name__,
                  "child_exit": callable(c.child_exit)}))
"""


def load_conf(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REFERRAL_", "PROMETHEUS"))}
    return run(sys.executable, "-c", _PRINT_CONF, env={**clean, **env}, cwd=tmp_path)


def test_gunicorn_conf_defaults(tmp_path: Path) -> None:
    result = load_conf(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["bind"] == ["127.0.0.1:8080"]
    assert values["workers"] == 2
    assert 0 < values["graceful_timeout"] <= 30
    assert values["multiproc_dir"] == str(tmp_path / "prom") and (tmp_path / "prom").is_dir()
    assert values["logger"] == "JsonAccessLogger" and values["child_exit"]


def test_gunicorn_conf_reads_the_environment(tmp_path: Path) -> None:
    result = load_conf(
        tmp_path,
        REFERRAL_BIND="0.0.0.0:9000",
        REFERRAL_WEB_CONCURRENCY="5",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
    )
    values = json.loads(result.stdout)
    assert (values["bind"], values["workers"]) == (["0.0.0.0:9000"], 5)
    bad = load_conf(tmp_path, REFERRAL_WEB_CONCURRENCY="0")
    assert bad.returncode != 0 and "REFERRAL_WEB_CONCURRENCY" in bad.stderr


TRIVIAL_APP = """
def app(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("application error")
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Request-ID", "req-42")])
    return [b"ok"]
"""


@pytest.fixture
def trivial_app(tmp_path: Path) -> Path:
    (tmp_path / "trivial_app.py").write_text(TRIVIAL_APP)
    return tmp_path


def test_gunicorn_accepts_the_config(trivial_app: Path) -> None:
    result = run(
        tool("gunicorn"), "--check-config", "-c", str(GUNICORN_CONF),
        "--chdir", str(trivial_app), "trivial_app:app",
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(trivial_app / "prom")},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_gunicorn_accepts_the_config_with_the_real_app(tmp_path: Path) -> None:
    """What the container's CMD runs (skipped until referral_service.wsgi exists)."""
    if importlib.util.find_spec("referral_service.wsgi") is None:
        pytest.skip("referral_service.wsgi not written yet")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REFERRAL_")}
    result = run(
        tool("gunicorn"), "--check-config", "-c", str(GUNICORN_CONF), "referral_service.wsgi:app",
        env={**clean, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command, run here against REFERRAL_BIND's port."""
    args = next(args for kw, args in final_stage() if kw == "HEALTHCHECK")
    command = json.loads(args[args.index("CMD") + 3 :])
    assert command[0] == "python"
    env = {**os.environ, "REFERRAL_BIND": f"0.0.0.0:{port}"}
    return run(sys.executable, *command[1:], env=env)


def get_when_up(url: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_gunicorn_writes_json_access_lines_without_query_strings(trivial_app: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMETHEUS")}
    env.update(REFERRAL_BIND=f"127.0.0.1:{port}", REFERRAL_WEB_CONCURRENCY="2")
    command = [tool("gunicorn"), "-c", str(GUNICORN_CONF), "--chdir", str(trivial_app)]
    server = subprocess.Popen(
        [*command, "trivial_app:app"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        get_when_up(f"http://127.0.0.1:{port}/fhir/ServiceRequest?identifier=MRN-123456")
        assert run_healthcheck(port).returncode == 0
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/boom?patient=MRN-654321", timeout=5)
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert run_healthcheck(port).returncode != 0, "nothing listens any more"
    assert "MRN-123456" not in output and "MRN-654321" not in output
    assert "Error handling request GET /boom?[redacted]" in output
    lines = output.splitlines()
    assert lines and all(line.startswith("{") for line in lines), "every log line is JSON"
    access = [json.loads(line) for line in lines]
    record = next(r for r in access if r.get("event") == "http_request")
    assert record["method"] == "GET" and record["path"] == "/fhir/ServiceRequest"
    assert record["status"] == 200 and record["request_id"] == "req-42"
    assert record["duration_ms"] >= 0
    failed = next(r for r in access if r.get("status") == 500)
    assert failed["path"] == "/boom"
