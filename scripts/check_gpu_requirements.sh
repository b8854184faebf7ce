#!/usr/bin/env bash
# Resolve requirements-gpu.txt (with the requirements.txt it includes) for a CUDA Linux host, without
# installing anything, so a pin change that breaks the GPU install fails on a CPU machine. CI runs it
# as its own step (.ci/run); run it by hand after touching any requirements file:
#   ./scripts/check_gpu_requirements.sh            # prints the resolved versions; exit 1 on a conflict
#
# How: `pip install --dry-run --report` for CPython 3.11 on manylinux x86_64 (glibc up to 2.35, e.g.
# Ubuntu 22.04), binary wheels only, so pip reads each candidate's declared requirements exactly as a
# GPU host's pip would. Two adjustments, both so the answer is the GPU host's:
# - torch: a local CPU build of the pinned version (torch==X+cpu, e.g. a find-links folder) is excluded,
#   so the resolve takes the index's torch, which is the CUDA build on Linux with its nvidia-* wheels.
# - packages published only as source (SOURCE_ONLY below: DeepSpeed) have no wheel to read; their
#   metadata is built here (`setup.py egg_info`, a few seconds, no compiler) and their declared runtime
#   requirements are resolved in their place.
# Cost: an index that serves wheel metadata on its own (PEP 658) answers with a few MB; one that does not
# makes pip download the wheels themselves (about 2.6 GB, 75-110 s against the project's registry mirror,
# measured 2026-12-03; that mirror's answers are not cacheable, so every run pays it). A cheaper
# `--no-deps` check of the direct pins would miss what broke the install before: mistral-common, two
# levels down from vllm, caps numpy. Needs the package index (not offline-safe), so it is a CI step of
# its own (.ci/run) and not part of scripts/test.sh.
set -euo pipefail

REFINERY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REFINERY_ROOT"
PYTHON="${REFINERY_PYTHON:-$REFINERY_ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || PYTHON="$(command -v python3)"
GPU_REQUIREMENTS="${1:-requirements-gpu.txt}"
SOURCE_ONLY=(deepspeed)
PLATFORMS=()
for glibc_minor in $(seq 35 -1 5); do PLATFORMS+=(--platform "manylinux_2_${glibc_minor}_x86_64"); done
PLATFORMS+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p var
report="var/gpu-requirements-report.json"
started_at=$SECONDS

# The GPU file with each source-only pin replaced by the requirements that release declares.
"$PYTHON" - "$GPU_REQUIREMENTS" "$work" "${SOURCE_ONLY[@]}" <<'PY'
import re
import sys
from pathlib import Path

gpu_file, work, *source_only = sys.argv[1:]
lines, pins = [], []
for line in Path(gpu_file).read_text(encoding="utf-8").splitlines():
    name = re.match(r"\s*([A-Za-z0-9_.-]+)\s*==", line)
    if name and name.group(1).lower() in source_only:
        pins.append(line.split("#")[0].strip())
        continue
    # -r/-c paths are relative to the GPU file's folder, as pip reads them.
    option = re.match(r"\s*(-r|-c|--requirement|--constraint)\s+(\S+)", line)
    if option and not Path(option.group(2)).is_absolute():
        line = f"{option.group(1)} {(Path(gpu_file).resolve().parent / option.group(2))}"
    lines.append(line)
Path(work, "gpu.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
Path(work, "source-only.txt").write_text("".join(pin + "\n" for pin in pins), encoding="utf-8")
PY

if [[ -s "$work/source-only.txt" ]]; then
    "$PYTHON" -m pip install --dry-run --ignore-installed --no-deps --quiet --report "$work/source-only.json" \
        -r "$work/source-only.txt" 2> >(grep -v "^WARNING: Location" >&2)
    "$PYTHON" - "$work" <<'PY'
import json
import sys
from pathlib import Path

work = Path(sys.argv[1])
requirements = []
for item in json.loads((work / "source-only.json").read_text())["install"]:
    metadata = item["metadata"]
    declared = [r for r in metadata.get("requires_dist", []) if "extra ==" not in r]
    print(f"{metadata['name']} {metadata['version']} (source only) declares: {', '.join(declared) or 'nothing'}")
    requirements += declared
with (work / "gpu.txt").open("a", encoding="utf-8") as gpu:
    gpu.write("".join(r + "\n" for r in requirements))
PY
fi

# Exclude a local CPU build of the pinned torch so the resolve uses the CUDA one.
torch_pin="$(sed -n 's/^torch==\([0-9.]*\).*/\1/p' requirements.txt | head -1)"
: >"$work/constraints.txt"
[[ -n "$torch_pin" ]] && echo "torch!=${torch_pin}+cpu" >"$work/constraints.txt"

echo "Resolving $GPU_REQUIREMENTS for CPython 3.11, manylinux x86_64 (CUDA torch)..."
set +e
"$PYTHON" -m pip install --dry-run --ignore-installed --report "$report" \
    --target "$work/target" --only-binary=:all: "${PLATFORMS[@]}" \
    --python-version 3.11 --implementation cp --abi cp311 \
    -c "$work/constraints.txt" -r "$work/gpu.txt" >"$work/pip.log" 2>&1
status=$?
set -e
if ((status != 0)); then
    # The conflict pip names (its "conflict is caused by" block), else the end of its log.
    grep -v "^WARNING: Location" "$work/pip.log" | grep -v "Ignored the following versions" >"$work/errors.log" || true
    if grep -q "conflict is caused by" "$work/errors.log"; then
        sed -n '/conflict is caused by/,$p' "$work/errors.log" | head -40 >&2
    else
        tail -20 "$work/errors.log" >&2
    fi
    printf '\n\033[1;31m!!! %s does not resolve for a CUDA Linux host (pip exit %s, %s s): see above.\033[0m\n' \
        "$GPU_REQUIREMENTS" "$status" "$((SECONDS - started_at))" >&2
    exit 1
fi

"$PYTHON" - "$report" <<'PY'
import json
import sys

install = json.load(open(sys.argv[1], encoding="utf-8"))["install"]
versions = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"] for item in install}
shown = ["torch", "vllm", "transformers", "trl", "peft", "accelerate", "datasets", "xgrammar", "numpy",
         "tokenizers", "safetensors", "huggingface-hub", "triton", "flashinfer-python", "nvidia-nccl-cu13"]
print("Resolved: " + ", ".join(f"{name}=={versions[name]}" for name in shown if name in versions))
missing = [name for name in ("torch", "vllm", "transformers") if name not in versions]
if missing:
    sys.exit(f"the resolve left out {', '.join(missing)}")
print(f"{len(versions)} distributions in all (full report: {sys.argv[1]})")
PY
echo "GPU requirements resolve ($((SECONDS - started_at)) s)."
