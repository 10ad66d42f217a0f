#!/usr/bin/env bash
# Sets up the virtualenv (.venv) and runs lint and the test suite.
# On PostgreSQL: MAXXIT_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test bash tests/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# -rs: every skipped test says why (an unreachable PostgreSQL, a missing browser)
.venv/bin/python -m pytest -q -rs -p no:cacheprovider "$@"
