#!/usr/bin/env bash
# The GPU check of issue 18, one command from the repository root, under 8 minutes:
#
#     bash benchmarks/gpu_check.sh [OUT [ARGS...]]   (OUT default ${TMPDIR:-/tmp}/biosr_gpu_check;
#                                                    ARGS go to gpu_check.py, e.g. --smoke)
#
# It reports DFCAN training images/s at batch 4 / 16 / 64 in fp32 eager (the authors' recipe)
# and in the fast recipe, peak GPU memory, loader pairs/s, and the wall time the fast recipe
# takes to reach the validation NRMSE the authors' recipe reaches in 10,000 steps on the
# small simulated preset (fewer steps if its time share ends first: the report says how
# many). Details: benchmarks/gpu_check.py. Report: OUT/gpu_check.json and stdout.
#
# torch: the machine's own (its CUDA build) is used, never installed: `pip install
# torch==2.13.0` (biosr's [ml] pin) would fetch a build that may not match the driver.
# It looks for a Python with torch in $PYTHON, .venv/bin/python, python3, python. Missing
# pure-Python dependencies (pyproject's core ones and lightning) go into .venv-gpu, a venv
# that sees the system's site-packages (so its torch); offline, point pip at a wheel folder
# (PIP_NO_INDEX=1 PIP_FIND_LINKS=DIR). biosr itself is used from src/ (PYTHONPATH), not
# installed. The phases share gpu_check.py's --budget (pass --budget N to change it); the
# whole command is killed after 480 s (8 minutes) whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${TMPDIR:-/tmp}/biosr_gpu_check}
shift || true

PY=${PYTHON:-}
if [ -z "$PY" ]; then
    for cand in .venv-gpu/bin/python .venv/bin/python python3 python; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import torch" 2>/dev/null; then
            PY=$cand
            break
        fi
    done
fi
if [ -z "$PY" ]; then
    echo "gpu_check: no Python with torch here; install this machine's CUDA build of torch" \
        "(https://pytorch.org/get-started/locally/) or set PYTHON=/path/to/python" >&2
    exit 1
fi
"$PY" -c "import torch; print('gpu_check: torch', torch.__version__, 'CUDA', torch.cuda.is_available())"

if ! "$PY" -c "import lightning, torchmetrics, scipy, tifffile, mrcfile, skimage, tqdm, pooch" \
    2>/dev/null; then
    # The requirements from pyproject.toml (one source of truth), torch left out.
    REQS=$("$PY" - <<'EOF'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
ml = [r for r in project["optional-dependencies"]["ml"] if not r.startswith("torch")]
print("\n".join(project["dependencies"] + ml))
EOF
)
    if [ "$PY" != ".venv-gpu/bin/python" ]; then
        "$PY" -m venv --system-site-packages .venv-gpu
        PY=.venv-gpu/bin/python
    fi
    echo "gpu_check: installing into .venv-gpu:" $REQS
    # shellcheck disable=SC2086
    if ! "$PY" -m pip install -q $REQS; then
        echo "gpu_check: could not install" $REQS "(offline? see the header of this script)" >&2
        exit 1
    fi
fi

export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 480 "$PY" benchmarks/gpu_check.py --out "$OUT" "$@"
