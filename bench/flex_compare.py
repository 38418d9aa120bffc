#!/usr/bin/env python3
"""bench/flex_compare.py — folio's CUDA sparse attention vs FlexAttention vs
dense SDPA, in one process, on the same card, on the same inputs.

folio's kernels are called through ctypes from libfolio_cuda.so (built by
bench/gpu_compare.sh from attn/*.cu + common/*.c + attn/pattern.c), on device
buffers owned by torch: the selection that folio's kernel gets (computed on
the device by folio_cuda_attn_select from real block summaries) is the same
one FlexAttention's BlockMask/mask_mod expresses, so both compute exactly the
same function (checked: folio vs flex relative error, and folio vs a float64
CPU reference on sample query blocks).

Patterns (design.md): `local` (|i-j| <= W) and `hier+topk` (window + the
siblings of every ancestor + k routed blocks per head).  Summary tokens are
appended to FlexAttention's keys/values (kv = [tokens; nodes]) with a
mask_mod; the BlockMask comes from create_block_mask(..., _compile=True)
where that is affordable (it evaluates the mask densely, O(n^2 H)), else from
BlockMask.from_kv_blocks with the same block structure computed
analytically (checked equal to create_block_mask's where both run).

Useful FLOPs = 4 * d_h * (attended (query, key) pairs), summed over heads;
dense SDPA FLOPs = 4 * d_h * n^2 * H.  Times: triton.testing.do_bench
medians (L2 flushed between runs).  Output: JSON lines (one per row) to
stdout and --json FILE, then a table.
"""
import argparse
import ctypes as C
import json
import math
import os
import subprocess
import sys
import threading
import time

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention
import triton.testing

PAD = -(1 << 30)


# ---------------------------------------------------------------- folio via ctypes
class Pattern(C.Structure):
    _fields_ = [("kind", C.c_int), ("window", C.c_uint32), ("block", C.c_uint32), ("group", C.c_uint32),
                ("topk", C.c_uint32), ("layers", C.c_uint32), ("heads", C.c_uint32),
                ("head_dim", C.c_uint32), ("beta", C.c_float), ("budget", C.c_uint32)]


class Hier(C.Structure):
    _fields_ = [("n", C.c_uint64), ("B", C.c_uint32), ("G", C.c_uint32), ("n_levels", C.c_uint32),
                ("count", C.c_uint32 * 41), ("offset", C.c_uint32 * 41), ("n_nodes", C.c_uint32)]


class Args(C.Structure):
    _fields_ = [("q", C.c_void_p), ("k", C.c_void_p), ("v", C.c_void_p), ("ld", C.c_int64),
                ("x0", C.c_int64), ("nx", C.c_int64), ("q0", C.c_int64), ("q1", C.c_int64),
                ("n_doc", C.c_int64), ("node_k", C.c_void_p), ("node_v", C.c_void_p),
                ("ld_nodes", C.c_int64), ("n_nodes", C.c_int64), ("sel", C.c_void_p),
                ("sel_n", C.c_void_p), ("s_max", C.c_int), ("out", C.c_void_p), ("ld_out", C.c_int64),
                ("out_bf16", C.c_int), ("node_mass", C.c_void_p), ("H", C.c_int), ("d_h", C.c_int),
                ("B", C.c_int), ("W", C.c_int), ("scale", C.c_float), ("stream", C.c_void_p),
                ("row_norm_max", C.c_float), ("n_redone", C.c_void_p)]


class Smi:
    """The card's SM clock (MHz) and board power (W), sampled every 50 ms by
    nvidia-smi in the background, so that each timing says at what clock and
    power it ran: folio's kernel meets the 700 W cap and slows down, and
    which protocol (--warmup-ms) a figure used moves it by 6-8 %
    (bench/GPU_NOTES.md, thirteenth session).  No nvidia-smi, or output it
    cannot read: the figures are nan and nothing else changes."""

    def __init__(self, cmd=None, bus=None):
        self.samples = []  # (time.time(), MHz, W)
        self.p = None
        try:
            if cmd is None:
                # power.draw is a one-second mean on recent drivers: a 300 ms timing after an idle
                # gap reads low (the twelfth..fourteenth sessions' 50 ms rows).  The instant
                # reading where the driver has it.
                w = "power.draw.instant"
                if subprocess.run(["nvidia-smi", f"--query-gpu={w}", "--format=csv,noheader"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
                    w = "power.draw"
                cmd = ["nvidia-smi", f"--query-gpu=clocks.sm,{w}", "--format=csv,noheader,nounits", "-lms", "50"]
                if bus:
                    cmd += ["-i", bus]
            self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            threading.Thread(target=self._read, daemon=True).start()
        except OSError:
            self.p = None

    def _read(self):
        for line in self.p.stdout:
            try:
                mhz, w = (float(x) for x in line.strip().split(",")[:2])
            except ValueError:
                continue
            self.samples.append((time.time(), mhz, w))

    def window(self, t0, t1):
        """Mean clock and power of the samples taken in [t0, t1]."""
        s = [x for x in list(self.samples) if t0 <= x[0] <= t1]
        if not s:
            return float("nan"), float("nan")
        return sum(x[1] for x in s) / len(s), sum(x[2] for x in s) / len(s)

    def close(self):
        if self.p:
            self.p.terminate()


def pci_bus():
    """The current device for nvidia-smi -i: its PCI address (CUDA_VISIBLE_DEVICES
    renumbers devices, nvidia-smi does not); None when neither can be told."""
    try:
        pr = torch.cuda.get_device_properties(torch.cuda.current_device())
        return f"{pr.pci_domain_id:08x}:{pr.pci_bus_id:02x}:{pr.pci_device_id:02x}.0"
    except (AttributeError, RuntimeError):  # an older torch: the index, when nothing renumbers
        return None if os.environ.get("CUDA_VISIBLE_DEVICES") else str(torch.cuda.current_device())


KIND = {"local": 0, "longt5": 1, "hier": 2, "hier+topk": 3, "dense": 4}


def load_lib(path):
    lib = C.CDLL(path)
    lib.folio_pattern_default.restype = Pattern
    lib.folio_pattern_summary_max.restype = C.c_uint32
    lib.folio_pattern_summary_max.argtypes = [C.POINTER(Pattern), C.c_uint64]
    lib.folio_hier_init.argtypes = [C.POINTER(Hier), C.c_uint64, C.c_uint32, C.c_uint32]
    lib.folio_cuda_block_means.argtypes = [C.c_void_p, C.c_int64, C.c_int, C.c_int, C.c_void_p, C.c_void_p]
    lib.folio_cuda_hier_build_upper.argtypes = [C.POINTER(Hier), C.c_int, C.c_void_p, C.c_void_p]
    lib.folio_cuda_attn_select.argtypes = [C.POINTER(Pattern), C.POINTER(Hier), C.c_void_p, C.c_void_p,
                                           C.c_int64, C.c_uint32, C.c_uint32, C.c_void_p, C.c_void_p,
                                           C.c_int, C.c_void_p]
    lib.folio_attn_sparse_fwd_cuda.argtypes = [C.POINTER(Args)]
    return lib


def check(rc, what):
    if rc != 0:
        raise RuntimeError(f"{what} failed with folio status {rc}")


# ---------------------------------------------------------------- inputs
def make_inputs(lib, n, H, dh, pattern, W, G, k, seed):
    """X: (n, H*dh) rows normalized per head to norm sqrt(dh) (folio's rmsnorm),
    nodes from folio's device summaries, sel from folio's device selection."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    d = H * dh
    X32 = torch.randn(n, d, device="cuda", generator=g)
    X32 = X32.view(n, H, dh)
    X32 = (X32 * (math.sqrt(dh) / X32.norm(dim=-1, keepdim=True))).view(n, d).contiguous()
    p = lib.folio_pattern_default()
    p.kind, p.window, p.group, p.topk, p.heads, p.head_dim = KIND[pattern], W, G, k, H, dh
    h = Hier()
    check(lib.folio_hier_init(C.byref(h), n, p.block, p.group), "hier_init")
    stream = C.c_void_p(torch.cuda.current_stream().cuda_stream)
    nodes32 = torch.empty(h.n_nodes, d, device="cuda")
    s_max = int(lib.folio_pattern_summary_max(C.byref(p), n))
    nb = h.count[1]
    sel = torch.full((nb, H, max(s_max, 1)), -1, dtype=torch.int32, device="cuda")
    sel_n = torch.zeros((nb, H), dtype=torch.int32, device="cuda")
    if pattern != "local":
        check(lib.folio_cuda_block_means(X32.data_ptr(), n, d, p.block, nodes32.data_ptr(), stream), "block_means")
        check(lib.folio_cuda_hier_build_upper(C.byref(h), d, nodes32.data_ptr(), stream), "hier_upper")
        t0 = time.time()
        check(lib.folio_cuda_attn_select(C.byref(p), C.byref(h), nodes32.data_ptr(), nodes32.data_ptr(), d, 0, nb,
                                         sel.data_ptr(), sel_n.data_ptr(), s_max, stream), "attn_select")
        torch.cuda.synchronize()
        select_ms = (time.time() - t0) * 1e3
    else:
        s_max, select_ms = 0, 0.0
    return dict(X=X32.to(torch.bfloat16), nodes=nodes32.to(torch.bfloat16), sel=sel, sel_n=sel_n,
                s_max=s_max, hier=h, p=p, select_ms=select_ms)


def folio_args(inp, n, H, dh, W, out, node_mass=None, row_norm_max=0.0):
    """row_norm_max: make_inputs normalizes every head slice to sqrt(dh), as folio does for every
    layer after the first, so main passes that bound (the kernel's r = 0); 0 (--self-reference)
    times the first layer's configuration (norms unknown: each row its own reference)."""
    a = Args()
    X, nodes = inp["X"], inp["nodes"]
    a.q = a.k = a.v = X.data_ptr()
    a.ld = H * dh
    a.x0, a.nx, a.q0, a.q1, a.n_doc = 0, n, 0, n, n
    a.node_k = a.node_v = nodes.data_ptr()
    a.ld_nodes, a.n_nodes = H * dh, nodes.shape[0]
    a.s_max = inp["s_max"]
    a.sel = inp["sel"].data_ptr() if a.s_max else None
    a.sel_n = inp["sel_n"].data_ptr() if a.s_max else None
    a.out = out.data_ptr()
    a.ld_out = H * dh
    a.out_bf16 = 1 if out.dtype == torch.bfloat16 else 0
    a.node_mass = node_mass.data_ptr() if node_mass is not None else None
    a.H, a.d_h, a.B, a.W = H, dh, 64, W
    a.scale = 1.0 / math.sqrt(dh)
    a.stream = torch.cuda.current_stream().cuda_stream
    a.row_norm_max = row_norm_max
    return a


# ---------------------------------------------------------------- the pattern for flex
def routed_table(inp, G, k):
    """(nb, H, k) flat node ids of the routed blocks in folio's selection."""
    sel, sel_n = inp["sel"], inp["sel_n"]
    nb = sel.shape[0]
    qb = torch.arange(nb, device="cuda").view(nb, 1, 1)
    pos = torch.arange(sel.shape[2], device="cuda").view(1, 1, -1)
    cond = (pos < sel_n.unsqueeze(-1)) & (sel >= 0) & (sel < nb) & ((sel // G) != (qb // G))
    key = (~cond).to(torch.int32) * sel.shape[2] + pos  # routed first, in slot order
    order = key.argsort(dim=-1)
    r = torch.gather(torch.where(cond, sel, torch.full_like(sel, PAD)), -1, order)[..., :k]
    if r.shape[-1] < k:
        r = torch.cat([r, torch.full((nb, sel.shape[1], k - r.shape[-1]), PAD, dtype=r.dtype, device="cuda")], -1)
    return r.contiguous()


def make_mask_mod(pattern, n, W, hier, G, R, k):
    if pattern == "local":
        def local(b, h, q, kv):
            return (q - kv).abs() <= W
        return local
    L = hier.n_levels
    offs = [int(hier.offset[l]) for l in range(1, L + 1)]
    cnts = [int(hier.count[l]) for l in range(1, L + 1)]

    def hier_topk(b, h, q, kv):
        tok = kv < n
        ok = tok & ((q - kv).abs() <= W)
        node = kv - n
        a = q // 64
        for l in range(L):
            idx = node - offs[l]
            inl = (idx >= 0) & (idx < cnts[l])
            if l == L - 1:
                sib = idx != a
            else:
                sib = ((idx // G) == (a // G)) & (idx != a)
            ok = ok | (inl & sib)
            a = a // G
        qb = q // 64
        for t in range(k):
            ok = ok | (R[qb, h, t] == node)
        return ok
    return hier_topk


def analytic_block_mask(pattern, n, W, inp, H, mask_mod, kv_len):
    """The BlockMask (128 x 128 tiles) of the pattern, computed from its
    structure: window tiles (full inside the band, partial at its edges)
    and, per head, the tiles holding the selected nodes (partial)."""
    BS = 128
    nqf = (n + BS - 1) // BS
    nkt = (n + BS - 1) // BS  # token kv tiles
    qf = torch.arange(nqf, device="cuda").view(-1, 1)
    r = W // BS + 2
    j = qf + torch.arange(-r, r + 1, device="cuda").view(1, -1)
    qlo, qhi = qf * BS, torch.clamp(qf * BS + BS - 1, max=n - 1)
    jlo, jhi = j * BS, torch.clamp(j * BS + BS - 1, max=n - 1)
    valid = (j >= 0) & (j < nkt)
    overlap = valid & (jhi >= qlo - W) & (jlo <= qhi + W)
    full = overlap & (jlo >= qhi - W) & (jhi <= qlo + W) & (j * BS + BS <= n) & (qf * BS + BS <= n)
    part = overlap & ~full
    BIG = 1 << 30
    wpart = torch.where(part, j, torch.full_like(j, BIG)).view(1, 1, nqf, -1).expand(1, H, nqf, -1)
    wfull = torch.where(full, j, torch.full_like(j, BIG)).view(1, 1, nqf, -1).expand(1, H, nqf, -1)
    cand = [wpart]
    if pattern != "local":
        sel, sel_n = inp["sel"], inp["sel_n"]
        nb, s_max = sel.shape[0], sel.shape[2]
        pos = torch.arange(s_max, device="cuda").view(1, 1, -1)
        tiles = torch.where((pos < sel_n.unsqueeze(-1)) & (sel >= 0), (n + sel) // BS, torch.full_like(sel, BIG))
        if nb % 2:
            tiles = torch.cat([tiles, torch.full((1, H, s_max), BIG, dtype=tiles.dtype, device="cuda")], 0)
        tiles = tiles.view(nqf, 2, H, s_max).permute(2, 0, 1, 3).reshape(1, H, nqf, 2 * s_max)
        cand.append(tiles.to(wpart.dtype))

    n_kv_blocks = (kv_len + BS - 1) // BS

    def compact(c):
        c = c.sort(dim=-1).values
        dup = torch.zeros_like(c, dtype=torch.bool)
        dup[..., 1:] = c[..., 1:] == c[..., :-1]
        c = torch.where(dup, torch.full_like(c, BIG), c).sort(dim=-1).values
        cnt = (c < BIG).sum(-1).to(torch.int32)
        c = torch.where(c < BIG, c, torch.zeros_like(c)).to(torch.int32)
        # BlockMask expects the index rows as wide as the number of kv blocks
        # (as create_block_mask makes them; its q-block transpose relies on it)
        if c.shape[-1] < n_kv_blocks:
            c = torch.cat([c, torch.zeros(*c.shape[:-1], n_kv_blocks - c.shape[-1], dtype=c.dtype,
                                          device=c.device)], -1)
        return cnt.contiguous(), c[..., :n_kv_blocks].contiguous()

    kv_num, kv_idx = compact(torch.cat(cand, -1))
    full_num, full_idx = compact(wfull)
    return BlockMask.from_kv_blocks(kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=BS, mask_mod=mask_mod,
                                    seq_lengths=(n, kv_len))


# ---------------------------------------------------------------- reference sample
def cpu_reference_rows(inp, n, H, dh, W, qbs):
    """float64 CPU attention for query blocks qbs (all heads) from the same bf16 inputs."""
    X = inp["X"]
    nodes = inp["nodes"]
    sel, sel_n = inp["sel"].cpu(), inp["sel_n"].cpu()
    scale = 1.0 / math.sqrt(dh)
    outs = []
    for qb in qbs:
        q0, q1 = qb * 64, min(n, qb * 64 + 64)
        lo, hi = max(0, q0 - W), min(n, q1 + W)
        Xw = X[lo:hi].double().cpu().view(hi - lo, H, dh)
        Q = X[q0:q1].double().cpu().view(q1 - q0, H, dh)
        o = torch.zeros(q1 - q0, H, dh, dtype=torch.float64)
        for h in range(H):
            s = int(sel_n[qb, h]) if inp["s_max"] else 0
            Nk = nodes[sel[qb, h, :s].long().to(nodes.device)].double().cpu().view(s, H, dh)[:, h] if s else \
                torch.zeros(0, dh, dtype=torch.float64)
            K = torch.cat([Xw[:, h], Nk], 0)
            S = Q[:, h] @ K.T * scale
            i = torch.arange(q0, q1).view(-1, 1)
            jj = torch.arange(lo, hi).view(1, -1)
            m = torch.cat([(i - jj).abs() <= W, torch.ones(q1 - q0, s, dtype=torch.bool)], 1)
            S = S.masked_fill(~m, float("-inf"))
            o[:, h] = torch.softmax(S, -1) @ K
        outs.append(o.view(q1 - q0, H * dh))
    return torch.cat(outs, 0)


def rel(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True)
    ap.add_argument("--n", default="65536,262144,1048576")
    ap.add_argument("--patterns", default="local,hier+topk")
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--group", type=int, default=64)
    ap.add_argument("--topk", type=int, default=8)
    ap.add_argument("--lib-alt", default=None,
                    help="a variant build of the library: its kernel is timed too, in both orders (alt, main, alt) "
                         "after the main kernel's first timing; compare alt ms with main2 ms")
    ap.add_argument("--warmup-ms", default="50",
                    help="ms each kernel runs before its timing (default 50; 1500 = the card's steady, power-capped "
                         "state); two values (50,1500): folio's and FlexAttention's kernels are timed after each, "
                         "one right after the other, and the table gives both ratios")
    ap.add_argument("--cbm-max", type=int, default=65536,
                    help="largest n for create_block_mask(_compile=True) on per-head (hier+topk) masks; "
                         "local masks always use it")
    ap.add_argument("--sdpa-n", type=int, default=65536)
    ap.add_argument("--json", default=None)
    ap.add_argument("--no-flex", action="store_true")
    ap.add_argument("--self-reference", action="store_true",
                    help="time folio's kernel with the row norms unknown (each row its own reference: "
                         "the first layer of an ingest) instead of bounded (every later layer)")
    ap.add_argument("--profile-only", action="store_true",
                    help="just launch folio's kernel five times per pattern and n (for ncu, which skips the first)")
    args = ap.parse_args()
    torch.manual_seed(0)
    lib = load_lib(args.lib)
    lib_alt = load_lib(args.lib_alt) if args.lib_alt else None
    H, dh, W = args.heads, args.head_dim, args.window
    rnm = 0.0 if args.self_reference else 1.01 * math.sqrt(dh)  # folio_args' row_norm_max
    dev = torch.cuda.get_device_name()
    print(f"# device: {dev}; torch {torch.__version__}", flush=True)
    rows = []
    jf = open(args.json, "w") if args.json else None

    def emit(r):
        rows.append(r)
        line = json.dumps(r)
        print(line, flush=True)
        if jf:
            jf.write(line + "\n")
            jf.flush()

    # --warmup-ms: how long each kernel runs before it is timed.  An H200 at
    # its power cap (700 W) lowers its clock after a few hundred ms of a
    # kernel that draws it (folio's does; FlexAttention's runs at ~400 W):
    # with the default 50 ms a kernel timed right after others reads 3-6 %
    # slower than the same kernel timed first (bench/GPU_NOTES.md, eleventh
    # session).  --warmup-ms 1500 times every kernel in that steady state.
    wms = [int(x) for x in str(args.warmup_ms).split(",")]
    if not 1 <= len(wms) <= 2 or min(wms) < 0:
        sys.exit("--warmup-ms: one or two non-negative numbers of ms")
    bench = lambda f, w=wms[0]: triton.testing.do_bench(f, warmup=w, rep=300, return_mode="median")
    smi = None  # (started below, after --profile-only: nothing polls the card under ncu)

    def bench_clk(f, w=wms[0]):
        """bench(f), and the card's mean clock and power over its timed 300 ms"""
        ms = bench(f, w)
        t1 = time.time()
        mhz, watts = smi.window(t1 - 0.3, t1)
        return ms, mhz, watts

    if args.profile_only:
        for n in [int(x) for x in args.n.split(",")]:
            for pattern in args.patterns.split(","):
                inp = make_inputs(lib, n, H, dh, pattern, W, args.group, args.topk, seed=n)
                out = torch.empty(n, H * dh, device="cuda", dtype=torch.bfloat16)
                a = folio_args(inp, n, H, dh, W, out, row_norm_max=rnm)
                # several launches: the profiler skips the first ones (cold caches, lazy module load)
                for _ in range(5):
                    check(lib.folio_attn_sparse_fwd_cuda(C.byref(a)), "folio kernel")
                torch.cuda.synchronize()
        return

    smi = Smi(bus=pci_bus())
    # dense SDPA: the card's ceiling
    ns = args.sdpa_n
    q = torch.randn(1, H, ns, dh, device="cuda", dtype=torch.bfloat16)
    kk = torch.randn_like(q)
    vv = torch.randn_like(q)
    ms = bench(lambda: F.scaled_dot_product_attention(q, kk, vv))
    sdpa_tf = 4.0 * dh * ns * ns * H / (ms * 1e-3) / 1e12
    emit(dict(kind="sdpa", n=ns, heads=H, head_dim=dh, ms=ms, tflops=sdpa_tf, device=dev))
    del q, kk, vv

    flex_c = torch.compile(flex_attention, dynamic=False)
    for n in [int(x) for x in args.n.split(",")]:
        for pattern in args.patterns.split(","):
            torch.cuda.empty_cache()
            inp = make_inputs(lib, n, H, dh, pattern, W, args.group, args.topk, seed=n)
            X, nodes = inp["X"], inp["nodes"]
            s_max = inp["s_max"]
            # attended pairs per head: window (clipped) + selected nodes per query
            i = torch.arange(n, device="cuda", dtype=torch.float64)
            win = (torch.clamp(i + W, max=n - 1) - torch.clamp(i - W, min=0) + 1).sum().item()
            if s_max:
                nq = torch.full((inp["sel"].shape[0],), 64.0, device="cuda", dtype=torch.float64)
                nq[-1] = n - 64 * (inp["sel"].shape[0] - 1)
                summ = (inp["sel_n"].double().sum(1) * nq).sum().item()
            else:
                summ = 0.0
            pairs = win * H + summ  # summ: sel_n already summed over heads
            flop = 4.0 * dh * pairs

            out = torch.empty(n, H * dh, device="cuda", dtype=torch.bfloat16)
            a = folio_args(inp, n, H, dh, W, out, row_norm_max=rnm)
            pa = C.byref(a)
            run_main = lambda: lib.folio_attn_sparse_fwd_cuda(pa)
            check(run_main(), "folio kernel")
            torch.cuda.synchronize()
            ms_f, clk_f, pw_f = bench_clk(run_main)
            steady = {}
            if len(wms) > 1:  # the second protocol, right after the first
                ms_s, clk_s, pw_s = bench_clk(run_main, wms[1])
                steady = dict(ms_2=ms_s, clk_mhz_2=clk_s, power_w_2=pw_s)
            # ingest configuration: fp32 output + node_mass
            out32 = torch.empty(n, H * dh, device="cuda", dtype=torch.float32)
            nm = torch.empty(max(1, inp["sel"].shape[0] * H * max(s_max, 1)), device="cuda") if s_max else None
            a2 = folio_args(inp, n, H, dh, W, out32, nm, row_norm_max=rnm)
            pa2 = C.byref(a2)
            ms_f32 = bench(lambda: lib.folio_attn_sparse_fwd_cuda(pa2))
            alt = {}
            if lib_alt is not None:
                out_alt = torch.empty_like(out)
                a3 = folio_args(inp, n, H, dh, W, out_alt, row_norm_max=rnm)
                pa3 = C.byref(a3)
                run_alt = lambda: lib_alt.folio_attn_sparse_fwd_cuda(pa3)
                check(run_alt(), "alt kernel")
                torch.cuda.synchronize()
                # alt, main, alt: the main kernel's first figure (ms) was
                # timed on a cooler card than anything after it
                t_alt1 = bench(run_alt)
                t_main2 = bench(run_main)
                t_alt2 = bench(run_alt)
                alt = dict(alt_ms=0.5 * (t_alt1 + t_alt2), main2_ms=t_main2,
                           alt_err=rel(out_alt.float(), out.float()))
                del out_alt

            # correctness sample: float64 CPU reference on 4 query blocks
            nb = (n + 63) // 64
            qbs = sorted(set([0, nb // 2, nb - 1, (nb * 7) // 11]))
            ref = cpu_reference_rows(inp, n, H, dh, W, qbs)
            got = torch.cat([out[qb * 64:min(n, qb * 64 + 64)].float().cpu() for qb in qbs], 0)
            err_ref = rel(got, ref)
            got32 = torch.cat([out32[qb * 64:min(n, qb * 64 + 64)].cpu() for qb in qbs], 0)
            err_ref32 = rel(got32, ref)

            row = dict(kind="folio", pattern=pattern, n=n, heads=H, head_dim=dh, window=W, s_max=s_max,
                       keys_per_query=pairs / (n * H), ms=ms_f, tflops=flop / (ms_f * 1e-3) / 1e12,
                       ms_fp32_nodemass=ms_f32, select_ms=inp["select_ms"], err_vs_cpu_ref=err_ref,
                       err_vs_cpu_ref_fp32out=err_ref32, sdpa_tflops=sdpa_tf, device=dev, clk_mhz=clk_f,
                       power_w=pw_f, warmup_ms=wms, **steady, **alt)

            if not args.no_flex:
                try:
                    kv_len = n + (nodes.shape[0] if pattern != "local" else 0)
                    qf = X.view(1, n, H, dh).transpose(1, 2).contiguous()
                    kvf = (torch.cat([X, nodes], 0) if pattern != "local" else X).view(1, kv_len, H, dh).transpose(1, 2).contiguous()
                    R = routed_table(inp, args.group, args.topk) if pattern == "hier+topk" else None
                    mm = make_mask_mod(pattern, n, W, inp["hier"], args.group, R, args.topk if R is not None else 0)
                    bm_a = analytic_block_mask(pattern, n, W, inp, H, mm, kv_len)
                    use_cbm = pattern == "local" or n <= args.cbm_max
                    mask_src = "analytic(from_kv_blocks)"
                    bm = bm_a
                    cbm_s = None
                    if use_cbm:
                        t0 = time.time()
                        bm_c = create_block_mask(mm, B=None, H=None if pattern == "local" else H, Q_LEN=n, KV_LEN=kv_len,
                                                 device="cuda", _compile=True)
                        torch.cuda.synchronize()
                        cbm_s = time.time() - t0
                        if n <= 262144:  # to_dense is (H, n/128, kv/128)
                            da = bm_a.to_dense()
                            dc = bm_c.to_dense().expand_as(da)
                            row["blockmask_equal"] = bool(torch.equal(da.bool(), dc.bool()))
                            del da, dc
                        bm, mask_src = bm_c, "create_block_mask(_compile=True)"
                    fo = flex_c(qf, kvf, kvf, block_mask=bm, scale=1.0 / math.sqrt(dh))
                    torch.cuda.synchronize()
                    run_flex = lambda: flex_c(qf, kvf, kvf, block_mask=bm, scale=1.0 / math.sqrt(dh))
                    ms_x, clk_x, pw_x = bench_clk(run_flex)
                    if len(wms) > 1:
                        ms_xs, clk_xs, pw_xs = bench_clk(run_flex, wms[1])
                        row.update(flex_ms_2=ms_xs, flex_clk_mhz_2=clk_xs, flex_power_w_2=pw_xs,
                                   speedup_vs_flex_2=ms_xs / row["ms_2"])
                    fo = fo.transpose(1, 2).reshape(n, H * dh)
                    row.update(flex_ms=ms_x, flex_tflops=flop / (ms_x * 1e-3) / 1e12, flex_mask=mask_src,
                               flex_mask_seconds=cbm_s, err_vs_flex=rel(out.float(), fo.float()),
                               speedup_vs_flex=ms_x / ms_f, flex_clk_mhz=clk_x, flex_power_w=pw_x)
                    del qf, kvf, fo, bm, bm_a
                except Exception as ex:  # keep folio's row; say why flex is missing
                    row["flex_error"] = f"{type(ex).__name__}: {str(ex)[:300]}"
                    print(f"# flex failed for {pattern} n={n}: {row['flex_error']}", flush=True)
                    if "device-side assert" in str(ex) or "illegal" in str(ex):
                        emit(row)
                        raise
            row["frac_of_sdpa"] = row["tflops"] / sdpa_tf
            emit(row)
            del inp, X, nodes, out, out32, nm
    # table
    print()
    print(f"# {dev}: dense SDPA n={ns}: {sdpa_tf:.0f} TFLOP/s")
    hdr = f"{'pattern':10} {'n':>8} {'H':>3} {'d_h':>3} {'keys/q':>7} {'folio ms':>9} {'TFLOP/s':>8} " \
          f"{'flex ms':>8} {'flex TF':>8} {'x flex':>7} {'/SDPA':>6} {'err cpu':>8} {'err flex':>8} {'ms fp32+mass':>12} {'alt ms':>7} {'main2 ms':>8}" \
          f" {'MHz':>5} {'W':>4} {'flex MHz':>8} {'flex W':>6}"
    print(hdr)
    for r in rows:
        if r["kind"] != "folio":
            continue
        print(f"{r['pattern']:10} {r['n']:>8} {r['heads']:>3} {r['head_dim']:>3} {r['keys_per_query']:>7.1f} "
              f"{r['ms']:>9.3f} {r['tflops']:>8.1f} {r.get('flex_ms', float('nan')):>8.3f} "
              f"{r.get('flex_tflops', float('nan')):>8.1f} {r.get('speedup_vs_flex', float('nan')):>7.2f} "
              f"{r['frac_of_sdpa']:>6.2f} {r['err_vs_cpu_ref']:>8.1e} {r.get('err_vs_flex', float('nan')):>8.1e} "
              f"{r['ms_fp32_nodemass']:>12.3f} {r.get('alt_ms', float('nan')):>7.3f} {r.get('main2_ms', float('nan')):>8.3f}"
              f" {r.get('clk_mhz', float('nan')):>5.0f} {r.get('power_w', float('nan')):>4.0f}"
              f" {r.get('flex_clk_mhz', float('nan')):>8.0f} {r.get('flex_power_w', float('nan')):>6.0f}")
    if len(wms) > 1:  # the same kernels after the second warm-up
        print()
        print(f"# after {wms[1]} ms warm-ups (the rows above: {wms[0]} ms)")
        print(f"{'pattern':10} {'n':>8} {'folio ms':>9} {'TFLOP/s':>8} {'flex ms':>8} {'x flex':>7} "
              f"{'MHz':>5} {'W':>4} {'flex MHz':>8} {'flex W':>6}")
        for r in rows:
            if r["kind"] != "folio" or "ms_2" not in r:
                continue
            print(f"{r['pattern']:10} {r['n']:>8} {r['ms_2']:>9.3f} {r['tflops'] * r['ms'] / r['ms_2']:>8.1f} "
                  f"{r.get('flex_ms_2', float('nan')):>8.3f} {r.get('speedup_vs_flex_2', float('nan')):>7.2f} "
                  f"{r.get('clk_mhz_2', float('nan')):>5.0f} {r.get('power_w_2', float('nan')):>4.0f} "
                  f"{r.get('flex_clk_mhz_2', float('nan')):>8.0f} {r.get('flex_power_w_2', float('nan')):>6.0f}")
    smi.close()
    if jf:
        jf.close()


if __name__ == "__main__":
    main()
