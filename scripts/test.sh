#!/usr/bin/env bash
# Run Refinery's whole test suite with everything it needs: virtualenv with the dev requirements,
# bundled models, a live Redis, Debian's Chromium for the browser tests, and PostgreSQL when one
# answers. Extra arguments go to pytest (e.g. ./scripts/test.sh -m "not slow" -x).
#
# Database: $DATABASE_URL if set; else PostgreSQL at 127.0.0.1:5432 as user postgres when it answers
# (pytest-django creates test_refinery); else SQLite under var/.
set -euo pipefail

REFINERY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REFINERY_ROOT"
# shellcheck source=lib/setup.sh
source scripts/lib/setup.sh
# shellcheck source=lib/redis.sh
source scripts/lib/redis.sh

started_at=$SECONDS
export DJANGO_SETTINGS_MODULE=webapp.settings.test
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export PYTHONUNBUFFERED=1
mkdir -p var

refinery_log "Python environment"
refinery_venv_ensure requirements-dev.txt

refinery_log "Redis"
redis_url_given="${REDIS_URL:-}"
refinery_redis_ensure redis-test
if [[ "$REDIS_URL" != "$redis_url_given" && -f var/redis-test.pid ]]; then
    trap 'refinery_redis_stop redis-test' EXIT
fi

refinery_log "Chromium (browser tests)"
browser_warning=""
if [[ ! -x /usr/bin/chromium ]]; then
    if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing Debian's chromium (apt-get)..."
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
            echo "apt-get install chromium failed" >&2
        fi
    fi
fi
if [[ -x /usr/bin/chromium ]]; then
    echo "Chromium: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
else
    # Never a Playwright browser download: the browser tests skip themselves without /usr/bin/chromium.
    browser_warning="BROWSER TESTS WILL BE SKIPPED: /usr/bin/chromium is missing and could not be installed (run as root: apt-get install chromium)."
    printf '\n\033[1;31m!!! %s\033[0m\n\n' "$browser_warning" >&2
fi

refinery_log "Database"
if [[ -z "${DATABASE_URL:-}" ]]; then
    if "$REFINERY_PYTHON" - <<'PY' 2>/dev/null; then
import sys

import psycopg

try:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3) as connection:
        connection.execute("SELECT 1")
except Exception:
    sys.exit(1)
PY
        export DATABASE_URL="postgres://postgres@127.0.0.1:5432/refinery"
    fi
fi
echo "Tests use: ${DATABASE_URL:-SQLite (var/test-refinery.sqlite3)}"

refinery_log "pytest"
set +e
python -m pytest "$@"
status=$?
set -e

echo
if ((status == 5)); then
    echo "error: pytest collected no tests (exit 5); treating that as a failure" >&2
    status=1
fi
if [[ -n "$browser_warning" ]]; then
    printf '\033[1;31m!!! %s\033[0m\n' "$browser_warning" >&2
fi
if ((status == 0)); then
    echo "All tests passed ($((SECONDS - started_at)) s including set-up)."
else
    echo "Tests FAILED (pytest exit $status, $((SECONDS - started_at)) s including set-up)." >&2
fi
exit "$status"
