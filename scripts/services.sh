#!/usr/bin/env bash
# Start, stop and report the real services Mintlog's tests use, on 127.0.0.1 only, installing what a fresh
# Debian machine lacks. Idempotent: `up` on a running service does nothing. Used by `make services-*`,
# by .ci/run and by the test fixtures.
#
#   scripts/services.sh up [postgres] [redis]      (no name: all)
#   scripts/services.sh down [postgres] [redis]
#   scripts/services.sh status
#   scripts/services.sh env                        print TEST_POSTGRES_URL=… and TEST_REDIS_URL=…
#
# State lives in $SERVICES_DIR (default /tmp/mintlog-services). Ports: PostgreSQL 55432, Redis 56379
# (override with POSTGRES_PORT / REDIS_PORT).
set -euo pipefail

SERVICES_DIR="${SERVICES_DIR:-/tmp/mintlog-services}"
POSTGRES_PORT="${POSTGRES_PORT:-55432}"
REDIS_PORT="${REDIS_PORT:-56379}"
PG_DATA="$SERVICES_DIR/postgres"
PG_USER="mintlog"
PG_DB="mintlog"

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

status() {
  if postgres_running; then echo "postgres  up    127.0.0.1:$POSTGRES_PORT  $PG_DATA"; else echo "postgres  down"; fi
  if redis_running; then echo "redis     up    127.0.0.1:$REDIS_PORT  $SERVICES_DIR/redis"; else echo "redis     down"; fi
}

env_lines() {
  echo "TEST_POSTGRES_URL=postgresql+asyncpg://$PG_USER:$PG_USER@127.0.0.1:$POSTGRES_PORT/$PG_DB"
  echo "TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
}

command="${1:-status}"; shift || true
names=("$@"); [ ${#names[@]} -eq 0 ] && names=(postgres redis)
case "$command" in
  up) for name in "${names[@]}"; do "${name}_up"; done ;;
  down) for name in "${names[@]}"; do "${name}_down"; done ;;
  status) status ;;
  env) env_lines ;;
  *) echo "usage: $0 up|down|status|env [postgres] [redis]" >&2; exit 2 ;;
esac
