# referral_service container image: build a virtualenv in one stage, run it in a clean one.
# Build:   docker build -t referral-service:dev .
# Run API: docker run -p 8080:8080 --env-file .env referral-service:dev
# Other processes use the same image with another command:
#   referral-service worker | referral-service db upgrade | referral-service ehr seed-demo

# The build stage makes the virtualenv on the same Python and Debian as the runtime, so the venv
# moves between them unchanged. Nothing of it but the venv goes on.
FROM python:3.11.15-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY referral_service ./referral_service
# Build the project's own wheel (pure Python), then install it
# with its pinned (==) dependencies from wheels only: every one ships a manylinux wheel
# (psycopg[binary], cryptography), so a dependency that would need compiling fails the build
# instead of slipping in.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && pip install --no-cache-dir --only-binary=:all: /wheels/referral_service-*.whl

FROM python:3.11.15-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="referral-service" \
      org.opencontainers.image.description="FHIR intake, eligibility and booking for headache infusion referrals"

RUN groupadd --system --gid 10001 referral \
    && useradd --system --uid 10001 --gid referral --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin referral

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    REFERRAL_BIND=0.0.0.0:8080 \
    REFERRAL_WEB_CONCURRENCY=2 \
    REFERRAL_LOG_FORMAT=json

WORKDIR /app
USER 10001:10001
EXPOSE 8080

# Liveness of the web process only; readiness (database, migrations, EHR) is /readyz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('REFERRAL_BIND', ':8080').rsplit(':', 1)[1]; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % port, timeout=4)"]

# Migrations are never run here: `referral-service db upgrade` runs once per release, as the
# compose `migrate` service or the Kubernetes Job, before new API/worker replicas start.
CMD ["gunicorn", "--config", "python:referral_service.gunicorn_conf", "referral_service.wsgi:app"]
