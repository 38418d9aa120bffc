#!/usr/bin/env bash
# The rounds' packing follows the ranks' measured rates (from the second
# round on), and rank 0 gives the end of its share to ranks that are done,
# so which rank computes a document depends on timings: the export must
# not.  Many small rounds (FOLIO_ROUND_DOCS) of the dev data at -np 1, 2 and
# 3, twice at -np 2, then at -np 2 and 3 with rank 0 packed as if 8x faster
# (FOLIO_ROUND_RANK0_BIAS), so that it must give documents away every
# round: byte-identical exports, counters that reconcile, every rank
# computing part of the corpus (rank 0's share of the tokens strictly
# between 0 and 100 %), and documents given away in the biased runs.
source "$(dirname "$0")/lib.bash"

inputs=("$FOLIO_DATA/pubmed-dev.jsonl" "$FOLIO_DATA/billsum-dev.jsonl")
export FOLIO_ROUND_DOCS=12

run=0
for spec in 1 2 3 2 2:8 3:8; do
    np=${spec%%:*}
    bias=1.1
    [ "$spec" = "$np" ] || bias=${spec#*:}
    run=$((run + 1))
    out=$(FOLIO_ROUND_RANK0_BIAS=$bias mpirun_n "$np" "$FOLIO" ingest --db "$T/r$run.lmdb" --progress --threads 1 "${inputs[@]}" 2> "$T/r$run.err")
    line=$(printf '%s\n' "$out" | tail -n 1)
    ranks=$(grep '^ranks' "$T/r$run.err" | tail -n 1)
    echo "np=$np: $line"
    echo "    $ranks"
    reconcile "$line"
    expect_eq "$(json_field "$line" committed)" 200 "committed at -np $np"
    share=$(printf '%s\n' "$ranks" | sed -n "s/.*rank 0's share \([0-9.]*\)%.*/\1/p")
    [ -n "$share" ] || fail "no rank-0 share in: $ranks"
    if [ "$np" = 1 ]; then
        expect_eq "$share" 100.0 "rank 0's share at -np 1"
    else
        awk -v s="$share" 'BEGIN { exit !(s > 0 && s < 100) }' || fail "rank 0's share $share% at -np $np"
    fi
    gave=$(printf '%s\n' "$ranks" | sed -n 's/.*(gave \([0-9]*\) documents.*/\1/p')
    [ -n "$gave" ] || fail "no documents-given count in: $ranks"
    if [ "$bias" = 8 ]; then
        [ "$gave" -gt 0 ] || fail "rank 0 packed 8x heavier gave nothing away at -np $np"
    fi
    "$FOLIO" check --db "$T/r$run.lmdb" || fail "check at -np $np"
    "$FOLIO" export --db "$T/r$run.lmdb" --vectors > "$T/r$run.jsonl"
    [ "$run" = 1 ] || cmp -s "$T/r1.jsonl" "$T/r$run.jsonl" || fail "export at -np $np (run $run) differs from -np 1"
done
echo "PASS"
