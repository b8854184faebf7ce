# Background processes (web server, worker) with pid and log files under var/; sourced by the scripts.
#
# Each process runs in its own session/process group, so stopping it also stops anything it spawned.
# A pid file is only acted on when that pid still runs this checkout's manage.py: a stale pid reused
# by an unrelated program is never signalled.
#
# Needs: REFINERY_ROOT.

refinery_start_process() {
    local name="$1"
    shift
    local var_dir="$REFINERY_ROOT/var"
    mkdir -p "$var_dir"
    # setsid makes the process a group leader; with no job control its pid is $!.
    setsid "$@" >"$var_dir/$name.log" 2>&1 </dev/null &
    echo $! >"$var_dir/$name.pid"
    echo "$name: pid $! ($*), log var/$name.log"
}

_refinery_is_ours() {
    local pid="$1"
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    local cmdline cwd
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
    [[ "$cmdline" == *manage.py* && "$cwd" == "$REFINERY_ROOT" ]]
}

refinery_stop_process() {
    local name="$1" pidfile="$REFINERY_ROOT/var/$1.pid"
    [[ -f "$pidfile" ]] || return 0
    local pid
    pid="$(cat "$pidfile")"
    if [[ -n "$pid" ]] && _refinery_is_ours "$pid"; then
        # SIGTERM: RQ finishes nothing new and exits; the run it held is detected as lost and resumable.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "$name: stopped pid $pid"
    fi
    rm -f "$pidfile"
}

refinery_port_free() {
    "${REFINERY_PYTHON:-python3}" - "$1" <<'PY'
import socket
import sys

with socket.socket() as probe:
    probe.settimeout(1)
    sys.exit(1 if probe.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 0)
PY
}

refinery_wait_http() {
    local url="$1" timeout="$2" name="$3"
    "${REFINERY_PYTHON:-python3}" - "$url" "$timeout" <<'PY' || {
import sys
import time
import urllib.error
import urllib.request

url, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(url, timeout=2)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)  # it answers; a redirect to the login page is fine
    except OSError:
        time.sleep(0.5)
sys.exit(1)
PY
        echo "error: $name did not answer at $url within $timeout s; last lines of var/$name.log:" >&2
        tail -n 30 "$REFINERY_ROOT/var/$name.log" >&2 || true
        return 1
    }
    echo "$name: answering at $url"
}
