# Sourced by the GPU-host scripts (bench/gpu_ingest.sh, bench/gpu_quick.sh), from the
# repository root with .gpu/ carried: the environment every GPU run needs.
# NVLink multicast stays off (KINDS.md: it can take the host's GPUs out of service).
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# LMDB, ZeroMQ and Criterion from the carried .debs (the host has no network).
eval "$(bash .gpu/unpack.sh .gpu/debs)"
# The unpacked .pc files name -dev packages the host lacks (their Requires
# matter only for static linking): stand-ins keep pkg-config answering.
PCSTUB=/tmp/pcstub; mkdir -p "$PCSTUB"
for p in krb5-gssapi openpgm-5.3 norm libbsd libffi libgit2 nanomsg libsodium; do
    pkg-config --exists "$p" 2>/dev/null || printf 'Name: %s\nDescription: stand-in\nVersion: 99\nLibs:\nCflags:\n' "$p" > "$PCSTUB/$p.pc"
done
export PKG_CONFIG_PATH=$PCSTUB${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
# dev_copies N FILE [PREFIX]: the four dev files of $D, N times, under new ids
# (PREFIX<copy>-id, default r) and with the copy's number in front of each text,
# so that no copy is a duplicate of another: a corpus of N x 1.09M tokens.
dev_copies() {
    local n=$1 out=$2 pre=${3:-r} i src
    : > "$out"
    for i in $(seq 1 "$n"); do
        for src in pubmed-dev billsum-dev sciqa-dev spdx-licenses; do
            sed -e "s/^{\"id\": *\"/{\"id\": \"$pre$i-/" -e "s/\"text\": *\"/\"text\": \"Copy $i. /" "$D/$src.jsonl" >> "$out"
        done
    done
}
