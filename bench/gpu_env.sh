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
# attn_libs DIR NAME FLAGS SRC [NAME FLAGS SRC]...: ctypes libraries of the attention code
# for bench/flex_compare.py, DIR/lib_NAME.so for each triple: the shared objects (common/,
# attn/pattern.c, the other .cu files) built once, attn_sparse.cu -- or SRC in its place
# ("-": the tree's own) -- once per triple with the extra FLAGS ("-": none); sm_90a, the
# warpgroup kernel.  ptxas's report of each goes to DIR/NAME.resources.txt, its SASS
# (where cuobjdump exists) to DIR/NAME.sass.
attn_libs() {
    local dir=$1 nv f name flags src
    shift
    nv="-O3 --use_fast_math -std=c++17 -gencode arch=compute_90a,code=sm_90a -Xcompiler -fPIC -I. -DFOLIO_HAVE_CUDA=1 -lineinfo -DFOLIO_WGMMA=1"
    mkdir -p "$dir/so"
    for f in common/*.c attn/pattern.c; do gcc -std=gnu11 -O2 -fPIC -I. -c "$f" -o "$dir/so/$(basename "$f" .c).o" & done
    for f in attn/attn_cuda_util.cu attn/attn_cuda_embed.cu; do nvcc $nv -c "$f" -o "$dir/so/$(basename "$f" .cu).cu.o" & done
    while [ $# -ge 3 ]; do
        name=$1 flags=$2 src=$3
        shift 3
        [ "$flags" = - ] && flags=""
        if [ "$src" != - ]; then
            cp "$src" "attn/zz_lib_$name.cu" # compiled from attn/ for its includes
            src="attn/zz_lib_$name.cu"
        else
            src=attn/attn_sparse.cu
        fi
        ( nvcc $nv $flags --resource-usage -c "$src" -o "$dir/$name.o" 2> "$dir/$name.resources.txt"
          [ "$src" = attn/attn_sparse.cu ] || rm -f "$src" ) &
    done
    wait
    for f in "$dir"/*.o; do
        name=$(basename "$f" .o)
        nvcc $nv -shared "$dir"/so/*.o "$f" -o "$dir/lib_$name.so" || echo "attn_libs: link of $name failed" >&2
        if command -v cuobjdump > /dev/null; then cuobjdump -sass "$f" > "$dir/$name.sass" 2>/dev/null; fi
    done
    return 0
}
