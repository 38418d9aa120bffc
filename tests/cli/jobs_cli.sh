#!/usr/bin/env bash
# folio summarize / ask / eval end to end: offsets slice the original text,
# budgets hold, and bad requests get clear messages and the right exit codes.
source "$(dirname "$0")/lib.bash"

# A plain-text document, one sentence per line, no JSON-escaped characters,
# so the "text" of every answer can be compared with the file's bytes.
doc=$T/corpus/notes.txt
mkdir -p "$T/corpus"
cat > "$doc" <<'TXT'
Sparse attention lets every token attend to a local window and to summary tokens.
The summary tokens are means of blocks of sixty four tokens.
Blocks form groups and groups form a hierarchy up to the document.
Routed keys add the blocks whose summaries score highest for a query block.
The store keeps sentence vectors and salience for every committed document.
Questions are answered by ranking sentences with BM25 and dense similarity.
Summaries pick central sentences under a word budget with redundancy control.
An unrelated closing line mentions penguins and glaciers near the pole.
TXT
head -n 6 "$FOLIO_DATA/billsum-dev.jsonl" > "$T/corpus/bills.jsonl"
DB=$T/s.lmdb
"$FOLIO" ingest --db "$DB" --quiet "$T/corpus" > /dev/null || fail "ingest"

# check_offsets JSON FILE: each "start":S,"end":E,"text":"T" slices FILE
check_offsets() {
    local json=$1 file=$2 n=0
    while IFS= read -r m; do
        s=$(printf '%s' "$m" | sed -n 's/.*"start":\([0-9]*\).*/\1/p')
        e=$(printf '%s' "$m" | sed -n 's/.*"end":\([0-9]*\).*/\1/p')
        t=$(printf '%s' "$m" | sed -n 's/.*"text":"\(.*\)"$/\1/p')
        got=$(dd if="$file" bs=1 skip="$s" count=$((e - s)) 2>/dev/null)
        expect_eq "$got" "$t" "bytes [$s,$e) of $file"
        n=$((n + 1))
    done < <(printf '%s\n' "$json" | grep -o '"start":[0-9]*,"end":[0-9]*,"text":"[^"]*"')
    [ "$n" -gt 0 ] || fail "no spans in: $json"
}

# summarize: JSON shape, offsets, budgets
out=$("$FOLIO" summarize --db "$DB" --doc notes.txt --sentences 3 --json) || fail "summarize --json exit $?"
printf '%s\n' "$out" | grep -q '^{"doc":"notes.txt","sentences":\[' || fail "summarize JSON shape: $out"
check_offsets "$out" "$doc"
expect_eq "$(printf '%s\n' "$out" | grep -o '"index":' | wc -l)" 3 "--sentences 3"
for w in 40 25 12; do
    n=$("$FOLIO" summarize --db "$DB" --doc notes.txt --words $w | wc -w)
    [ "$n" -le $w ] && [ "$n" -gt 0 ] || fail "--words $w gave $n words"
done
n=$("$FOLIO" summarize --db "$DB" --doc notes.txt --words 3 2>/dev/null | wc -w)
expect_eq "$n" 0 "a budget smaller than every sentence"
# billsum rows: 200-word budget respected on every document
for id in $(sed -n 's/^{"id": *"\([^"]*\)".*/\1/p' "$T/corpus/bills.jsonl"); do
    n=$("$FOLIO" summarize --db "$DB" --doc "$id" --words 200 | wc -w)
    [ "$n" -le 200 ] && [ "$n" -gt 50 ] || fail "$id: $n words for --words 200"
done

# ask within a document and across the store
out=$("$FOLIO" ask --db "$DB" --doc notes.txt --top 2 --json "Which tokens form the summary of a block?") || fail "ask exit $?"
printf '%s\n' "$out" | grep -q '^{"question":"Which tokens form the summary of a block?","answers":\[{"doc":"notes.txt"' \
    || fail "ask JSON shape: $out"
check_offsets "$out" "$doc"
out=$("$FOLIO" ask --db "$DB" --top 3 --json "penguins near the pole") || fail "store-wide ask exit $?"
printf '%s\n' "$out" | grep -q '"answers":\[{"doc":"notes.txt","start":[0-9]*,"end":[0-9]*,"text":"An unrelated closing line' \
    || fail "store-wide ask did not find the penguin line: $out"
check_offsets "$out" "$doc"
out=$("$FOLIO" ask --db "$DB" --json --method bm25 "penguins") || fail "ask --method bm25"
printf '%s\n' "$out" | grep -q 'penguins and glaciers' || fail "bm25 ask: $out"

# a question with no known word: exit 0, no answers, a message
out=$("$FOLIO" ask --db "$DB" --json "zyzzyva quokka" 2> "$T/err") || fail "unknown words exit $?"
expect_eq "$out" '{"question":"zyzzyva quokka","answers":[]}' "no-answer JSON"
grep -q "no sentence matches" "$T/err" || fail "no message for a question with no known word"

# unknown --doc, missing store, usage errors
set +e
"$FOLIO" summarize --db "$DB" --doc nope.txt 2> "$T/err"; rc=$?
expect_eq "$rc" 1 "summarize unknown --doc"
grep -q "no document 'nope.txt'" "$T/err" || fail "unknown --doc message: $(cat "$T/err")"
"$FOLIO" ask --db "$DB" --doc nope.txt "what" 2> "$T/err"; rc=$?
expect_eq "$rc" 1 "ask unknown --doc"
"$FOLIO" summarize --db "$T/missing.lmdb" --doc x 2> "$T/err"; rc=$?
expect_eq "$rc" 1 "missing store"
grep -q "no store at" "$T/err" || fail "missing store message: $(cat "$T/err")"
"$FOLIO" summarize --db "$DB" 2>/dev/null; expect_eq $? 2 "summarize without --doc/--all"
"$FOLIO" summarize --db "$DB" --doc a --words 5 --sentences 2 2>/dev/null; expect_eq $? 2 "both budgets"
"$FOLIO" summarize --db "$DB" --doc a --words zero 2>/dev/null; expect_eq $? 2 "bad --words"
"$FOLIO" ask --db "$DB" 2>/dev/null; expect_eq $? 2 "ask without a question"
"$FOLIO" ask --db "$DB" --top 0 q 2>/dev/null; expect_eq $? 2 "ask --top 0"
"$FOLIO" eval summarize 2>/dev/null; expect_eq $? 2 "eval summarize without --data"
"$FOLIO" eval qa --data "$T/none.jsonl" 2>/dev/null; expect_eq $? 1 "eval qa on a missing file"
set -e

# an empty store: ask and summarize --all answer sensibly
mkdir -p "$T/emptydir"
"$FOLIO" ingest --db "$T/empty.lmdb" --quiet "$T/emptydir" > /dev/null || true
out=$("$FOLIO" ask --db "$T/empty.lmdb" --json "anything at all" 2>/dev/null) || fail "ask on an empty store exit $?"
expect_eq "$out" '{"question":"anything at all","answers":[]}' "ask on an empty store"
"$FOLIO" summarize --db "$T/empty.lmdb" --all 2> "$T/err" || fail "summarize --all on an empty store"
grep -q "0 documents summarized" "$T/err" || fail "empty --all message: $(cat "$T/err")"

# eval: one JSON line with the contract's keys; --details one line per row
head -n 5 "$FOLIO_DATA/pubmed-dev.jsonl" > "$T/pm.jsonl"
out=$("$FOLIO" eval summarize --data "$T/pm.jsonl" --words 200 --details "$T/d.jsonl") || fail "eval summarize exit $?"
printf '%s\n' "$out" | grep -Eq '^\{"rouge1":[0-9.]+,"rouge2":[0-9.]+,"rougeLsum":[0-9.]+,"docs":5\}$' || fail "eval summarize: $out"
expect_eq "$(wc -l < "$T/d.jsonl")" 5 "details lines"
grep -q '^{"id":"pubmed-val-000","summary":"' "$T/d.jsonl" || fail "details shape"
mem=$("$FOLIO" eval summarize --data "$T/pm.jsonl" --memory) || fail "eval summarize --memory"
printf '%s\n' "$mem" | grep -q '"docs":5' || fail "--memory: $mem"
head -n 3 "$FOLIO_DATA/sciqa-dev.jsonl" > "$T/qa.jsonl"
out=$("$FOLIO" eval qa --data "$T/qa.jsonl" --top 5 --details "$T/q.jsonl") || fail "eval qa exit $?"
printf '%s\n' "$out" | grep -Eq '^\{"hit@1":[0-9.]+,"hit@5":[0-9.]+,"hit@10":[0-9.]+,"mrr@10":[0-9.]+,"questions":[0-9]+\}$' || fail "eval qa: $out"
q=$(json_field "$out" questions)
expect_eq "$(wc -l < "$T/q.jsonl")" "$q" "qa details lines"
out=$("$FOLIO" eval qa --data "$T/qa.jsonl" --method bm25 --memory) || fail "eval qa bm25"
echo "jobs_cli: ok"
