#!/usr/bin/env bash
# End to end: ingest of the dev data plus a directory of bad inputs, with
# reconciled counters; a second run commits nothing; check passes.
source "$(dirname "$0")/lib.bash"

bad=$T/bad
mkdir -p "$bad/sub" "$bad/.hidden"
printf 'valid words here \xff\xfe and more\n' > "$bad/invalid_utf8.txt"
head -c 3000 "$FOLIO" > "$bad/binary.bin"
printf 'hello\0world\n' > "$bad/nul.txt"
: > "$bad/empty.txt"
printf '   \n\t  \n\n' > "$bad/whitespace.txt"
printf 'The same content appears twice. It should be stored once.\n' > "$bad/dup_a.txt"
cp "$bad/dup_a.txt" "$bad/sub/dup_b.txt"
printf 'A hidden file must be skipped.\n' > "$bad/.hidden/secret.txt"
printf 'Hidden too.\n' > "$bad/.dotfile.txt"
ln -s "$bad/does-not-exist.txt" "$bad/dangling.txt"
{
  echo '{"id":"ok-1","title":"One","text":"First good line. It has two sentences."}'
  echo '{"id":"broken","text": "unterminated'
  echo '{"id":"ok-2","title":"Two","contents":"Second good line uses contents."}'
} > "$bad/mixed.jsonl"

set +e
out=$("$FOLIO" ingest --db "$T/a.lmdb" --quiet "$FOLIO_DATA/billsum-dev.jsonl" "$FOLIO_DATA/sciqa-dev.jsonl" "$bad")
rc=$?
set -e
line=$(printf '%s\n' "$out" | tail -n 1)
echo "first run: $line (exit $rc)"
reconcile "$line"
expect_eq "$rc" 1 "exit status with rejected inputs"
# 100 bills + 19 distinct papers (sciqa-dev has 22 rows but 3 repeat a
# paper's text under another id) + dup_a + ok-1 + ok-2 committed; the 3
# repeated papers and dup_b duplicate;
# empty + whitespace empty; invalid UTF-8, binary, NUL, dangling link and the
# broken JSONL line rejected.  Hidden files are not seen at all.
expect_eq "$(json_field "$line" committed)" 122 committed
expect_eq "$(json_field "$line" duplicate)" 4 duplicate
expect_eq "$(json_field "$line" empty)" 2 empty
expect_eq "$(json_field "$line" rejected)" 5 rejected
expect_eq "$(json_field "$line" seen)" 133 seen

"$FOLIO" check --db "$T/a.lmdb" || fail "check after first run"
# A duplicate's id stays usable: it answers through the document holding its content.
sum_b=$("$FOLIO" summarize --db "$T/a.lmdb" --doc "sub/dup_b.txt" --sentences 1 2>/dev/null) || fail "summarize of a duplicate id"
sum_a=$("$FOLIO" summarize --db "$T/a.lmdb" --doc "dup_a.txt" --sentences 1)
expect_eq "$sum_b" "$sum_a" "summary of a duplicate id"
"$FOLIO" export --db "$T/a.lmdb" --vectors > "$T/export1.jsonl"

set +e
out=$("$FOLIO" ingest --db "$T/a.lmdb" --quiet "$FOLIO_DATA/billsum-dev.jsonl" "$FOLIO_DATA/sciqa-dev.jsonl" "$bad")
rc=$?
set -e
line=$(printf '%s\n' "$out" | tail -n 1)
echo "second run: $line (exit $rc)"
reconcile "$line"
expect_eq "$(json_field "$line" committed)" 0 "committed on re-run"
expect_eq "$(json_field "$line" duplicate)" 126 "duplicate on re-run"
"$FOLIO" export --db "$T/a.lmdb" --vectors > "$T/export2.jsonl"
cmp -s "$T/export1.jsonl" "$T/export2.jsonl" || fail "a re-run changed the store"

# The writer without MDB_WRITEMAP (--writes buffer) stores exactly the same,
# and a re-run into that store commits nothing.
set +e
out=$("$FOLIO" ingest --db "$T/c.lmdb" --writes buffer --quiet "$FOLIO_DATA/billsum-dev.jsonl" "$FOLIO_DATA/sciqa-dev.jsonl" "$bad")
set -e
line=$(printf '%s\n' "$out" | tail -n 1)
echo "buffered writes: $line"
reconcile "$line"
expect_eq "$(json_field "$line" committed)" 122 "committed with --writes buffer"
"$FOLIO" check --db "$T/c.lmdb" || fail "check after --writes buffer"
"$FOLIO" export --db "$T/c.lmdb" --vectors > "$T/export3.jsonl"
cmp -s "$T/export1.jsonl" "$T/export3.jsonl" || fail "--writes buffer stored something else than --writes map"
set +e
out=$("$FOLIO" ingest --db "$T/c.lmdb" --writes buffer --quiet "$FOLIO_DATA/billsum-dev.jsonl" "$FOLIO_DATA/sciqa-dev.jsonl" "$bad")
set -e
expect_eq "$(json_field "$(printf '%s\n' "$out" | tail -n 1)" committed)" 0 "committed on a buffered re-run"
"$FOLIO" ingest --db "$T/c.lmdb" --writes sideways "$FOLIO_DATA/sciqa-dev.jsonl" > /dev/null 2>&1 && fail "--writes sideways accepted"

# Clean inputs exit 0.
out=$("$FOLIO" ingest --db "$T/b.lmdb" --quiet "$FOLIO_DATA/sciqa-dev.jsonl") || fail "clean ingest exit status $?"
reconcile "$(printf '%s\n' "$out" | tail -n 1)"
echo "PASS"
