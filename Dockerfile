# Mintlog: one image for every role. `docker run IMAGE` runs all five roles on embedded defaults (embedded
# NATS, Tantivy, SQLite under /var/lib/mintlog); `docker run IMAGE run --role=ingest` with MINTLOG_* settings
# pointing at NATS, OpenSearch, PostgreSQL, Redis and S3 is the production shape (see compose.yaml and
# docs/operations.md).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: build the wheel (migrations included) and install it with its dependencies into a venv ---
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mintlog ./mintlog
COPY alembic ./alembic
RUN python -m venv /opt/mintlog \
    && /opt/mintlog/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/mintlog/bin/pip install /wheels/mintlog-*.whl \
    && /opt/mintlog/bin/mintlog --version

# --- runtime: the venv only, no compiler, no sources, a non-root user ---
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="mintlog" \
      org.opencontainers.image.description="API-first backend for logs, alerts and incidents" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 mintlog \
    && useradd --system --uid 10001 --gid mintlog --home-dir /var/lib/mintlog --no-create-home \
       --shell /usr/sbin/nologin mintlog \
    && mkdir -p /var/lib/mintlog \
    && chown mintlog:mintlog /var/lib/mintlog
COPY --from=builder /opt/mintlog /opt/mintlog
# MINTLOG_HTTP__HOST: the default (127.0.0.1) would be unreachable from outside the container.
ENV PATH=/opt/mintlog/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MINTLOG_DATA_DIR=/var/lib/mintlog \
    MINTLOG_HTTP__HOST=0.0.0.0
WORKDIR /var/lib/mintlog
VOLUME ["/var/lib/mintlog"]
USER mintlog:mintlog
# 8080: ingest API, 8081: query and management API (MINTLOG_HTTP__INGEST_PORT / MINTLOG_HTTP__API_PORT).
EXPOSE 8080 8081
# Healthy when /healthz answers 200 on the ingest or the API port. The pipeline, alert and notify roles serve
# no HTTP: run them with the health check disabled (compose.yaml does), their liveness is the process itself.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request\nports = [os.environ.get('MINTLOG_HTTP__INGEST_PORT', '8080'), os.environ.get('MINTLOG_HTTP__API_PORT', '8081')]\nfor port in ports:\n    try:\n        with urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=3) as answer:\n            if answer.status == 200:\n                sys.exit(0)\n    except OSError:\n        pass\nsys.exit(1)\n"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["mintlog"]
CMD ["run"]
