#!/usr/bin/env bash
# Bring Refinery up with a finished demo run: virtualenv, packages, bundled models, Redis, database,
# demo data, one worker and the web server. Safe to repeat; ./scripts/stop.sh stops what it started.
#
# Environment: PORT (web server, default 8000), DATABASE_URL (default: SQLite under var/),
# REDIS_URL (used when it answers; otherwise a local redis-server is started), DEMO_MAX_TOKENS.
set -euo pipefail

REFINERY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REFINERY_ROOT"
# shellcheck source=lib/setup.sh
source scripts/lib/setup.sh
# shellcheck source=lib/redis.sh
source scripts/lib/redis.sh
# shellcheck source=lib/processes.sh
source scripts/lib/processes.sh

started_at=$SECONDS
PORT="${PORT:-8000}"
export DJANGO_SETTINGS_MODULE=webapp.settings.dev
export PYTHONUNBUFFERED=1
# The bundled models are on disk; never reach for a model hub.
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TRANSFORMERS_OFFLINE="${TRANSFORMERS_OFFLINE:-1}"
mkdir -p var
trap 'echo >&2; echo "demo.sh failed (see the message above; logs in var/). Stop what it started: ./scripts/stop.sh" >&2' ERR

refinery_log "Python environment"
refinery_venv_ensure requirements.txt

refinery_log "Redis"
refinery_redis_ensure redis

refinery_log "Stopping a web server and worker left by a previous run"
refinery_stop_process web
refinery_stop_process worker
if ! refinery_port_free "$PORT"; then
    echo "error: port $PORT is already in use by another program; run with PORT=<free port> ./scripts/demo.sh" >&2
    exit 1
fi

refinery_log "Database: ${DATABASE_URL:-SQLite at var/refinery.sqlite3}"
python manage.py migrate --noinput
python manage.py collectstatic --noinput --verbosity 0

refinery_log "Bundled model (converted once, then reused)"
python manage.py prepare_embedded_model

refinery_log "Demo data"
demo_data_output="$(python manage.py load_demo_data)"
echo "$demo_data_output"
login_line="$(grep -m1 'Admin login:' <<<"$demo_data_output" || true)"

refinery_log "Starting one worker and the web server (logs in var/)"
refinery_start_process worker python manage.py rqworker --with-scheduler gpu default
refinery_start_process web python manage.py runserver --noreload "127.0.0.1:$PORT"
url="http://127.0.0.1:$PORT"
refinery_wait_http "$url/healthz" 60 web

refinery_log "Demo run: answering the demo prompts with the bundled model"
python manage.py start_demo_run --wait --base-url "$url" ${DEMO_MAX_TOKENS:+--max-tokens "$DEMO_MAX_TOKENS"}

cat <<EOF

Refinery is up ($((SECONDS - started_at)) s).
  Site:      $url/
  ${login_line:-Admin login: see the output of load_demo_data above}
  Dashboard: $url/dashboard/     Runs: $url/runs/     Admin: $url/admin/
  Logs:      var/web.log  var/worker.log
  Stop:      ./scripts/stop.sh
EOF
