#!/usr/bin/env bash
# Stop what ./scripts/demo.sh started: the web server, the worker and the redis-server it launched
# (a Redis given through REDIS_URL is left alone). Safe to run when nothing is running.
set -euo pipefail

REFINERY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REFINERY_ROOT"
# shellcheck source=lib/processes.sh
source scripts/lib/processes.sh
# shellcheck source=lib/redis.sh
source scripts/lib/redis.sh

refinery_stop_process web
refinery_stop_process worker
if [[ -f var/redis.pid ]]; then
    refinery_redis_stop redis
    echo "redis: stopped the redis-server started by demo.sh"
fi
echo "Refinery stopped. Data stays in var/ (database, artifacts, converted model)."
