#!/usr/bin/env bash
# kill -9 during an ingest, then the same command again: the export equals
# that of an uninterrupted run, byte for byte, vectors included.
source "$(dirname "$0")/lib.bash"

inputs=("$FOLIO_DATA/spdx-licenses.jsonl" "$FOLIO_DATA/pubmed-dev.jsonl")
"$FOLIO" ingest --db "$T/ref.lmdb" --quiet "${inputs[@]}" > /dev/null
"$FOLIO" export --db "$T/ref.lmdb" --vectors > "$T/ref.jsonl"
total=$(grep -c '"id"' "$T/ref.jsonl" || true)

"$FOLIO" ingest --db "$T/k.lmdb" --quiet "${inputs[@]}" > /dev/null &
pid=$!
# Kill once some but not all documents are in.
killed=0
for _ in $(seq 1 600); do
    sleep 0.05
    n=$("$FOLIO" export --db "$T/k.lmdb" 2>/dev/null | grep -c '"id"' || true)
    if [ "${n:-0}" -ge 20 ]; then kill -9 "$pid" 2>/dev/null && killed=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
done
wait "$pid" 2>/dev/null || true
[ "$killed" = 1 ] || fail "the ingest finished before it could be killed"
n=$("$FOLIO" export --db "$T/k.lmdb" | grep -c '"id"' || true)
echo "killed with $n of $total records in the store"
[ "$n" -lt "$total" ] || fail "kill came too late to test resumption"
"$FOLIO" check --db "$T/k.lmdb" || fail "store invalid after kill -9"

resume_matches "kill -9" "$T/k.lmdb" "$T/ref.jsonl" "${inputs[@]}"
echo "PASS"
