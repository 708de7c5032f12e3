#!/usr/bin/env bash
# The prepared GPU check: every attn-doctor step that needs a real GPU, each bounded by its own
# time limit and all of them by a total budget, written into one folder with a one-page
# summary.md. Works without network. Documented in docs/gpu-check.md.
#
#   scripts/gpu_check.sh OUT [--python PY] [--wheelhouse DIR --wheel NAME] [--budget S]
#                            [--bench-backends "A B"] [--quick]
#
# OUT           folder for the outputs (created; existing files in it are replaced)
# --python PY   the interpreter whose environment is checked (default: python3)
# --wheelhouse DIR --wheel NAME
#               also run `attn-doctor install NAME --wheelhouse DIR --yes`, with `pip freeze`
#               before and after compared (NAME: a backend such as xformers, or a wheel file
#               name in DIR: that distribution at exactly that version)
# --budget S    total seconds for all steps (default 470: under 8 minutes with the summary)
# --bench-backends "A B"
#               bench only these (default: every backend that can run here)
# --quick       tiny steps on the CPU: for testing this script's plumbing without a GPU
set -u

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

OUT=""
PY="python3"
WHEELHOUSE=""
WHEEL=""
BUDGET=470
BENCH_BACKENDS=""
QUICK=0
while [ $# -gt 0 ]; do
    case "$1" in
        --python) PY="${2:?--python needs a value}"; shift 2 ;;
        --wheelhouse) WHEELHOUSE="${2:?--wheelhouse needs a value}"; shift 2 ;;
        --wheel) WHEEL="${2:?--wheel needs a value}"; shift 2 ;;
        --budget) BUDGET="${2:?--budget needs a value}"; shift 2 ;;
        --bench-backends) BENCH_BACKENDS="${2?--bench-backends needs a value}"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        -h|--help) usage ;;
        -*) echo "gpu_check.sh: unknown option $1" >&2; exit 2 ;;
        *) if [ -z "$OUT" ]; then OUT="$1"; shift; else echo "gpu_check.sh: one OUT folder only" >&2; exit 2; fi ;;
    esac
done
[ -n "$OUT" ] || { echo "gpu_check.sh: name an OUT folder" >&2; exit 2; }
case "$BUDGET" in ''|*[!0-9]*) echo "gpu_check.sh: --budget $BUDGET is not a number of seconds" >&2; exit 2 ;; esac
if [ -n "$WHEELHOUSE" ] && [ ! -d "$WHEELHOUSE" ]; then
    echo "gpu_check.sh: --wheelhouse $WHEELHOUSE is not a folder" >&2; exit 2
fi
if { [ -n "$WHEELHOUSE" ] && [ -z "$WHEEL" ]; } || { [ -z "$WHEELHOUSE" ] && [ -n "$WHEEL" ]; }; then
    echo "gpu_check.sh: --wheelhouse and --wheel go together" >&2; exit 2
fi
command -v "$PY" >/dev/null 2>&1 || { echo "gpu_check.sh: --python $PY is not an interpreter here" >&2; exit 2; }

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$OUT" || exit 2
OUT="$(cd "$OUT" && pwd)"
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Never ask, never reach for the network, never touch the user's bench cache (--no-save).
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1
cd "$ROOT" || exit 2
: > "$OUT/steps.tsv"
START=$(date +%s)

# step NAME LIMIT CMD...: run CMD into NAME.out/.err under min(LIMIT, budget left);
# one line "name<TAB>status<TAB>rc<TAB>seconds<TAB>limit" in steps.tsv.
step() {
    local name=$1 limit=$2; shift 2
    local left=$(( BUDGET - ($(date +%s) - START) ))
    if [ "$left" -lt 5 ]; then
        printf '%s\tskipped\t-\t0\t%s\n' "$name" "$limit" >> "$OUT/steps.tsv"
        echo "gpu_check: $name skipped (budget spent)" >&2
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "gpu_check: $name (limit ${limit}s)" >&2
    local t0 rc status
    t0=$(date +%s.%N)
    timeout -k 5 "$limit" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
    rc=$?
    case "$rc" in
        0) status=ok ;;
        124|137) status=timeout ;;
        *) status="exit-$rc" ;;
    esac
    printf '%s\t%s\t%s\t%.1f\t%s\n' "$name" "$status" "$rc" \
        "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$limit" >> "$OUT/steps.tsv"
}

AD=("$PY" -m attn_doctor)
if [ "$QUICK" = 1 ]; then
    LIM_SHORT=60; LIM_LONG=120
    VERIFY=(verify --json --quick --no-model --device cpu --timeout 60 eager sdpa_math)
    BENCH_SHAPE=(--device cpu --seqlen 128 --head-dim 64 --dtype fp32 --causal --reps 3 --timeout 60 --no-save)
    PYTEST=(-m pytest -q -p no:cacheprovider -m gpu tests/test_verify_kernels.py)
else
    LIM_SHORT=60; LIM_LONG=240
    VERIFY=(verify --json --quick --timeout 180)
    BENCH_SHAPE=(--seqlen 1k,4k,16k --head-dim 128 --causal --reps 5 --timeout 100 --no-save)
    # The files that hold GPU tests (each imports only what the package needs).
    # tests/functional holds the GPU tests that start processes (FlashInfer's verify and bench).
    mapfile -t GPU_TEST_FILES < <(grep -l "mark.gpu" tests/test_*.py tests/functional/test_*.py)
    PYTEST=(-m pytest -q -p no:cacheprovider -m gpu "${GPU_TEST_FILES[@]}")
fi
read -r -a BENCH_NAMES <<< "$BENCH_BACKENDS"

{
    date -u +"date: %Y-%m-%dT%H:%M:%SZ"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "quick: $QUICK"
    echo "python: $("$PY" -c 'import sys; print(sys.version.split()[0])' 2>&1)"
    "$PY" - <<'EOF' 2>&1
try:
    import torch
    print("torch:", torch.__version__, "cuda", torch.version.cuda)
    if torch.cuda.is_available():
        print("gpu:", torch.cuda.get_device_name(), "cc %d.%d" % torch.cuda.get_device_capability())
    else:
        print("gpu: none visible to torch")
except Exception as exc:
    print("torch: import failed:", type(exc).__name__, exc)
EOF
    command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/nvidia-smi: /'
} > "$OUT/env.txt"

step check          "$LIM_SHORT" "${AD[@]}" check
step check-deep     "$LIM_LONG"  "${AD[@]}" check --deep --json
step snapshot       "$LIM_SHORT" "${AD[@]}" check --save-snapshot "$OUT/machine.snapshot.json"
step runtime        "$LIM_SHORT" "$PY" - <<'EOF'
import torch
from attn_doctor import explain_choice, load_kwargs
for dt, tr in ((torch.bfloat16, False), (torch.float16, True), (torch.float32, False)):
    c = explain_choice(None, dtype=dt, training=tr)
    print(dt, "training" if tr else "inference", "->", c.value)
    print(c.explain())
print("load_kwargs:", load_kwargs())
EOF
# torch's sdpa_kernel(set_priority=True): the order before any SDPA call, after a first
# default dispatch (the lazy cuDNN preference of torch >= 2.10), inside and after the block.
step sdpa-restore   "$LIM_SHORT" "$PY" - <<'EOF'
import torch
get = getattr(torch._C, "_get_sdp_priority_order", None)
if get is None or not torch.cuda.is_available():
    raise SystemExit("not run: no CUDA device or no _get_sdp_priority_order in this torch")
from torch.nn.attention import SDPBackend, sdpa_kernel
print("before any SDPA call:", list(get()))
q = torch.randn(1, 2, 64, 64, device="cuda", dtype=torch.bfloat16)
torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
first = list(get())
print("after the first default dispatch:", first)
with sdpa_kernel([SDPBackend.MATH, SDPBackend.FLASH_ATTENTION], set_priority=True):
    print("inside the block:", list(get()))
after = list(get())
print("after the block:", after)
print("restored" if after == first else "NOT restored")
raise SystemExit(0 if after == first else 1)
EOF
step verify         "$LIM_LONG"  "${AD[@]}" "${VERIFY[@]}"
if [ -n "$WHEEL" ]; then
    # A backend name (xformers), or a wheel file in the wheelhouse: then its distribution is
    # the backend and exactly that version is installed.
    INSTALL=(install "$WHEEL" --wheelhouse "$WHEELHOUSE")
    case "$WHEEL" in
        *.whl)
            base=$(basename "$WHEEL"); dist=${base%%-*}; rest=${base#*-}
            INSTALL=(install "$dist" --wheelhouse "$WHEELHOUSE" --requirement "$dist==${rest%%-*}")
            ;;
    esac
    "$PY" -m pip freeze > "$OUT/freeze-before.txt" 2> /dev/null
    step install-plan "$LIM_SHORT" "${AD[@]}" "${INSTALL[@]}" --dry-run
    step install      "$LIM_LONG"  "${AD[@]}" "${INSTALL[@]}" --yes
    "$PY" -m pip freeze > "$OUT/freeze-after.txt" 2> /dev/null
    diff "$OUT/freeze-before.txt" "$OUT/freeze-after.txt" > "$OUT/freeze.diff"
fi
if "$PY" -m pytest --version > /dev/null 2>&1; then
    step pytest-gpu "$LIM_LONG" "$PY" "${PYTEST[@]}"
else
    printf 'pytest-gpu\tskipped\t-\t0\t0\n' >> "$OUT/steps.tsv"
    echo "pytest is not installed for $PY: bring its wheel and install it first" > "$OUT/pytest-gpu.out"
fi
step bench-fwd      "$LIM_LONG"  "${AD[@]}" bench "${BENCH_NAMES[@]}" "${BENCH_SHAPE[@]}" --fwd --json
step bench-fwd-bwd  "$LIM_LONG"  "${AD[@]}" bench "${BENCH_NAMES[@]}" "${BENCH_SHAPE[@]}" --fwd-bwd --json

"$PY" "$ROOT/scripts/gpu_check_summary.py" "$OUT" > "$OUT/summary.md" 2> "$OUT/summary.err"
rc=$?
echo "gpu_check: summary in $OUT/summary.md (total $(( $(date +%s) - START ))s)" >&2
exit "$rc"
