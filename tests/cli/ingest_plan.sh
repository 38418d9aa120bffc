#!/usr/bin/env bash
# The planner's within-job rules (its state lives on disk, not in memory):
# the same id twice with the same content is a duplicate, with other content
# rejected (the first occurrence wins); content planned earlier in the job
# under another id becomes a duplicate record of it.  A re-run changes
# nothing (the first occurrence still wins, although it is now stored); a run
# killed in the middle and resumed stores the same as an uninterrupted one;
# many documents with long ids go through many of the on-disk index's
# batches (its map growth is tested in tests/unit/test_pipeline_scratch.c).
source "$(dirname "$0")/lib.bash"

j=$T/in.jsonl
{
    echo '{"id":"x1","title":"x","text":"First text. It has two sentences."}'
    echo '{"id":"x1","title":"x","text":"First text. It has two sentences."}'
    echo '{"id":"x1","title":"x","text":"Other text under the same id. Rejected."}'
    echo '{"id":"y1","title":"y","text":"First text. It has two sentences."}'
    echo '{"id":"z1","title":"z","text":"Third text, committed."}'
} > "$j"
# exit status 1: a document was rejected
rc=0; out=$("$FOLIO" ingest --db "$T/a.lmdb" --quiet "$j" 2> "$T/err1") || rc=$?
expect_eq "$rc" 1 "exit status with a rejected document"
line=$(printf '%s\n' "$out" | tail -n 1)
echo "first: $line"
reconcile "$line"
expect_eq "$(json_field "$line" seen)" 5 seen
expect_eq "$(json_field "$line" committed)" 2 committed
expect_eq "$(json_field "$line" duplicate)" 2 duplicate
expect_eq "$(json_field "$line" rejected)" 1 rejected
grep -q "appears twice in this job with different content" "$T/err1" || fail "no message for the repeated id"
"$FOLIO" export --db "$T/a.lmdb" > "$T/a1.jsonl"
grep -q '"y1"' "$T/a1.jsonl" || fail "duplicate record of y1 missing"
grep -q 'Other text' "$T/a1.jsonl" && fail "the second version of x1 was stored"
"$FOLIO" check --db "$T/a.lmdb" || fail check

out=$("$FOLIO" ingest --db "$T/a.lmdb" --quiet "$j" 2> /dev/null) || true
line=$(printf '%s\n' "$out" | tail -n 1)
echo "re-run: $line"
reconcile "$line"
expect_eq "$(json_field "$line" committed)" 0 "committed on re-run"
expect_eq "$(json_field "$line" rejected)" 1 "rejected on re-run"
"$FOLIO" export --db "$T/a.lmdb" > "$T/a2.jsonl"
cmp -s "$T/a1.jsonl" "$T/a2.jsonl" || fail "a re-run changed the store"

# A job that only got as far as the first x1 (as a killed run would), then
# the whole job: the same store as one uninterrupted run.
head -n 1 "$j" > "$T/head.jsonl"
"$FOLIO" ingest --db "$T/b.lmdb" --quiet "$T/head.jsonl" > /dev/null
"$FOLIO" ingest --db "$T/b.lmdb" --quiet "$j" > /dev/null 2>&1 || true
"$FOLIO" export --db "$T/b.lmdb" > "$T/b.jsonl"
cmp -s "$T/a1.jsonl" "$T/b.jsonl" || fail "a resumed job stored another version than an uninterrupted one"

# 3,000 documents with 400-byte ids, each once more under the same id and
# once under another id (content planned earlier in the job).
big=$T/big.jsonl
pad=$(printf 'p%.0s' $(seq 1 400))
for i in $(seq 1 3000); do
    printf '{"id":"%s-%d","text":"Document number %d. Short."}\n' "$pad" "$i" "$i"
done > "$big"
for i in $(seq 1 3000); do
    printf '{"id":"%s-%d","text":"Document number %d. Short."}\n' "$pad" "$i" "$i"
    printf '{"id":"copy-%d","text":"Document number %d. Short."}\n' "$i" "$i"
done >> "$big"
line=$("$FOLIO" ingest --db "$T/c.lmdb" --quiet --pattern "local,window=0,layers=1,heads=1,head_dim=8" "$big" | tail -n 1)
echo "many: $line"
reconcile "$line"
expect_eq "$(json_field "$line" committed)" 3000 "many: committed"
expect_eq "$(json_field "$line" duplicate)" 6000 "many: duplicate"
n=$("$FOLIO" stats --db "$T/c.lmdb" --json | sed -n 's/.*"duplicates":\([0-9]*\).*/\1/p')
expect_eq "$n" 3000 "many: duplicate records"
"$FOLIO" check --db "$T/c.lmdb" || fail "check (many)"
echo PASS
