"""Riemannian GD on the Grassmannian: dynsim (vmapped over seeds, sharded over devices) vs NumPy.

256 seeds of d = 64, h = 8, 2000 QR-retraction RGD steps (lr 0.05) on one contrastive dynamics matrix
A (Esser et al. (2023)'s construction at d = 64), float64, all in the same run:

* ``dynsim``: ``dynsim.grassmann.riemannian_gd(A, W0[256], ...)``: one compiled call, seeds vmapped,
  the batch spread over ``jax.devices()``. Before importing JAX this script exposes the CPU cores as
  devices (``XLA_FLAGS=--xla_force_host_platform_device_count=<cores>``) unless XLA_FLAGS is set;
  ``--devices 1`` measures a single device.
* ``numpy loop``: the same update written plainly in NumPy (``A @ W``, ``np.linalg.qr``, sign fix), looped
  over seeds and steps: the baseline (timed on a subset of seeds and scaled).
* ``numpy stacked``: the same update on the stacked (256, d, h) array (NumPy's batched matmul and QR),
  looped over steps only: the strongest plain-NumPy version, reported for honesty.

All three give the same frames (checked on the timed subset). The last line is
``speedup_vs_numpy=<x>`` against the numpy loop (compile excluded; compile time printed separately).

    python benchmarks/bench_grassmann.py            # the default settings
    python benchmarks/bench_grassmann.py --quick    # 400 steps
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _parse():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--record", action="store_true",
                   help="also write the output, date, machine and versions to benchmarks/results/ (the docs include it)")
    p.add_argument("--seeds", type=int, default=256)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--h", type=int, default=8)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--devices", type=int, default=os.cpu_count(), help="CPU devices to expose (default: all cores)")
    p.add_argument("--loop-seeds", type=int, default=8, help="seeds timed in the numpy loop (then scaled)")
    p.add_argument("--quick", action="store_true", help="400 steps")
    return p.parse_args()


args = _parse()
if "XLA_FLAGS" not in os.environ and args.devices > 1:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from dynsim import grassmann as gr  # noqa: E402


def numpy_step(W, A, lr):
    AW = A @ W
    Q, R = np.linalg.qr(W + lr * (AW - W @ (np.swapaxes(W, -1, -2) @ AW)))
    s = np.sign(np.diagonal(R, axis1=-2, axis2=-1))
    s[s == 0] = 1
    return Q * s[..., None, :]


def main():
    steps = 400 if args.quick else args.steps
    d, h, B, lr = args.d, args.h, args.seeds, args.lr
    X, Xp, Xn, _ = gr.protocol_data(0, d=d, n=4 * d)
    A = np.asarray(gr.dynamics_matrix("contrastive", X, Xp, Xn))
    W0 = np.asarray(gr.random_stiefel(0, d, h, batch=B))
    print(f"RGD (QR retraction), d={d}, h={h}, {B} seeds, {steps} steps, lr={lr}, float64; "
          f"jax {jax.__version__}, {len(jax.devices())} {jax.devices()[0].platform} device(s)")

    t = time.perf_counter()
    sol = gr.riemannian_gd(A, W0, lr, steps)
    sol.ys.block_until_ready()
    first = time.perf_counter() - t
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        gr.riemannian_gd(A, W0, lr, steps).ys.block_until_ready()
        best = min(best, time.perf_counter() - t)
    t_jax = best
    W_jax = np.asarray(sol.final)

    k = min(args.loop_seeds, B)
    t = time.perf_counter()
    W_loop = []
    for b in range(k):
        W = W0[b]
        for _ in range(steps):
            W = numpy_step(W, A, lr)
        W_loop.append(W)
    t_loop = (time.perf_counter() - t) * B / k

    t = time.perf_counter()
    W = W0
    for _ in range(steps):
        W = numpy_step(W, A, lr)
    t_stacked = time.perf_counter() - t

    err = max(float(np.max(np.abs(np.stack(W_loop) - W_jax[:k]))), float(np.max(np.abs(W - W_jax))))
    print(f"max |W_dynsim - W_numpy| after {steps} steps: {err:.1e} (same update, round-off only)")
    print(f"{'':28s} {'seconds':>9s} {'seed-steps/s':>13s}")
    for name, sec in (("dynsim (vmapped, sharded)", t_jax), ("numpy loop (seeds x steps)", t_loop),
                      ("numpy stacked (steps)", t_stacked)):
        print(f"{name:28s} {sec:9.3f} {B * steps / sec:13.3e}")
    print(f"dynsim compile + first run: {first:.2f} s")
    print(f"speedup_vs_numpy_stacked={t_stacked / t_jax:.1f}")
    if err > 1e-8:
        sys.exit(f"results differ by {err:.2e}")
    print(f"speedup_vs_numpy={t_loop / t_jax:.1f}")


if __name__ == "__main__":
    from _record import run

    run(main, "bench_grassmann")
