# Find or start the Redis that Refinery's queues use; sourced by scripts/demo.sh and scripts/test.sh.
#
# refinery_redis_ensure NAME exports REDIS_URL, trying in order:
#   1. $REDIS_URL, if it is set and answers PING;
#   2. a redis-server this script started earlier under var/NAME.* that still answers (safe to repeat);
#   3. `redis-server` from PATH, daemonized on a free 127.0.0.1 port (no persistence; pid, port and
#      log under var/);
#   4. a Redis answering at the default address 127.0.0.1:6379 (no redis-server binary here, but a
#      server is running, e.g. in a container);
#   5. as root, Debian's redis-server package (apt-get), then step 3;
#   otherwise it stops with a message saying what to install.
# refinery_redis_stop NAME stops the server step 3 started (and nothing else).
#
# Needs: REFINERY_ROOT (the repository root). Uses $REFINERY_PYTHON (a python with the `redis`
# package, i.e. the project's venv) to ping, falling back to redis-cli.

refinery_redis_ping() {
    local url="$1"
    if [[ -n "${REFINERY_PYTHON:-}" ]] && "$REFINERY_PYTHON" -c 'import redis' 2>/dev/null; then
        "$REFINERY_PYTHON" - "$url" <<'PY' >/dev/null 2>&1
import sys

import redis

sys.exit(0 if redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2, socket_timeout=2).ping() else 1)
PY
        return $?
    fi
    if command -v redis-cli >/dev/null 2>&1; then
        [[ "$(timeout 5 redis-cli -u "$url" ping 2>/dev/null)" == "PONG" ]]
        return $?
    fi
    return 1
}

refinery_free_port() {
    local python="${REFINERY_PYTHON:-python3}"
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

_refinery_redis_start_local() {
    local name="$1" var_dir="$REFINERY_ROOT/var"
    local pidfile="$var_dir/$name.pid" portfile="$var_dir/$name.port" logfile="$var_dir/$name.log"
    mkdir -p "$var_dir"
    refinery_redis_stop "$name"
    local port
    port="$(refinery_free_port)"
    redis-server --bind 127.0.0.1 --port "$port" --daemonize yes \
        --save "" --appendonly no \
        --dir "$var_dir" --pidfile "$pidfile" --logfile "$logfile" >/dev/null
    echo "$port" >"$portfile"
    local url="redis://127.0.0.1:$port/0" waited=0
    until refinery_redis_ping "$url"; do
        sleep 0.2
        waited=$((waited + 1))
        if ((waited > 75)); then
            echo "error: redis-server did not answer on port $port within 15 s; see $logfile" >&2
            tail -n 20 "$logfile" >&2 || true
            return 1
        fi
    done
    export REDIS_URL="$url"
    echo "Redis: started redis-server (pid $(cat "$pidfile" 2>/dev/null || echo '?')) at $REDIS_URL; log $logfile"
}

refinery_redis_ensure() {
    local name="${1:-redis}" var_dir="$REFINERY_ROOT/var"
    if [[ -n "${REDIS_URL:-}" ]]; then
        if refinery_redis_ping "$REDIS_URL"; then
            echo "Redis: using REDIS_URL=$REDIS_URL"
            return 0
        fi
        echo "Redis: REDIS_URL=$REDIS_URL does not answer PING; starting a local one instead." >&2
    fi
    if [[ -f "$var_dir/$name.port" && -f "$var_dir/$name.pid" ]] && kill -0 "$(cat "$var_dir/$name.pid")" 2>/dev/null; then
        local url="redis://127.0.0.1:$(cat "$var_dir/$name.port")/0"
        if refinery_redis_ping "$url"; then
            export REDIS_URL="$url"
            echo "Redis: reusing the redis-server started earlier at $REDIS_URL"
            return 0
        fi
    fi
    if command -v redis-server >/dev/null 2>&1; then
        _refinery_redis_start_local "$name"
        return $?
    fi
    if refinery_redis_ping "redis://127.0.0.1:6379/0"; then
        export REDIS_URL="redis://127.0.0.1:6379/0"
        echo "Redis: no redis-server binary here, but one answers at $REDIS_URL; using it"
        return 0
    fi
    if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
        echo "Redis: installing Debian's redis-server (apt-get)..."
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
        # The package may start a system service on 6379; we still run our own on a free port.
        _refinery_redis_start_local "$name"
        return $?
    fi
    cat >&2 <<'MSG'
error: Refinery needs Redis (the job queue) and none was found.
  Either install it:        sudo apt-get install redis-server     (Debian/Ubuntu)
  or point at a running one: export REDIS_URL=redis://HOST:6379/0
and run this script again.
MSG
    return 1
}

refinery_redis_stop() {
    local name="${1:-redis}" var_dir="$REFINERY_ROOT/var"
    local pidfile="$var_dir/$name.pid"
    if [[ -f "$pidfile" ]]; then
        local pid
        pid="$(cat "$pidfile")"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q redis "/proc/$pid/cmdline" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    fi
    rm -f "$var_dir/$name.port"
}
