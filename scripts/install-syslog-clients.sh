#!/usr/bin/env bash
# Install the syslog clients the syslog e2e tests drive (syslog-ng, rsyslog) from Debian's packages.
#
# Idempotent: does nothing when both are there. Needs root (CI runs as root). The tests start each daemon
# themselves, unprivileged-style in the foreground with a generated config; the packages' own services are
# neither needed nor started (a policy-rc.d refuses them during the install).
#
# Debian's rsyslog and syslog-ng-core conflict (both provide system-log-daemon), so syslog-ng-core is
# installed as a package and rsyslog (with rsyslog-gnutls, omfwd's TLS driver) is downloaded with apt and
# unpacked into $RSYSLOG_ROOT, its libraries installed as packages. The tests look for `rsyslogd` on PATH
# first, then at $RSYSLOG_ROOT/usr/sbin/rsyslogd (modules: $RSYSLOG_ROOT/usr/lib/<arch>/rsyslog).
set -euo pipefail

RSYSLOG_ROOT="${MINTLOG_RSYSLOG_ROOT:-/opt/mintlog-test/rsyslog}"

have_rsyslog() { command -v rsyslogd >/dev/null 2>&1 || [ -x "$RSYSLOG_ROOT/usr/sbin/rsyslogd" ]; }
have_syslog_ng() { command -v syslog-ng >/dev/null 2>&1; }

if have_rsyslog && have_syslog_ng; then
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
created_policy=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=yes
fi
cleanup() { if [ -n "$created_policy" ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

apt-get update -qq
if ! have_syslog_ng; then
  apt-get install -y -qq --no-install-recommends syslog-ng-core >/dev/null
fi
if ! have_rsyslog; then
  # rsyslog's and rsyslog-gnutls's own dependencies (libraries, no conflict with syslog-ng).
  apt-get install -y -qq --no-install-recommends \
    libestr0 libfastjson4 liblognorm5 libsystemd0 libuuid1 libzstd1 zlib1g libgnutls30 >/dev/null
  workdir="$(mktemp -d)"
  chmod 755 "$workdir"  # apt downloads as the _apt user
  (cd "$workdir" && apt-get download -qq rsyslog rsyslog-gnutls)
  mkdir -p "$RSYSLOG_ROOT"
  for deb in "$workdir"/*.deb; do
    dpkg-deb -x "$deb" "$RSYSLOG_ROOT"
  done
  rm -rf "$workdir"
fi
have_rsyslog
have_syslog_ng
