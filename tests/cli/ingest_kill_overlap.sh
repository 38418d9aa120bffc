#!/usr/bin/env bash
# kill -9 while rank 0's commit thread commits one round and the main thread
# computes the next, several times at different points of one job, then the
# same command to the end: the export (vectors included) is byte-identical to
# that of an uninterrupted run.  A corpus of many short documents (about 14
# rounds) with the cheap pattern, so the commits are a large part of the run.
source "$(dirname "$0")/lib.bash"

cheap="local,window=0,layers=1,heads=1,head_dim=8"
c=$T/corpus.jsonl
for i in 0 1 2 3 4 5 6 7; do
    for src in pubmed-dev billsum-dev sciqa-dev spdx-licenses; do
        sed -e "s/^{\"id\": *\"/{\"id\": \"r$i-/" -e "s/\"text\": *\"/\"text\": \"Copy $i. /" "$FOLIO_DATA/$src.jsonl"
    done
done > "$c"
"$FOLIO" ingest --db "$T/ref.lmdb" --quiet --pattern "$cheap" "$c" > /dev/null
"$FOLIO" export --db "$T/ref.lmdb" --vectors > "$T/ref.jsonl"

# committed documents of a store (empty when it does not exist yet)
docs() { { "$FOLIO" stats --db "$1" --json 2>/dev/null || true; } | sed -n 's/.*"documents":\([0-9]*\).*/\1/p'; }
total_docs=$(docs "$T/ref.lmdb")
mid=0
for k in 1 2 3; do
    before=$(docs "$T/k.lmdb"); before=${before:-0}
    "$FOLIO" ingest --db "$T/k.lmdb" --quiet --pattern "$cheap" "$c" > /dev/null 2>&1 &
    pid=$!
    # wait until this run has committed a round (so its commit thread is
    # busy from here on), then a little longer each time
    for _ in $(seq 1 400); do
        sleep 0.02
        n=$(docs "$T/k.lmdb"); n=${n:-0}
        [ "$n" -gt "$before" ] && break
        kill -0 "$pid" 2>/dev/null || break
    done
    sleep "0.$((k * 2))"
    if kill -9 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        n=$(docs "$T/k.lmdb")
        echo "kill $k: $n of $total_docs documents"
        "$FOLIO" check --db "$T/k.lmdb" > /dev/null || fail "store invalid after kill $k"
        if [ "${n:-0}" -lt "$total_docs" ]; then mid=$((mid + 1)); fi
    else
        wait "$pid" 2>/dev/null || true
        echo "kill $k: the run had ended"
    fi
done
[ "$mid" -ge 1 ] || fail "no kill landed before the end of the job"

resume_matches "kills" "$T/k.lmdb" "$T/ref.jsonl" --pattern "$cheap" "$c"
echo PASS
