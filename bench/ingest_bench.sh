#!/usr/bin/env bash
# Ingest throughput: MB/s, tokens/s, stage times and peak RSS.
#   bench/ingest_bench.sh [FOLIO] [CORPUS_MB]
# 1. spdx-licenses.jsonl with the default pattern (the full pipeline).
# 2. A corpus of CORPUS_MB (default 1024) made by repeating the dev data under
#    new ids (each copy's texts prefixed by its number, so none is a duplicate), with the cheapest pattern (window 0, one 8-wide head) so that the
#    figure is the tokenizing + committing path the foundation targets; and
#    the same at a quarter of the size, to show peak RSS does not grow with it.
# 3. -np 1 vs -np 2 on the dev data with the default pattern (mpirun), one
#    thread per rank (by default one rank already uses every core).
# 4. (part "ranks", not in the default) -np 1 vs -np 2, --threads 1 per rank,
#    on a corpus of RANKS_MB (default CORPUS_MB) with RANKS_PATTERN (default
#    the cheap one), RANKS_REPEAT times each: wall seconds, rank 0's stats
#    line, and each rank's peak RSS (VmHWM; rank 0's includes the store's
#    mapped pages) and peak anonymous RSS (RssAnon sampled every 0.5 s).
# BENCH_PARTS (default "spdx corpus mpi") picks the parts; BENCH_SIZES
# (default "CORPUS_MB/4 CORPUS_MB") the corpus sizes of part 2, in MB.
set -euo pipefail
FOLIO=${1:-build/folio}
MB=${2:-1024}
DATA=${FOLIO_DATA:-$(dirname "$0")/../../shared/data}
T=${BENCH_TMP:-$(mktemp -d /tmp/folio-bench.XXXXXX)}
mkdir -p "$T"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "# $(date -u +%F) $(lscpu | sed -n 's/Model name: *//p') $(nproc) cores; folio=$FOLIO"

run() { # label, args...
    local label=$1; shift
    rm -rf "$T/db"
    local out
    out=$("$FOLIO" ingest --db "$T/db" --progress "$@" 2> "$T/err")
    local line stats
    line=$(printf '%s\n' "$out" | tail -n 1)
    stats=$(grep '^ranks' "$T/err" | tail -n 1)
    echo "$label: $line"
    echo "    $stats"
}

PARTS=${BENCH_PARTS:-spdx corpus mpi}
part() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if part spdx; then
run "spdx default pattern, 1 thread" --threads 1 "$DATA/spdx-licenses.jsonl"
run "spdx default pattern, all cores" "$DATA/spdx-licenses.jsonl"
fi

make_corpus() { # MB -> file
    local want=$1 f=$T/corpus-$1.jsonl i=0
    : > "$f"
    while [ "$(stat -c %s "$f")" -lt $((want * 1000000)) ]; do
        for src in pubmed-dev billsum-dev sciqa-dev spdx-licenses; do
            # new id and new content (a copy number in front of the text), or
            # every copy would be stored once and counted as duplicate
            sed -e "s/^{\"id\": *\"/{\"id\": \"r$i-/" -e "s/\"text\": *\"/\"text\": \"Copy $i. /" \
                "$DATA/$src.jsonl" >> "$f"
        done
        i=$((i + 1))
    done
    echo "$f"
}
cheap="local,window=0,layers=1,heads=1,head_dim=8"
q=$((MB / 4)); [ "$q" -ge 1 ] || q=1
if part corpus; then
for size in ${BENCH_SIZES:-$q $MB}; do
    c=$(make_corpus "$size")
    run "${size} MB corpus, cheap pattern (tokenize+commit path)" --pattern "$cheap" "$c"
    rm -f "$c"
done
fi

if part ranks; then
rmb=${RANKS_MB:-$MB}
c=$(make_corpus "$rmb")
for rep in $(seq 1 "${RANKS_REPEAT:-1}"); do
    for np in 1 2; do
        rm -rf "$T/db"
        s=$(date +%s.%N)
        mpiexec --oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none -np $np \
            "$FOLIO" ingest --db "$T/db" --progress --threads 1 --pattern "${RANKS_PATTERN:-$cheap}" "$c" \
            > "$T/out" 2> "$T/err" &
        launcher=$!
        declare -A hwm=() anon=()
        while kill -0 $launcher 2>/dev/null; do
            for p in $(pgrep -f "ingest --db $T/db" || true); do
                # the process may end between pgrep and here: no read may fail under set -e
                r=$( { tr '\0' '\n' < /proc/$p/environ; } 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p' || true)
                [ -n "$r" ] || continue
                h=$(awk '/VmHWM/{print $2}' /proc/$p/status 2>/dev/null || true); a=$(awk '/RssAnon/{print $2}' /proc/$p/status 2>/dev/null || true)
                [ -n "$h" ] && [ "$h" -gt "${hwm[$r]:-0}" ] && hwm[$r]=$h
                [ -n "$a" ] && [ "$a" -gt "${anon[$r]:-0}" ] && anon[$r]=$a
            done
            sleep 0.5
        done
        wait $launcher
        e=$(date +%s.%N)
        echo "${rmb} MB corpus, mpirun -np $np --threads 1, pattern ${RANKS_PATTERN:-$cheap} (run $rep): $(tail -n 1 "$T/out") wall $(echo "$e - $s" | bc)s"
        echo "    $(grep '^ranks' "$T/err" | tail -n 1)"
        for r in $(seq 0 $((np - 1))); do
            echo "    rank $r: peak RSS $(( ${hwm[$r]:-0} / 1024 )) MB, peak anon RSS $(( ${anon[$r]:-0} / 1024 )) MB (sampled)"
        done
        unset hwm anon
    done
done
rm -f "$c"
fi

part mpi || { [ -n "${BENCH_TMP:-}" ] || rm -rf "$T"; exit 0; }
for np in 1 2; do
    rm -rf "$T/db"
    s=$(date +%s.%N)
    out=$(mpiexec --oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none -np $np \
          "$FOLIO" ingest --db "$T/db" --progress --threads 1 "$DATA/pubmed-dev.jsonl" "$DATA/billsum-dev.jsonl" 2> "$T/err")
    e=$(date +%s.%N)
    echo "mpirun -np $np --threads 1, dev data (pubmed+billsum), default pattern: $(printf '%s\n' "$out" | tail -n 1) wall $(echo "$e - $s" | bc)s"
    echo "    $(grep '^ranks' "$T/err" | tail -n 1)"
done
[ -n "${BENCH_TMP:-}" ] || rm -rf "$T"
