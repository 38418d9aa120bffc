# tests/cli/lib.bash — helpers for the CLI tests (sourced, not a test itself).
set -euo pipefail
: "${FOLIO:?FOLIO must name the folio binary}"
: "${FOLIO_DATA:?FOLIO_DATA must name the data directory}"
FOLIO_TMP=${FOLIO_TMP:-/tmp}
mkdir -p "$FOLIO_TMP"
T=$(mktemp -d "$FOLIO_TMP/$(basename "$0" .sh).XXXXXX")
trap 'rm -rf "$T"' EXIT
export FOLIO_DB="$T/default.lmdb"

fail() { echo "FAIL: $*" >&2; exit 1; }
# json_field LINE KEY -> the number after "KEY":
json_field() { printf '%s\n' "$1" | sed -n "s/.*\"$2\":\([-0-9.e+]*\).*/\1/p"; }
# reconcile LINE: seen = committed + duplicate + empty + rejected
reconcile() {
    local l=$1 s c d e r
    s=$(json_field "$l" seen); c=$(json_field "$l" committed); d=$(json_field "$l" duplicate)
    e=$(json_field "$l" empty); r=$(json_field "$l" rejected)
    [ -n "$s" ] && [ -n "$c" ] && [ -n "$d" ] && [ -n "$e" ] && [ -n "$r" ] || fail "counters missing in: $l"
    [ "$s" -eq $((c + d + e + r)) ] || fail "counters do not reconcile: $l"
}
expect_eq() { [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"; }
# resume_matches WHAT DB REF INGEST-ARGS...: runs the ingest again on DB, which
# must reconcile, export exactly REF (an uninterrupted run's export) and pass
# `check`; WHAT names what happened to DB before, for the failure messages.
resume_matches() {
    local what=$1 db=$2 ref=$3 out line; shift 3
    out=$("$FOLIO" ingest --db "$db" --quiet "$@")
    line=$(printf '%s\n' "$out" | tail -n 1)
    echo "resumed: $line"
    reconcile "$line"
    "$FOLIO" export --db "$db" --vectors > "$db.export.jsonl"
    cmp -s "$ref" "$db.export.jsonl" || fail "export after $what + re-run differs from an uninterrupted run"
    "$FOLIO" check --db "$db" || fail "check after $what + re-run"
}
