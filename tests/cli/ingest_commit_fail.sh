#!/usr/bin/env bash
# A commit that fails on the commit thread (here: the store's file may not
# grow past a size limit, so the map growth the commit needs cannot reserve
# its disk blocks: fallocate fails with EFBIG) ends the job with exit status 1,
# a message naming the store and the reason, and one naming the documents;
# the rounds committed before it stay, the store is valid, and the same
# command again (without the limit) completes the job and exports exactly
# what an uninterrupted run does.
source "$(dirname "$0")/lib.bash"

cheap="local,window=0,layers=1,heads=1,head_dim=8"
inputs=("$FOLIO_DATA/spdx-licenses.jsonl" "$FOLIO_DATA/pubmed-dev.jsonl" "$FOLIO_DATA/billsum-dev.jsonl")
"$FOLIO" ingest --db "$T/ref.lmdb" --quiet --pattern "$cheap" "${inputs[@]}" > /dev/null
"$FOLIO" export --db "$T/ref.lmdb" --vectors > "$T/ref.jsonl"
total=$(wc -l < "$T/ref.jsonl")

# The writer reserves data.mdb up to its map size (16 MiB for a new store,
# doubled when full; the whole store needs ~24 MB).  20,000 KB: the first
# map and the first round (512 documents, ~10 MB) fit, growing to 32 MiB for
# the second round does not.  SIGXFSZ ignored, so the reservation fails
# instead of killing the process.
set +e
(trap '' XFSZ; ulimit -f 20000; exec "$FOLIO" ingest --db "$T/k.lmdb" --quiet --pattern "$cheap" "${inputs[@]}") \
    > "$T/out" 2> "$T/err"
rc=$?
set -e
cat "$T/err"
[ "$rc" -eq 1 ] || fail "exit status $rc after a failed commit, expected 1"
grep -q "store '$T/k.lmdb': cannot reserve [0-9]* bytes of disk for its LMDB map (data.mdb, [0-9]* bytes now): File too large" "$T/err" \
    || fail "no message naming the store and the reason of the failed commit"
grep -q "commit of [0-9]* documents (.*) failed" "$T/err" || fail "no message naming the documents of the failed commit"
grep -q "ingest failed" "$T/err" || fail "the job did not report its failure"
tail -n 1 "$T/out" | grep -q '"seen":' || fail "no counters line after a failed commit"
n=$("$FOLIO" export --db "$T/k.lmdb" | wc -l)
echo "failed commit: $n of $total records stored"
[ "$n" -gt 0 ] && [ "$n" -lt "$total" ] || fail "the limit should fail a commit after the first round ($n of $total)"
"$FOLIO" check --db "$T/k.lmdb" || fail "store invalid after a failed commit"

resume_matches "a failed commit" "$T/k.lmdb" "$T/ref.jsonl" --pattern "$cheap" "${inputs[@]}"
echo PASS
