#!/usr/bin/env bash
# folio stats / export / check end to end: counts agree with ingest, export
# is deterministic and independent of input order, check passes on a good
# store and fails (exit 1, naming the fault) after one byte of stored text is
# flipped; usage errors exit 2; a missing store is a clear error (exit 1).
source "$(dirname "$0")/lib.bash"

# ---- usage
for c in stats export check; do
  "$FOLIO" $c --help | grep -q "usage: folio $c" || fail "$c --help"
  set +e; "$FOLIO" $c --no-such-option >/dev/null 2>&1; rc=$?; set -e
  expect_eq "$rc" 2 "$c with an unknown option"
  set +e; "$FOLIO" $c --db "$T/missing.lmdb" >/dev/null 2>"$T/err"; rc=$?; set -e
  expect_eq "$rc" 1 "$c on a missing store"
  grep -q "does not exist" "$T/err" || fail "$c on a missing store: message: $(cat "$T/err")"
  [ ! -e "$T/missing.lmdb" ] || fail "$c created a store"
done

# ---- two stores, same documents, opposite input order (no duplicate content)
head -n 12 "$FOLIO_DATA/pubmed-dev.jsonl" > "$T/p.jsonl"
head -n 12 "$FOLIO_DATA/billsum-dev.jsonl" > "$T/b.jsonl"
out=$("$FOLIO" ingest --db "$T/a.lmdb" --quiet "$T/p.jsonl" "$T/b.jsonl" | tail -n 1)
echo "ingest a: $out"
committed=$(json_field "$out" committed)
tac "$T/b.jsonl" > "$T/b_rev.jsonl"
tac "$T/p.jsonl" > "$T/p_rev.jsonl"
out2=$("$FOLIO" ingest --db "$T/b.lmdb" --quiet "$T/b_rev.jsonl" "$T/p_rev.jsonl" | tail -n 1)
echo "ingest b: $out2"
expect_eq "$(json_field "$out2" committed)" "$committed" "committed in both orders"
expect_eq "$(json_field "$out" duplicate)" 0 "no duplicate content in this input"

# ---- stats
js=$("$FOLIO" stats --db "$T/a.lmdb" --json)
echo "stats: $js"
[ "$(printf '%s\n' "$js" | wc -l)" -eq 1 ] || fail "stats --json is not one line"
expect_eq "$(json_field "$js" documents)" "$committed" "stats documents"
expect_eq "$(json_field "$js" tokens)" "$(json_field "$out" tokens)" "stats tokens = ingest tokens"
expect_eq "$(json_field "$js" duplicates)" 0 "stats duplicates"
"$FOLIO" stats --db "$T/a.lmdb" | grep -q "^documents: *$committed$" || fail "human stats"

# ---- export: deterministic, order independent, one JSON line per document
"$FOLIO" export --db "$T/a.lmdb" --vectors > "$T/a1.jsonl"
"$FOLIO" export --db "$T/a.lmdb" --vectors > "$T/a2.jsonl"
"$FOLIO" export --db "$T/b.lmdb" --vectors > "$T/b1.jsonl"
cmp -s "$T/a1.jsonl" "$T/a2.jsonl" || fail "export differs between two runs"
cmp -s "$T/a1.jsonl" "$T/b1.jsonl" || fail "export depends on insertion order"
expect_eq "$(grep -c '^{"id":' "$T/a1.jsonl")" "$committed" "export document lines"
"$FOLIO" export --db "$T/a.lmdb" > "$T/plain.jsonl"
! grep -q '"sent_vecs"' "$T/plain.jsonl" || fail "vectors without --vectors"
# ids in sorted (bytewise) order
sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$T/a1.jsonl" > "$T/ids"
LC_ALL=C sort -c "$T/ids" || fail "export not in id order"

# ---- check: clean, then one flipped byte of stored text
"$FOLIO" check --db "$T/a.lmdb" 2>"$T/err" || fail "check on a good store: $(cat "$T/err")"
"$FOLIO" check --db "$T/a.lmdb" --deep 2>"$T/err" || fail "check --deep on a good store: $(cat "$T/err")"
cj=$("$FOLIO" check --db "$T/a.lmdb" --json 2>/dev/null)
expect_eq "$(json_field "$cj" faults)" 0 "check --json faults"
# a long word run from the first document's text, located in data.mdb
needle=$(sed -n '1s/.*"text": *"\([A-Za-z ,]\{40\}\).*/\1/p' "$T/p.jsonl")
[ -n "$needle" ] || needle=$(head -c 2000 "$T/p.jsonl" | tr -c 'A-Za-z ' '\n' | awk 'length > 30 {print; exit}')
[ -n "$needle" ] || fail "no needle found to damage"
offs=$(grep -aboF -- "$needle" "$T/a.lmdb/data.mdb" | cut -d: -f1)
[ -n "$offs" ] || fail "text '$needle' not found in data.mdb"
for off in $offs; do  # every copy (LMDB may keep a stale one in a free page)
  printf 'Q' | dd of="$T/a.lmdb/data.mdb" bs=1 seek=$((off + 5)) conv=notrunc status=none
done
set +e; "$FOLIO" check --db "$T/a.lmdb" 2>"$T/err"; rc=$?; set -e
expect_eq "$rc" 1 "check exit status on a damaged store"
grep -q "^fault: .*hash of the stored text differs" "$T/err" || fail "check did not name the fault: $(cat "$T/err")"
echo "store_cli: ok"
