#!/usr/bin/env bash
# Prepares the exports (prepare_exports.sh) and executes every notebook with nbconvert; exits
# non-zero when the preparation or any notebook fails. The ctest test `notebooks` runs this.
#
# Usage: notebooks/run_notebooks.sh [--skip-prepare] MOESCOPE_BIN [DATA_DIR]
#   DATA_DIR        exports and the executed notebooks (DATA_DIR/executed/); default notebooks/data
#   --skip-prepare  reuse the exports already in DATA_DIR
# Env: PYTHONPATH   must hold the moescope module's folder (<build>/python) for live_module.ipynb
#      MOESCOPE_NOTEBOOK_FIGURES  where the notebooks write their PNGs (default notebooks/figures)
# The notebook sources are never modified; their figures are rewritten.
set -uo pipefail

NB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3
NOTEBOOKS=(trace_tour load_and_specialization routing_consistency ablations expert_construction live_module acting_on_routing)

prepare=1
args=()
for a in "$@"; do
    case "$a" in
        --skip-prepare) prepare=0 ;;
        -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) args+=("$a") ;;
    esac
done
if [ ${#args[@]} -lt 1 ] || [ ${#args[@]} -gt 2 ]; then
    sed -n '5,5p' "$0" | sed 's/^# //' >&2
    exit 2
fi
BIN="${args[0]}"
DATA="${args[1]:-$NB_DIR/data}"
mkdir -p "$DATA/executed" || exit 1
DATA="$(cd "$DATA" && pwd)"

if ! "$PY" -c "import nbconvert, ipykernel, nbformat, h5py, matplotlib, pandas" 2>/dev/null; then
    echo "run_notebooks: $PY lacks nbconvert/ipykernel/h5py/matplotlib/pandas:" \
         "apt-get install python3-nbconvert python3-ipykernel python3-h5py python3-matplotlib python3-pandas" \
         "(scripts/install-deps.sh)" >&2
    exit 1
fi

export MOESCOPE_NOTEBOOK_DATA="$DATA"
export OMP_WAIT_POLICY=PASSIVE PYDEVD_DISABLE_FILE_VALIDATION=1 PYTHONDONTWRITEBYTECODE=1

t0=$EPOCHREALTIME
if [ "$prepare" -eq 1 ]; then
    if ! "$NB_DIR/prepare_exports.sh" "$BIN" "$DATA"; then
        echo "run_notebooks: prepare_exports.sh failed" >&2
        exit 1
    fi
fi
t_prep=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

failed=()
report=()
for nb in "${NOTEBOOKS[@]}"; do
    if [ "$nb" = expert_construction ] && [ -f "$DATA/splits/SKIPPED" ]; then
        echo "run_notebooks: SKIPPED $nb.ipynb: $(cat "$DATA/splits/SKIPPED")" >&2
        report+=("$nb: skipped")
        continue
    fi
    t1=$EPOCHREALTIME
    if "$PY" -m nbconvert --to notebook --execute --ExecutePreprocessor.timeout=600 \
            --ExecutePreprocessor.kernel_name=python3 --output-dir "$DATA/executed" \
            "$NB_DIR/$nb.ipynb" > "$DATA/executed/$nb.log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$nb")
        echo "---- $nb.ipynb failed; the end of its log ($DATA/executed/$nb.log):" >&2
        sed 's/\x1b\[[0-9;]*m//g' "$DATA/executed/$nb.log" | grep -v -e '^[0-9.]*s - ' | tail -n 25 >&2
    fi
    report+=("$nb: $status in $(awk -v a="$t1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s")
done

echo "run_notebooks: exports $t_prep s; executed notebooks in $DATA/executed" >&2
printf '  %s\n' "${report[@]}" >&2
if [ ${#failed[@]} -gt 0 ]; then
    echo "run_notebooks: ${#failed[@]} notebook(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "run_notebooks: all notebooks ran in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s" >&2
