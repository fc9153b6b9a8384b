"""Batched per-mode Tian system vs scipy, measured in the same run.

A batch of B parameter sets (alpha_p, beta, eta, sigma2 per mode) of the M-mode per-mode
BYOL system (dynsim.TianModes, EMA target) is integrated to t = T with dynsim.solve_batch
(Tsit5, one jitted vmap) and, for a subset, with scipy.integrate.solve_ivp(RK45) on a plain
NumPy right-hand side at the same tolerances; the scipy time is scaled to the full batch.
Prints a table and, last, ``speedup_vs_scipy=<x>``.

    python benchmarks/bench_modes.py            # B=1024, M=64, T=100 (the default setting)
    python benchmarks/bench_modes.py --quick    # small smoke run
    python benchmarks/bench_modes.py --cosine   # cosine loss: exact vs fixed nodes vs Euclidean, in M (SSLModes),
                                                # and exact vs 4096-node GD of the N = 15, M = 10 network
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import dynsim as ds  # noqa: E402


def make_batch(B, M, seed=0):
    rng = np.random.default_rng(seed)
    params = ds.TianParams(alpha_p=rng.uniform(0.5, 2.0, B), beta=rng.uniform(0.1, 1.0, B),
                           eta=rng.uniform(0.0, 0.05, B), tau=np.ones(B))
    lam_s = 1.0 + rng.uniform(0.1, 1.0, (B, M))
    data = ds.ModeData(lambda_s=lam_s, lambda_d=np.ones((B, M)))
    y0 = ds.ModeState(w=rng.uniform(0.1, 1.0, (B, M)), w_p=rng.uniform(-0.5, 1.0, (B, M)), w_a=np.zeros((B, M)))
    return params, data, y0


def numpy_rhs(alpha_p, beta, eta, lam_s, lam_d):
    M = lam_s.shape[0]

    def f(t, y):
        w, wp, wa = y[:M], y[M:2 * M], y[2 * M:]
        r = wa * lam_d - wp * w * lam_s
        return np.concatenate([wp * r - eta * w, alpha_p * r * w - eta * wp, beta * (w - wa)])

    return f


def _solves_per_second(model, y0, args, t1, method, repeats=2):
    kw = dict(batch_y0=True, batch_args=None, method=method, rtol=1e-6, atol=1e-9)
    sol = ds.solve_batch(model, y0, args, t1, **kw)  # compile
    jax.block_until_ready(sol.ys)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        sol = ds.solve_batch(model, y0, args, t1, **kw)
        jax.block_until_ready(sol.ys)
        best = min(best, time.perf_counter() - t)
    assert bool(np.all(sol.ok))
    return y0.w.shape[0] / best, int(np.max(np.asarray(sol.n_steps)))


def cosine_study(method="rk45", batch=16, t1=150.0):
    """Halvagal toy family (sigma = 0.1, W_P = WW^T, SimSiam): a batch of random initial spectra
    integrated to t1; solves per second for Euclidean, cosine mean-field, cosine on fixed Gaussian nodes and
    cosine exact (the two-radius integral), all measured in this run."""
    rng = np.random.default_rng(0)
    args = (ds.TianParams(), None)
    rows = []

    def run(loss, M, expectation="exact", nodes=4096):
        model = ds.SSLModes(loss=loss, expectation=expectation, n_nodes=nodes)
        w = jnp.asarray(np.sqrt(rng.uniform(0.05, 2.0, (batch, M))))
        y0 = jax.vmap(model.initial_state)(w)
        sps, steps = _solves_per_second(model, y0, (args[0], ds.ModeData.isotropic(0.01, M)), t1, method)
        rows.append((loss, expectation if loss == "cosine" else "-", M, nodes if loss == "cosine" and
                     expectation == "nodes" else 0, sps, steps))
        return sps

    euc = run("euclidean", 10)
    run("cosine", 10, "mean_field")
    cos = run("cosine", 10, "exact")
    old = run("cosine", 10, "nodes", 4096)
    for M in (5, 20, 40):
        run("cosine", M, "exact")
        run("cosine", M, "nodes", 4096)
    for nodes in (1024, 16384):
        run("cosine", 10, "nodes", nodes)
    print(f"method={method} backend={jax.default_backend()} batch={batch} t1={t1} rtol=1e-6 atol=1e-9")
    print(f"{'loss':10s} {'expectation':12s} {'M':>4s} {'nodes':>6s} {'solves/s':>10s} {'max steps':>10s}")
    for loss, ex, M, nodes, sps, steps in rows:
        print(f"{loss:10s} {ex:12s} {M:4d} {nodes:6d} {sps:10.1f} {steps:10d}")
    print(f"cosine_exact_vs_euclidean_cost={euc / cos:.1f}")
    print(f"cosine_exact_vs_nodes4096_speed={cos / old:.2f}")
    network_gd_study()


def network_gd_study(steps=300, repeats=5):
    """The same toy as a network (N = 15, M = 10): GD steps per second on the exact expected gradient against
    4096 fixed Gaussian nodes, both measured in this run (compile excluded)."""
    from dynsim.networks import NetParams, SSLNet, ViewData, train

    W0 = np.random.default_rng(2).standard_normal((10, 15)) / 4
    args = (NetParams(), ViewData.isotropic(15, 0.01))
    rate, final = {}, {}
    for expectation in ("exact", "nodes"):
        net = SSLNet(loss="cosine", predictor="power", predictor_input="WWt", target="online",
                     expectation=expectation, n_nodes=4096)
        y0 = net.initial_state(W0, args=args)
        run = lambda: jax.block_until_ready(train(net, y0, args, 0.1, steps).final.W)  # noqa: E731
        final[expectation] = np.asarray(run())
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t)
        rate[expectation] = steps / best
    spec = {k: np.linalg.eigvalsh(W @ W.T) for k, W in final.items()}
    print(f"network N=15 M=10 cosine GD: exact {rate['exact']:.0f} steps/s, 4096 nodes {rate['nodes']:.0f} steps/s; "
          f"spectra after {steps} steps differ by {np.max(np.abs(spec['exact'] - spec['nodes'])):.1e} (node error)")
    print(f"network_exact_vs_nodes4096_gd_cost={rate['nodes'] / rate['exact']:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", action="store_true",
                    help="also write the output, date, machine and versions to benchmarks/results/ (the docs include it)")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--modes", type=int, default=64)
    ap.add_argument("--t1", type=float, default=100.0)
    ap.add_argument("--scipy-subset", type=int, default=64, help="configurations timed with scipy")
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--atol", type=float, default=1e-9)
    ap.add_argument("--method", default="rk45", help="dynsim method (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help="B=64, subset 8")
    ap.add_argument("--cosine", action="store_true", help="run the cosine-loss study instead")
    a = ap.parse_args()
    if a.cosine:
        return cosine_study(a.method)
    if a.quick:
        a.batch, a.scipy_subset = 64, 8
    B, M = a.batch, a.modes
    params, data, y0 = make_batch(B, M)
    model = ds.TianModes(target="ema")
    kw = dict(batch_y0=True, batch_args=0, method=a.method, rtol=a.rtol, atol=a.atol, max_steps=100_000)

    t = time.perf_counter()
    sol = ds.solve_batch(model, y0, (params, data), a.t1, **kw)
    jax.block_until_ready(sol.ys)
    first = time.perf_counter() - t
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        sol = ds.solve_batch(model, y0, (params, data), a.t1, **kw)
        jax.block_until_ready(sol.ys)
        runs.append(time.perf_counter() - t)
    ours = min(runs)
    compile_s = first - ours

    n = min(a.scipy_subset, B)
    t = time.perf_counter()
    errs, nfev = [], []
    for i in range(n):
        f = numpy_rhs(params.alpha_p[i], params.beta[i], params.eta[i], data.lambda_s[i], data.lambda_d[i])
        yy = np.concatenate([y0.w[i], y0.w_p[i], y0.w_a[i]])
        out = solve_ivp(f, (0.0, a.t1), yy, method="RK45", rtol=a.rtol, atol=a.atol)
        ref = out.y[:, -1]
        got = np.concatenate([np.asarray(sol.final.w[i]), np.asarray(sol.final.w_p[i]), np.asarray(sol.final.w_a[i])])
        errs.append(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-300))
        nfev.append(out.nfev)
    scipy_subset = time.perf_counter() - t
    scipy_full = scipy_subset * B / n

    print(f"method={a.method} backend={jax.default_backend()} devices={jax.device_count()} B={B} M={M} t1={a.t1} "
          f"rtol={a.rtol} atol={a.atol}")
    print(f"{'what':38s} {'seconds':>10s}")
    print(f"{'dynsim solve_batch, steady':38s} {ours:10.3f}")
    print(f"{'dynsim first call incl. compile':38s} {first:10.3f}")
    print(f"{'dynsim compile (first - steady)':38s} {compile_s:10.3f}")
    print(f"{f'scipy RK45, {n} configs':38s} {scipy_subset:10.3f}")
    print(f"{f'scipy RK45, scaled to {B}':38s} {scipy_full:10.3f}")
    print(f"dynsim steps: median {int(np.median(np.asarray(sol.n_steps)))}, max {int(np.max(np.asarray(sol.n_steps)))}; "
          f"scipy nfev median {int(np.median(nfev))}")
    print(f"all ok: {bool(np.all(sol.ok))}; max rel. difference to scipy on the subset: {max(errs):.2e}")
    print(f"speedup_vs_scipy={scipy_full / ours:.1f}")


if __name__ == "__main__":
    from _record import run

    run(main, "bench_modes")
