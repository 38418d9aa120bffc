# tests/mpi/lib.bash — helpers for multi-rank tests (sourced).
source "$(dirname "$0")/../cli/lib.bash"
: "${MPIEXEC:=mpiexec}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Containers often forbid the ptrace-based single-copy path; binding to
# cores would pin oversubscribed ranks to the same core.
mpirun_n() {
    local np=$1; shift
    "$MPIEXEC" --oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none -np "$np" "$@"
}
