#!/usr/bin/env bash
# setup.sh — set up folio on a fresh Debian/Ubuntu machine and run it.
#
#   ./setup.sh run    install what is missing, build, ingest the default corpus
#                     (/usr/share/common-licenses), print a summary and an answer
#   ./setup.sh test   install what is missing, build, run the whole test suite
#   ./setup.sh build  install what is missing and build only
#
# Uses sudo for apt-get when not root.  The build goes to ./build (override
# with BUILD_DIR=...).  CUDA is built when nvcc is found (FOLIO_CUDA=AUTO).
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-run}
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

PKGS=(build-essential cmake pkg-config libopenmpi-dev openmpi-bin liblmdb-dev lmdb-utils
      libzmq3-dev libcriterion-dev)

install_packages() {
    local missing=()
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "setup.sh: installing ${missing[*]}" >&2
    local SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

build() {
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-}
    cmake --build "$BUILD_DIR" -j "$JOBS"
}

# Open MPI refuses to run as root unless told; CI and containers run as root.
if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

case "$mode" in
run)
    install_packages
    build
    db=${FOLIO_DB:-$PWD/folio-licenses.lmdb}
    echo "== ingest /usr/share/common-licenses into $db" >&2
    "$BUILD_DIR/folio" ingest --db "$db" /usr/share/common-licenses || true
    echo "== summary of GPL-3 (100 words)" >&2
    "$BUILD_DIR/folio" summarize --db "$db" --doc GPL-3 --words 100
    echo "== ask: what happens if I distribute modified versions?" >&2
    "$BUILD_DIR/folio" ask --db "$db" --top 3 "What must I do when I distribute modified versions?"
    ;;
test)
    install_packages
    build
    ctest --test-dir "$BUILD_DIR" --output-on-failure -j 2
    ;;
build)
    install_packages
    build
    ;;
*)
    echo "usage: ./setup.sh run|test|build" >&2
    exit 2
    ;;
esac
