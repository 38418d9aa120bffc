#!/usr/bin/env bash
# bench/gpu_ncu_attn.sh — runs ON THE GPU HOST (repository root, .gpu/ carried; see GPU_NOTES.md):
# Nsight Compute on the attention kernel as it runs in a benchmark -- clocks left to the card
# (--clock-control none: the power cap included), every section -- for where a tile's time goes:
# the pipes' active cycles (tensor, XU = MUFU, FMA, ALU, LSU), issue slots, stall reasons, L2.
#   bash bench/gpu_ncu_attn.sh                       (the default kernel)
#   ALT="-DFOLIO_ATTN_SLIDE2=1" bash bench/gpu_ncu_attn.sh   (a variant too, profiled the same way)
# N (default 262144), PATTERNS (default local).  Reports and text go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
. bench/gpu_env.sh
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
N=${N:-262144}; PATTERNS=${PATTERNS:-local}; ALT=${ALT:-}
B=/tmp/gpu_ncu_attn; rm -rf "$B"; t0=$(date +%s)
if [ -n "$ALT" ]; then attn_libs "$B" main - - alt "$ALT" -; else attn_libs "$B" main - -; fi
echo "built $(( $(date +%s) - t0 )) s"
for v in main ${ALT:+alt}; do
    # skip the first launches (warm-up inside flex_compare --profile-only), profile one
    timeout 200 ncu --clock-control none --kernel-name regex:'sparse_(fwd|slide|walk)' --launch-skip 2 --launch-count 1 \
        --set full -f -o "$OUT/ncu_$v" \
        python3 bench/flex_compare.py --lib "$B/lib_$v.so" --n "$N" --patterns "$PATTERNS" --profile-only \
        > "$OUT/ncu_$v.log" 2>&1 || { echo "ncu $v failed:"; tail -5 "$OUT/ncu_$v.log"; continue; }
    ncu -i "$OUT/ncu_$v.ncu-rep" --page details --print-details all > "$OUT/ncu_$v.txt" 2>&1
    ncu -i "$OUT/ncu_$v.ncu-rep" --page raw --csv > "$OUT/ncu_$v.csv" 2>&1
    echo "== $v"
    grep -E "Duration|SM Frequency|Registers Per|Achieved Occupancy|Issue Slots Busy|Executed Ipc A|Compute \(SM\) Thr|L2 Cache Thr|Memory Thr" "$OUT/ncu_$v.txt" | head -14
    # pipe utilization and the largest stall reasons, from the raw metrics
    python3 - "$OUT/ncu_$v.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
hdr = next((r for r in rows if "Kernel Name" in r), None)
if not hdr: print("no raw metrics"); sys.exit()
i = rows.index(hdr); units, vals = rows[i + 1], rows[i + 2]
m = {hdr[k]: vals[k] for k in range(len(hdr))}
def num(x):
    try: return float(x.replace(",", ""))
    except ValueError: return None
pipes = sorted(((num(v), k) for k, v in m.items()
                if k.startswith("sm__inst_executed_pipe_") and k.endswith(".avg.pct_of_peak_sustained_active") and num(v)),
               reverse=True)[:10]
for v, k in pipes: print(f"  pipe {k[len('sm__inst_executed_pipe_'):k.index('.')]:<24} {v:6.1f} % of peak")
for k in ("sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active",
          "sm__pipe_shared_cycles_active.avg.pct_of_peak_sustained_active",
          "smsp__issue_active.avg.pct_of_peak_sustained_active"):
    if k in m: print(f"  {k:<72} {m[k]}")
stalls = sorted(((num(v), k) for k, v in m.items()
                 if k.startswith("smsp__average_warps_issue_stalled_") and k.endswith("_per_issue_active.ratio") and num(v)),
                reverse=True)[:10]
# warps stalled for that reason per issued instruction (their sum: a warp's cycles per instruction)
for v, k in stalls: print(f"  stall {k[len('smsp__average_warps_issue_stalled_'):-len('_per_issue_active.ratio')]:<24} {v:7.2f}")
PY
done
echo "total $(( $(date +%s) - t0 )) s"
