#!/usr/bin/env bash
# Sharding does not change results: `folio export --vectors` is byte-identical
# for -np 1, 2, 3 and 4 on dev data plus one document of >= 1,000,000 tokens
# (concatenated dev documents, shared by every rank) and one shorter than a
# block per rank; counters reconcile every time.
source "$(dirname "$0")/lib.bash"

big=$T/big-concatenated.txt
cat "$FOLIO_DATA/spdx-licenses.jsonl" "$FOLIO_DATA/pubmed-dev.jsonl" > "$big"
printf 'A short note. It is shorter than one block per rank.\n' > "$T/short.txt"
inputs=("$FOLIO_DATA/sciqa-dev.jsonl" "$big" "$T/short.txt")

for np in 1 2 3 4; do
    out=$(mpirun_n "$np" "$FOLIO" ingest --db "$T/np$np.lmdb" --quiet "${inputs[@]}")
    line=$(printf '%s\n' "$out" | tail -n 1)
    echo "np=$np: $line"
    reconcile "$line"
    # 19 distinct sciqa papers (3 more rows repeat a text) + big + short
    expect_eq "$(json_field "$line" committed)" 21 "committed at -np $np"
    "$FOLIO" check --db "$T/np$np.lmdb" || fail "check at -np $np"
    "$FOLIO" export --db "$T/np$np.lmdb" --vectors > "$T/np$np.jsonl"
    if [ "$np" = 1 ]; then
        tokens=$(json_field "$line" tokens)
        [ "$tokens" -ge 1000000 ] || fail "corpus has only $tokens tokens"
    else
        cmp -s "$T/np1.jsonl" "$T/np$np.jsonl" || fail "export at -np $np differs from -np 1"
    fi
done
echo "PASS"
