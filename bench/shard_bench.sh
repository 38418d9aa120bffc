#!/usr/bin/env bash
# Shard stage benchmark: reader and analyze throughput on the dev data, and
# peak memory of a single 100 MB document (with and without newlines).
#   bench/shard_bench.sh
# Compiles bench/shard_bench.c with shard/*.c and common/*.c directly (the
# shard stage needs nothing else: no MPI, LMDB or ZeroMQ), with the flags of
# the Release build.  The 100 MB documents are generated in a temp dir and
# removed.  Needs cc and python3.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
DATA=${FOLIO_DATA:-$SRC/../shared/data}
T=$(mktemp -d /tmp/folio-shard-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
cc -std=gnu11 -O3 -march=native -I"$SRC" "$SRC/bench/shard_bench.c" "$SRC"/shard/*.c "$SRC"/common/*.c -lm -pthread -o "$T/shard_bench"
echo "# $(date -u +%F) $(lscpu | sed -n 's/Model name: *//p'), 1 core, load $(cut -d' ' -f1 /proc/loadavg)"
"$T/shard_bench" speed "$DATA/spdx-licenses.jsonl" "$DATA/pubmed-dev.jsonl" "$DATA/billsum-dev.jsonl" "$DATA/sciqa-dev.jsonl"

# 100 MB documents: prose from the dev data repeated (a) as one text file
# with its newlines, (b) as one JSONL line, (c) with no newline and no
# sentence punctuation at all.
python3 - "$DATA" "$T" <<'PY'
import json, sys
data, t = sys.argv[1], sys.argv[2]
texts = [json.loads(l)["text"] for f in ("billsum-dev", "sciqa-dev", "spdx-licenses") for l in open(f"{data}/{f}.jsonl")]
blob = "\n\n".join(texts)
want = 100_000_000
reps = want // len(blob.encode()) + 1
big = (blob * reps).encode()[:want].decode("utf-8", "ignore")
open(f"{t}/big.txt", "w").write(big)
with open(f"{t}/big.jsonl", "w") as f:
    f.write(json.dumps({"id": "big", "title": "100 MB", "text": big}, ensure_ascii=False) + "\n")
flat = "".join(c if c.isalnum() else " " for c in big[:want])
open(f"{t}/flat.txt", "w").write(flat.replace("\n", " "))
PY
for f in big.txt big.jsonl flat.txt; do "$T/shard_bench" memory "$T/$f"; done
