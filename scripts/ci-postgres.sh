#!/usr/bin/env bash
# Make the PostgreSQL store tests runnable on a fresh Debian machine (CI), as root: the server
# binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin and the `postgres` user. The tests start
# their own throwaway cluster on a free loopback port (tests/store/postgres.py); nothing runs here.
# Machine images of this project's kind ship them today; this keeps CI honest if an image stops.
#
#   bash scripts/ci-postgres.sh            (idempotent)
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null && id postgres > /dev/null 2>&1 \
    && command -v runuser > /dev/null; then
  echo "ci-postgres: server binaries present ($(ls -d /usr/lib/postgresql/*/bin | tail -1))"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ci-postgres: run as root (apt-get install postgresql)" >&2
  exit 1
fi
echo "ci-postgres: installing Debian's postgresql"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql util-linux > /dev/null
# Debian's package creates and starts a default cluster; the tests use their own.
pg_ctlcluster --help > /dev/null 2>&1 && for c in $(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}'); do
  pg_ctlcluster "${c%/*}" "${c#*/}" stop || true
done
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || { echo "ci-postgres: no initdb after install" >&2; exit 1; }
echo "ci-postgres: installed $(ls -d /usr/lib/postgresql/*/bin | tail -1)"
