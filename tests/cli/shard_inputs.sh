#!/usr/bin/env bash
# The reader's contract seen through `folio ingest` / `folio export`: ids are
# paths relative to the directory given (or the path as given for a file),
# JSONL ids with "FILE:LINE" for lines without one and "contents" accepted,
# hidden entries skipped, a symlink loop walked once, a BOM stripped before
# byte offsets are counted.
source "$(dirname "$0")/lib.bash"

d=$T/in
mkdir -p "$d/sub/deeper" "$d/.git"
printf 'Alpha document. It has two sentences.\n' > "$d/a.txt"
printf '\xef\xbb\xbfHello there. Second one.\n' > "$d/sub/b.md"
printf 'Deep text here.\n' > "$d/sub/deeper/c.txt"
printf 'ignored\n' > "$d/.git/config"
printf 'Hidden file.\n' > "$d/.hidden.txt"
ln -s .. "$d/sub/loop"
{
  echo '{"id":"j-1","title":"T","text":"From JSONL."}'
  echo '{"title":"no id","contents":"Contents instead of text."}'
} > "$d/docs.jsonl"
printf 'Given directly.\n' > "$T/direct.txt"

out=$("$FOLIO" ingest --db "$T/s.lmdb" "$d" "$T/direct.txt" 2> "$T/err") || fail "ingest exit status $?"
line=$(printf '%s\n' "$out" | tail -n 1)
echo "ingest: $line"
reconcile "$line"
expect_eq "$(json_field "$line" committed)" 6 committed
expect_eq "$(json_field "$line" rejected)" 0 rejected
grep -q "already visited" "$T/err" || fail "no warning about the symlink loop: $(cat "$T/err")"

"$FOLIO" export --db "$T/s.lmdb" > "$T/export.jsonl"
ids=$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$T/export.jsonl" | sort | tr '\n' ' ')
want=$(printf '%s\n' "$T/direct.txt" a.txt docs.jsonl:2 j-1 sub/b.md sub/deeper/c.txt | sort | tr '\n' ' ')
expect_eq "$ids" "$want" "document ids"
# BOM stripped: 25 bytes, two sentences at [0,12) and [13,24)
b=$(grep '"id":"sub/b.md"' "$T/export.jsonl")
expect_eq "$(json_field "$b" bytes)" 25 "bytes of the BOM file"
printf '%s\n' "$b" | grep -q '"sentences":\[\[0,12,' || fail "first sentence of sub/b.md: $b"
printf '%s\n' "$b" | grep -q '\],\[13,24,' || fail "second sentence of sub/b.md: $b"
echo "PASS"
