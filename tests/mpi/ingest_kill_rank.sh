#!/usr/bin/env bash
# kill -9 of a non-zero rank mid-run ends the job; the same command again
# gives the export of an uninterrupted run.
source "$(dirname "$0")/lib.bash"

inputs=("$FOLIO_DATA/spdx-licenses.jsonl" "$FOLIO_DATA/sciqa-dev.jsonl")
"$FOLIO" ingest --db "$T/ref.lmdb" --quiet "${inputs[@]}" > /dev/null
"$FOLIO" export --db "$T/ref.lmdb" --vectors > "$T/ref.jsonl"
total=$(wc -l < "$T/ref.jsonl")

mpirun_n 3 "$FOLIO" ingest --db "$T/k.lmdb" --quiet "${inputs[@]}" > "$T/run1.out" 2> "$T/run1.err" &
launcher=$!
victim=""
for _ in $(seq 1 1200); do
    sleep 0.05
    n=$("$FOLIO" export --db "$T/k.lmdb" 2>/dev/null | wc -l || true)
    if [ "${n:-0}" -ge 20 ]; then
        for p in $(pgrep -f "ingest --db $T/k.lmdb" || true); do
            if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1'; then victim=$p; fi
        done
        [ -n "$victim" ] && kill -9 "$victim"
        break
    fi
    kill -0 "$launcher" 2>/dev/null || break
done
set +e
wait "$launcher"
rc=$?
set -e
[ -n "$victim" ] || fail "could not find rank 1 to kill (job finished too early?)"
[ "$rc" -ne 0 ] || fail "the job reported success although rank 1 was killed"
n=$("$FOLIO" export --db "$T/k.lmdb" | wc -l)
echo "rank 1 killed; $n of $total records stored; launcher exit $rc"
"$FOLIO" check --db "$T/k.lmdb" || fail "store invalid after a rank was killed"

out=$(mpirun_n 3 "$FOLIO" ingest --db "$T/k.lmdb" --quiet "${inputs[@]}")
line=$(printf '%s\n' "$out" | tail -n 1)
echo "re-run: $line"
reconcile "$line"
"$FOLIO" export --db "$T/k.lmdb" --vectors > "$T/k.jsonl"
cmp -s "$T/ref.jsonl" "$T/k.jsonl" || fail "export after rank kill + re-run differs from an uninterrupted run"
echo "PASS"
