#!/usr/bin/env bash
# The test command: make .venv with hubless and its dev tools, then lint, type-check and run
# the test suite. The suite runs under the loopback audit when it is available (always in CI):
# it fails if any process the tests start reaches or binds an address outside 127.0.0.0/8.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' \
    --config-settings editable_mode=strict
.venv/bin/ruff check registry cli
.venv/bin/mypy --strict registry cli
# Test files run in parallel worker processes, each with its own testnet (most of the time is
# spent waiting on processes and the DHT, not computing). HUBLESS_TEST_WORKERS=0 runs them in
# this process, e.g. with a debugger; arguments after the command are passed to pytest.
WORKERS=(-n "${HUBLESS_TEST_WORKERS:-4}" --dist loadfile)
AUDIT=../shared/tools/loopback-audit
if [ -x "$AUDIT" ]; then
    command -v strace >/dev/null || { apt-get install -y -qq strace >/dev/null 2>&1 \
        || { apt-get update -qq && apt-get install -y -qq strace; } >/dev/null; }
    exec "$AUDIT" -- .venv/bin/python -m pytest "${WORKERS[@]}" "$@"
fi
if [ -n "${CI:-}" ]; then
    echo "tests/run.sh: $AUDIT is missing; CI must run the tests under it" >&2
    exit 1
fi
echo "tests/run.sh: no loopback audit here; running the tests without it" >&2
exec .venv/bin/python -m pytest "${WORKERS[@]}" "$@"
