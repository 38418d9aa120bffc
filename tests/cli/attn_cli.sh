#!/bin/bash
# tests/cli/attn_cli.sh — `folio bench attn` and `folio eval pattern`:
# output shape, exit codes, bad input, and dense = exact on a tiny corpus.
set -u
FOLIO=${FOLIO:?path of the folio binary}
TMP=${FOLIO_TMP:-/tmp}/attn_cli.$$
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# bench: one JSON line with the figures
out=$("$FOLIO" bench attn --n 3000 --pattern "hier+topk,window=32,block=64,group=4,topk=2" --reps 1 --threads 2) \
    || fail "bench attn exited $?"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "bench attn: expected one line, got: $out"
for key in '"n":3000' '"keys_per_query":' '"ms_per_layer":' '"gflops_useful_kernel":' '"peak_fma_gflops_per_core":' \
           '"ratio_per_core_kernel":' '"threads":2' '"sel_hash":"' '"pattern":"hier+topk,window=32,block=64,group=4,topk=2,'; do
    case "$out" in *"$key"*) ;; *) fail "bench attn: missing $key in $out" ;; esac
done

# bench: usage errors exit 2 with a message naming the problem
"$FOLIO" bench attn --pattern "window=abc" 2> "$TMP/err" >/dev/null; rc=$?
[ $rc -eq 2 ] || fail "bad pattern: exit $rc"
grep -q "window" "$TMP/err" || fail "bad pattern: message does not name the key: $(cat "$TMP/err")"
"$FOLIO" bench attn --n 0 2>/dev/null >/dev/null; [ $? -eq 2 ] || fail "--n 0 must be a usage error"
"$FOLIO" bench attn --backend tpu 2>/dev/null >/dev/null; [ $? -eq 2 ] || fail "--backend tpu must be a usage error"
# cuda: works (0) or fails clearly (1), never crashes
"$FOLIO" bench attn --backend cuda --n 4096 --reps 1 > "$TMP/cuda" 2> "$TMP/cuda.err"; rc=$?
if [ $rc -ne 0 ]; then
    [ $rc -eq 1 ] || fail "bench --backend cuda: exit $rc"
    grep -qi "cuda" "$TMP/cuda.err" || fail "bench --backend cuda: unclear message: $(cat "$TMP/cuda.err")"
fi

# eval pattern on a tiny corpus with one malformed line
cat > "$TMP/docs.jsonl" <<'JSONL'
{"id":"a","text":"The court held that the lease expires on the first day of May. The tenant appealed. The landlord argued that the notice was late, and the court agreed with the landlord on every point raised."}
this is not json
{"id":"b","text":"Sparse attention keeps a local window and summary tokens. Summary tokens are means of blocks. Blocks form groups, groups form groups, and so on until few remain."}
JSONL
"$FOLIO" eval pattern --data "$TMP/docs.jsonl" --patterns "dense,block=8;local,window=2,block=8" > "$TMP/eval" 2> "$TMP/eval.err" \
    || fail "eval pattern exited $?: $(cat "$TMP/eval.err")"
[ "$(wc -l < "$TMP/eval")" -eq 2 ] || fail "eval pattern: expected 2 lines: $(cat "$TMP/eval")"
grep -q "malformed JSON line" "$TMP/eval.err" || fail "eval pattern: malformed line not reported"
head -1 "$TMP/eval" | grep -q '"docs":2' || fail "eval pattern: expected 2 docs: $(head -1 "$TMP/eval")"
head -1 "$TMP/eval" | grep -Eq '"fidelity":(1\.000000|0\.99999[5-9])' || fail "dense must be exact: $(head -1 "$TMP/eval")"
sed -n 2p "$TMP/eval" | grep -q '"keys_per_query_max":5,' || fail "local window=2 has at most 5 keys: $(sed -n 2p "$TMP/eval")"
"$FOLIO" eval pattern 2>/dev/null; [ $? -eq 2 ] || fail "eval pattern without --data must be a usage error"
"$FOLIO" eval pattern --data "$TMP/missing.jsonl" 2> "$TMP/err"; [ $? -eq 1 ] || fail "missing file must exit 1"
grep -q "missing.jsonl" "$TMP/err" || fail "missing file: message does not name it"
"$FOLIO" eval pattern --data "$TMP/docs.jsonl" --patterns "hier;bogus" 2>/dev/null; [ $? -eq 2 ] || fail "bad pattern list must exit 2"
echo "attn_cli: ok"
