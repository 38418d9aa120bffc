#!/usr/bin/env bash
# folio summarize --all as an MPI batch job: the same summaries under -np 1
# and -np 3, written back to the store and to JSONL.
source "$(dirname "$0")/../mpi/lib.bash"

head -n 12 "$FOLIO_DATA/billsum-dev.jsonl" > "$T/bills.jsonl"
head -n 4 "$FOLIO_DATA/sciqa-dev.jsonl" >> "$T/bills.jsonl"
"$FOLIO" ingest --db "$T/a.lmdb" --quiet "$T/bills.jsonl" > /dev/null || fail "ingest"
cp -r "$T/a.lmdb" "$T/b.lmdb"
mpirun_n 1 "$FOLIO" summarize --all --db "$T/a.lmdb" --words 120 --out "$T/one.jsonl" || fail "-np 1"
mpirun_n 3 "$FOLIO" summarize --all --db "$T/b.lmdb" --words 120 --out "$T/three.jsonl" || fail "-np 3"
expect_eq "$(wc -l < "$T/one.jsonl")" 16 "one line per document"
cmp -s "$T/one.jsonl" "$T/three.jsonl" || fail "-np 1 and -np 3 summaries differ"
# the summaries are in the store (export lists them) and equal the single-doc command
"$FOLIO" check --db "$T/b.lmdb" > /dev/null || fail "check after --all"
id=$(sed -n '1s/^{"doc":"\([^"]*\)".*/\1/p' "$T/one.jsonl")
single=$("$FOLIO" summarize --db "$T/a.lmdb" --doc "$id" --words 120 --json)
expect_eq "$single" "$(sed -n 1p "$T/one.jsonl")" "--all and --doc agree"
n=$("$FOLIO" export --db "$T/b.lmdb" | grep -c '"summary"' || true)
[ "$n" -ge 16 ] || fail "summaries not in the store export ($n)"
echo "jobs_batch: ok"
