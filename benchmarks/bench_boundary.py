"""A collapse boundary by bisection along 64 rays vs the grid sweep that would reach the same resolution.

Settings: ``tian_modes`` with a fixed target ratio tau = 1 (Tian et al. 2021's Obs. 5 system), 4 modes started at
w = 0.7, w_p = 0.6 (the ``tian_boundary`` example's start), collapse = every mode below 1e-6 by t1 (a solver event),
rk45 at rtol 1e-10, float64; rays: 64 values of sigma^2 in [0, 2]; searched: eta in [0, 0.5].

* ``bisection``: ``dynsim.sweeps.find_boundary`` to an absolute tolerance of 1e-6 in eta (9 scan points, then
  bisection), all 64 rays in one block, one compiled program; timed after a warm-up search that compiles it.
* ``grid``: the same configuration as a plain sweep over (sigma^2, eta) with eta spaced 1e-6 (500 001 values per ray,
  3.2e7 solves): a subset of ``--grid-subset`` configurations spread evenly over the grid is timed through the sweep's
  compiled chunk program (after a warm-up) and the time per solve scaled to the whole grid. Solves far from the
  boundary are cheaper than the bisection's (an early collapse event, or a settled state), so the subset is spread
  over the whole bracket, as the grid would be.

t1 = 1e5 lets a weight decay 1e-6 above the boundary collapse in time (a bottleneck passage of about
pi / (p_m sqrt(lambda_s delta)) <= 1.2e4 at sigma^2 = 2; docs/theory/tian2021.md#bottleneck), so both methods resolve
the same boundary. The bisection's error against the closed form eta_c = tau^2 / (4 (1 + sigma^2)) is printed. The
last line is ``speedup_vs_grid=<x>`` (target >= 100).

    python benchmarks/bench_boundary.py            # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--record", action="store_true",
                   help="also write the output, date, machine and versions to benchmarks/results/ (the docs include it)")
    p.add_argument("--rays", type=int, default=64)
    p.add_argument("--tol", type=float, default=1e-6, help="absolute tolerance in eta (and the grid's spacing)")
    p.add_argument("--t1", type=float, default=1e5)
    p.add_argument("--grid-subset", type=int, default=1024, help="grid configurations timed and scaled")
    return p.parse_args(argv)


def base(args) -> dict:
    return {"name": "bench_boundary", "seed": 0,
            "model": {"kind": "tian_modes", "target": "fixed_tau", "predictor": "linear", "n_modes": 4},
            "params": {"alpha_p": 1.0, "tau": 1.0, "w0": 0.7, "wp0": 0.6},
            "solve": {"t1": args.t1, "saves": 2, "method": "rk45", "rtol": 1e-10, "atol": 1e-12,
                      "max_steps": 1_000_000},
            "metrics": {"collapse": "all", "collapse_threshold": 1e-6}}


def main() -> None:
    args = _parse()
    jax.config.update("jax_enable_x64", True)
    from dynsim import sweeps
    from dynsim.sweeps._runner import ChunkRunner

    lo, hi = 0.0, 0.5
    sigma2 = np.linspace(0.0, 2.0, args.rays)
    cfg = sweeps.load_config(base(args) | {
        "grid": {"sigma2": sigma2.tolist()}, "run": {"chunk_size": args.rays},
        "boundary": {"parameter": "eta", "bracket": [lo, hi], "atol": args.tol, "rtol": 0.0}})
    print(f"bench_boundary: {args.rays} rays in sigma^2 [0, 2], eta in [{lo}, {hi}] to {args.tol:g}; tian_modes "
          f"fixed_tau, 4 modes, t1={args.t1:g}, rk45 rtol 1e-10, float64; {jax.device_count()} device(s)")

    t = time.perf_counter()
    sweeps.find_boundary(cfg)  # compiles the chunk program
    warm = time.perf_counter() - t
    t = time.perf_counter()
    res = sweeps.find_boundary(cfg)
    bisect_s = time.perf_counter() - t
    s = res.summaries
    exact = 1.0 / (4 * (1 + sigma2))
    n_solves = int(np.sum(s["n_evaluations"]))
    print(f"bisection: {bisect_s:8.2f} s for {n_solves} solves ({n_solves / args.rays:.1f} per ray; first call with "
          f"compilation {warm:.1f} s); flags {np.bincount(s['flag'], minlength=5).tolist()}")
    print(f"bisection error vs eta_c: max {np.max(np.abs(s['boundary'] - exact)):.2e} (tolerance {args.tol:g}); "
          f"max bracket width {np.max(s['upper'] - s['lower']):.2e}")

    n_eta = int(round((hi - lo) / args.tol)) + 1
    grid_total = n_eta * args.rays
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(grid_total, args.grid_subset, replace=False))  # spread over the whole grid
    eta_sub = lo + (pick % n_eta) * args.tol
    s2_sub = sigma2[pick // n_eta]
    grid_cfg = sweeps.load_config(base(args) | {"zip": {"sigma2": s2_sub.tolist(), "eta": eta_sub.tolist()},
                                                "run": {"chunk_size": args.grid_subset}})
    runner = ChunkRunner(grid_cfg)
    runner(0)  # compile
    t = time.perf_counter()
    out = runner(0)
    sub_s = time.perf_counter() - t
    per = sub_s / args.grid_subset
    grid_s = per * grid_total
    agree = np.mean(out["collapsed"] == (eta_sub > 1.0 / (4 * (1 + s2_sub))))
    print(f"grid at spacing {args.tol:g}: {grid_total:.3g} solves; {args.grid_subset} timed in {sub_s:.2f} s "
          f"({per * 1e3:.3f} ms per solve) -> {grid_s:.4g} s ({grid_s / 3600:.1f} h) for the whole grid; the subset's "
          f"verdicts agree with eta_c on {100 * agree:.1f} %")
    print(f"solves_ratio={grid_total / n_solves:.0f}")
    print(f"speedup_vs_grid={grid_s / bisect_s:.0f}")


if __name__ == "__main__":
    from _record import run

    run(main, "bench_boundary")
