"""A 10 000-configuration sweep of the Tian per-mode system vs a Python loop of single jitted solves.

Settings: ``tian_modes`` (BYOL: EMA target, linear predictor), 64 modes, t1 = 100, rk45,
float64, grid eta (100) x sigma2 (100), per-mode start noise from each configuration's key, 11 saves.

* ``sweep``: ``dynsim.sweeps.run_sweep`` into a temporary run folder (chunk files written, as a user
  runs it), compile excluded (a warm-up call compiles the chunk function first; compile time printed).
* ``loop``: ``dynsim.solve(TianModes(), y0, args, 100, saveat=11, method="rk45", event=...)`` — the
  single jitted solve — called in a Python loop on the same configurations (same start, same
  collapse event), timed on ``--loop`` of them and scaled to the whole sweep.
* ``scaling``: the sweep timed in two child processes exposing 1 and 2 CPU devices
  (``XLA_FLAGS=--xla_force_host_platform_device_count``), same settings.
* ``memory``: peak resident memory of child processes running 1/4 and all of the sweep at the same chunk
  size: bounded by the chunk size, it should not grow with the sweep size (ratio ~1).

Machines here are shared and noisy: only ratios measured in the same run are reported. The last line
is ``speedup_vs_loop=<x>`` (target >= 5).

    python benchmarks/bench_sweep.py            # the default settings (a few minutes on 2 cores)
    python benchmarks/bench_sweep.py --quick    # 2 500 configurations
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--record", action="store_true",
                   help="also write the output, date, machine and versions to benchmarks/results/ (the docs include it)")
    p.add_argument("--configs", type=int, default=10_000, help="sweep size (a square eta x sigma2 grid)")
    p.add_argument("--modes", type=int, default=64)
    p.add_argument("--t1", type=float, default=100.0)
    p.add_argument("--chunk", type=int, default=512, help="configurations per chunk")
    p.add_argument("--loop", type=int, default=200, help="configurations timed in the Python loop")
    p.add_argument("--quick", action="store_true", help="2 500 configurations")
    p.add_argument("--child", choices=["sweep"], help=argparse.SUPPRESS)
    p.add_argument("--devices", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def config(n_configs: int, modes: int, t1: float, chunk: int) -> dict:
    side = int(round(n_configs**0.5))
    return {"name": "bench", "seed": 0,
            "model": {"kind": "tian_modes", "target": "ema", "predictor": "linear", "n_modes": modes},
            "params": {"w0": 0.5, "wp0": 0.5, "init_std": 0.1, "beta": 0.5, "alpha_p": 1.0},
            "solve": {"t1": t1, "saves": 11, "method": "rk45"}, "run": {"chunk_size": chunk},
            "grid": {"eta": {"start": 0.0, "stop": 0.3, "num": side}, "sigma2": {"start": 0.0, "stop": 2.0, "num": side}}}


def child(args) -> None:
    """Time the sweep on the devices this process exposes; print one JSON line."""
    import resource

    import jax

    jax.config.update("jax_enable_x64", True)
    from dynsim.sweeps import load_config, run_sweep
    from dynsim.sweeps._runner import ChunkRunner

    cfg = load_config(config(args.configs, args.modes, args.t1, args.chunk))
    t0 = time.perf_counter()
    ChunkRunner(cfg)(0)  # compile (and warm) the chunk function
    compile_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        run_sweep(cfg, os.path.join(d, "run"), progress=False)
        sweep_s = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB on Linux
    print(json.dumps({"devices": len(jax.devices()), "configs": cfg.n_configs, "sweep_s": sweep_s,
                      "compile_s": compile_s, "peak_rss_mib": rss}))


def run_child(args, devices: int, configs: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    cmd = [sys.executable, __file__, "--child", "sweep", "--configs", str(configs), "--modes", str(args.modes),
           "--t1", str(args.t1), "--chunk", str(args.chunk)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def loop_baseline(args, n_total: int) -> tuple[float, float]:
    """Seconds for ``args.loop`` single jitted solves (after one warm-up), scaled to ``n_total``."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    import dynsim as ds
    from dynsim.solvers._events import CollapseEvent
    from dynsim.sweeps import load_config
    from dynsim.sweeps._models import _all_modes_strength, _mode_start, mode_data

    cfg = load_config(config(args.configs, args.modes, args.t1, args.chunk))
    model = ds.TianModes(target="ema", predictor="linear")
    event = CollapseEvent(_all_modes_strength, 1e-6)  # the sweep's complete-collapse event
    vals, fixed = cfg.values, cfg.fixed
    root = jax.random.PRNGKey(cfg.seed)

    def one(i):
        p = {k: jnp.asarray(v) for k, v in fixed.items()} | {k: jnp.asarray(v[i]) for k, v in vals.items()}
        params = ds.TianParams(p["alpha_p"], p["beta"], p["eta"], p["tau"])
        data = mode_data(p, args.modes)
        w, wp = _mode_start(p, jax.random.fold_in(root, i), args.modes, jnp.float64)
        y0 = model.initial_state(w, wp, p["tau0"] * w)
        sol = ds.solve(model, y0, (params, data), args.t1, saveat=11, method="rk45", event=event)
        return jax.block_until_ready(sol.ys.w)

    one(0)
    idx = list(range(0, n_total, max(1, n_total // args.loop)))[: args.loop]
    t0 = time.perf_counter()
    for i in idx:
        one(i)
    per = (time.perf_counter() - t0) / len(idx)
    return per * n_total, per


def main() -> None:
    args = _parse()
    if args.child:
        return child(args)
    if args.quick:
        args.configs = 2500
    n = int(round(args.configs**0.5)) ** 2
    print(f"bench_sweep: {n} configurations of tian_modes (EMA, {args.modes} modes, t1={args.t1:g}, rk45, float64), "
          f"chunk {args.chunk}; {os.cpu_count()} cores")
    one = run_child(args, 1, n)
    two = run_child(args, 2, n)
    quarter = run_child(args, 2, n // 4)
    loop_s, per = loop_baseline(args, n)
    print(f"sweep, 1 device : {one['sweep_s']:8.2f} s  (compile {one['compile_s']:.1f} s, peak RSS {one['peak_rss_mib']:.0f} MiB)")
    print(f"sweep, 2 devices: {two['sweep_s']:8.2f} s  (compile {two['compile_s']:.1f} s, peak RSS {two['peak_rss_mib']:.0f} MiB)")
    print(f"loop of solve() : {loop_s:8.2f} s  ({per * 1e3:.2f} ms per configuration, {args.loop} timed, scaled)")
    print(f"scaling_1_to_2_devices={one['sweep_s'] / two['sweep_s']:.2f}  (target >= 1.6)")
    print(f"peak_rss_ratio_full_vs_quarter={two['peak_rss_mib'] / quarter['peak_rss_mib']:.2f}  "
          f"({quarter['configs']} configs: {quarter['peak_rss_mib']:.0f} MiB; {two['configs']}: "
          f"{two['peak_rss_mib']:.0f} MiB; bounded by the chunk size if ~1)")
    best = min(one["sweep_s"], two["sweep_s"])
    print(f"speedup_vs_loop={loop_s / best:.1f}")


if __name__ == "__main__":
    from _record import run

    run(main, "bench_sweep")
