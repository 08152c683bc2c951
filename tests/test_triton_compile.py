"""Every Triton kernel compiles for the GPU: Triton's front end, its type checks and ptxas.

The interpreter (``test_triton_kernels``) is lenient where the compiler is not (types of
loop-carried values, scalars mixed with blocks, constexpr use), so each kernel is also
compiled, without a GPU, to a cubin for an H100 (sm_90) and an A100 (sm_80), in the
variants the launch wrappers use: float32 data (float64 arithmetic) and bfloat16 data
(float32 arithmetic), rows in registers and rows walked in chunks.  It runs in a fresh
interpreter, where ``TRITON_INTERPRET`` is unset, and prints one JSON line per kernel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys, warnings
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from stablenn._fast.triton import _kernels as K

DATA = {0: "fp32", 2: "i16"}
WORK = {0: "fp64", 2: "fp32"}

def jobs():
    for kind in (0, 2):
        d, c = DATA[kind], WORK[kind]
        lse = dict(x_ptr="*" + d, out_ptr="*" + d, m_ptr="*" + c, r_ptr="*" + c, c_ptr="*i32",
                   n="i32", stride_x="i32", seg="i32", n_split="i32")
        for part in (False, True):
            yield "lse", K._lse_kernel, lse, dict(BLOCK=2048, IN_KIND=kind, PARTIAL=part)
        yield "merge", K._lse_merge_kernel, dict(m_ptr="*" + c, r_ptr="*" + c, c_ptr="*i32", out_ptr="*" + d,
                                                 n_split="i32"), dict(SPLIT=64, IN_KIND=kind)
        for single in (True, False):
            block = 4096 if single else 2048
            for log in (False, True):
                yield "softmax", K._softmax_kernel, dict(x_ptr="*" + d, y_ptr="*" + d, g_ptr="*" + d, n="i32",
                                                         stride_x="i32", stride_y="i32"), \\
                    dict(BLOCK=block, IN_KIND=kind, LOG=log, HAS_G=not log, SINGLE=single)
                yield "softmax_bwd", K._softmax_bwd_kernel, dict(y_ptr="*" + d, dy_ptr="*" + d, dx_ptr="*" + d,
                                                                 n="i32", stride_y="i32", stride_dy="i32",
                                                                 stride_dx="i32"), \\
                    dict(BLOCK=block, IN_KIND=kind, LOG=log, SINGLE=single)
            ce = dict(x_ptr="*" + d, t_ptr="*i64", w_ptr="*" + d, loss_ptr="*" + c, grad_ptr="*" + d,
                      den_ptr="*" + c, wsum_ptr="*" + c, n="i32", stride_x="i32", stride_g="i32",
                      ignore_index="i32", eps_hi="fp32", eps_lo="fp32")
            for full in (True, False):
                yield "ce", K._ce_kernel, ce, dict(BLOCK=block, IN_KIND=kind, HAS_W=full, HAS_IGNORE=full,
                                                   SMOOTH=full, WRITE_GRAD=full, MEAN=full, SINGLE=single)
        yield "scale_rows", K._scale_rows_kernel, dict(g_ptr="*" + d, dy_ptr="*" + d, n="i32", stride_g="i32"), \\
            dict(BLOCK=2048, IN_KIND=kind, PER_ROW=True)
        bce = dict(x_ptr="*" + d, y_ptr="*" + d, w_ptr="*" + d, pw_ptr="*" + d, out_ptr="*" + d,
                   part_ptr="*" + c, numel="i32", w_period="i32", pw_period="i32")
        for red in (False, True):
            yield "bce", K._bce_kernel, bce, dict(BLOCK=1024, IN_KIND=kind, HAS_W=True, HAS_PW=True, REDUCE=red)
        yield "bce_bwd", K._bce_bwd_kernel, dict(x_ptr="*" + d, y_ptr="*" + d, w_ptr="*" + d, pw_ptr="*" + d,
                                                 dy_ptr="*" + d, dx_ptr="*" + d, dt_ptr="*" + d, numel="i32",
                                                 w_period="i32", pw_period="i32", count="i32"), \\
            dict(BLOCK=1024, IN_KIND=kind, HAS_W=True, HAS_PW=True, DY_SCALAR=True, MEAN=True, WANT_DT=True)
        for op in range(7):
            yield "unary", K._unary_kernel, dict(x_ptr="*" + d, dy_ptr="*" + d, out_ptr="*" + d, numel="i32"), \\
                dict(BLOCK=1024, IN_KIND=kind, OP=op, HAS_DY=op == 3)

def ones():
    # Triton turns an integer argument equal to 1 into a constant: one class, one row stride
    yield "lse n=1", K._lse_kernel, dict(x_ptr="*fp32", out_ptr="*fp32", m_ptr="*fp64", r_ptr="*fp64",
                                         c_ptr="*i32"), dict(n=1, stride_x=1, seg=1, n_split=1, BLOCK=16,
                                                             IN_KIND=0, PARTIAL=False)
    yield "ce n=1", K._ce_kernel, dict(x_ptr="*fp32", t_ptr="*i64", w_ptr="*fp32", loss_ptr="*fp64",
                                       grad_ptr="*fp32", den_ptr="*fp64", wsum_ptr="*fp64", ignore_index="i32",
                                       eps_hi="fp32", eps_lo="fp32"), \
        dict(n=1, stride_x=1, stride_g=1, BLOCK=16, IN_KIND=0, HAS_W=True, HAS_IGNORE=True, SMOOTH=True,
             WRITE_GRAD=True, MEAN=True, SINGLE=True)
    yield "bce_bwd n=1", K._bce_bwd_kernel, dict(x_ptr="*fp32", y_ptr="*fp32", w_ptr="*fp32", pw_ptr="*fp32",
                                                 dy_ptr="*fp32", dx_ptr="*fp32", dt_ptr="*fp32"), \
        dict(numel=1, w_period=1, pw_period=1, count=1, BLOCK=16, IN_KIND=0, HAS_W=True, HAS_PW=True,
             DY_SCALAR=True, MEAN=True, WANT_DT=True)

for arch in (90, 80):
    for name, kernel, types, consts in [*jobs(), *(ones() if arch == 90 else ())]:
        sig = {k: ("constexpr" if k in consts else types[k]) for k in kernel.arg_names}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                out = triton.compile(ASTSource(fn=kernel, signature=sig, constexprs=consts),
                                     target=GPUTarget("cuda", arch, 32),
                                     options={"num_warps": 8, "enable_fp_fusion": True})
            ok, detail = bool(out.asm.get("cubin")), ""
        except Exception as exc:  # reported, with the kernel's name, by the test
            ok, detail = False, repr(exc)[:2000]
        print(json.dumps({"arch": arch, "kernel": name, "consts": {k: int(v) for k, v in consts.items()},
                          "ok": ok, "detail": detail}), flush=True)
"""


def test_every_kernel_compiles_for_sm90_and_sm80() -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 2 * 2 * 26 + 3, proc.stdout[-3000:]  # 2 archs, 2 dtypes, 26 variants; 3 with ones
    failed = [r for r in rows if not r["ok"]]
    assert not failed, json.dumps(failed[:3], indent=1)
