"""Network simulations vs plain NumPy, measured in the same run.

(b) SGD steps per second of the linear BYOL network (Euclidean loss, trainable predictor, EMA target)
    with n1 = 64, n2 = 32, batch 4096: dynsim.networks.train (one jitted lax.scan) against the same
    step written in plain NumPy (float64, x, n1, n2 drawn with numpy's default generator). dynsim
    runs it twice: drawing the samples (``sgd_sampling="samples"``), and drawing the minibatch's
    Wishart second moments (``"moments"``, the default for Euclidean losses; the same law of every step).
(a) The Halvagal toy (N = 15, M = 10, sigma = 0.1, W_P = WW^T, SimSiam, Euclidean loss, lr 0.01),
    1500 steps: dynsim's GD on the *exact* expected gradient against the published toy approach, a
    NumPy update on 50 000 fresh samples per step (timed on a subset of steps and scaled). Also
    reported: the final-spectrum difference (the sampled run's noise) and the cosine loss (exact Gaussian
    expectation) against NumPy's sampled cosine update.

Prints a table; the last line is ``speedup_vs_sampled_numpy=<x>`` (Euclidean, compile excluded).

    python benchmarks/bench_nets.py           # the default settings
    python benchmarks/bench_nets.py --quick   # fewer baseline steps
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from dynsim.networks import NetParams, SSLNet, ViewData, train  # noqa: E402


def _best(fn, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


# --- (b) SGD ---------------------------------------------------------------------------------------
def numpy_sgd(W, Wp, Wa, steps, batch, lr, sigma, beta, alpha_p, rng):
    n1 = W.shape[1]
    for _ in range(steps):
        x = rng.standard_normal((batch, n1))
        x1 = x + sigma * rng.standard_normal((batch, n1))
        x2 = x + sigma * rng.standard_normal((batch, n1))
        z1 = x1 @ W.T
        r = z1 @ Wp.T - x2 @ Wa.T  # dL/dp of 1/2 |p - z2|^2, per sample
        gWp = r.T @ z1 / batch
        gW = (r @ Wp).T @ x1 / batch
        W_old = W
        W = W - lr * gW
        Wp = Wp - lr * alpha_p * gWp
        Wa = Wa + lr * beta * (W_old - Wa)
    return W, Wp, Wa


def bench_sgd(n1=64, n2=32, batch=4096, steps=200, baseline_steps=50):
    rng = np.random.default_rng(0)
    sigma2, lr, beta = 0.25, 0.01, 0.4
    W0, Wp0 = rng.standard_normal((n2, n1)) / np.sqrt(n1), np.eye(n2) * 0.5
    args = (NetParams(beta=beta), ViewData.isotropic(n1, sigma2))
    base = _best(lambda: numpy_sgd(W0, Wp0, np.zeros_like(W0), baseline_steps, batch, lr, np.sqrt(sigma2), beta, 1.0,
                                   np.random.default_rng(1)), repeats=2) / baseline_steps
    print(f"(b) SGD n1={n1} n2={n2} batch={batch}: numpy {1 / base:8.1f} steps/s")
    ratios = {}
    for sampling in ("samples", "moments"):
        net = SSLNet(sgd_sampling=sampling)
        y0 = net.initial_state(W0, Wp0)
        run = lambda: jax.block_until_ready(train(net, y0, args, lr, steps, batch=batch).final.W)  # noqa: E731
        t0 = time.perf_counter()
        run()
        first = time.perf_counter() - t0
        ours = _best(run) / steps
        ratios[sampling] = base / ours
        print(f"    dynsim sgd_sampling={sampling:8s} {1 / ours:9.1f} steps/s (first call incl. compile "
              f"{first:.2f} s for {steps} steps): {ratios[sampling]:.1f}x numpy")
    print(f"sgd_speedup_vs_numpy_samples={ratios['samples']:.2f}")
    print(f"sgd_speedup_vs_numpy={ratios['moments']:.2f}  (default sgd_sampling='auto' = moments here)")
    return ratios


# --- (a) Halvagal toy -----------------------------------------------------------------------------
def numpy_toy(W, steps, lr, sigma, loss, n_samples, rng):
    """The published toy update: fresh samples each step, W_P = U diag(c) U^T from WW^T, SimSiam."""
    M, N = W.shape
    for _ in range(steps):
        c, U = np.linalg.eigh(W @ W.T)
        Wp = (U * np.abs(c)) @ U.T
        x = rng.standard_normal((n_samples, N))
        x1 = x + sigma * rng.standard_normal((n_samples, N))
        x2 = x + sigma * rng.standard_normal((n_samples, N))
        z1, z2 = x1 @ W.T, x2 @ W.T
        p = z1 @ Wp.T
        if loss == "euclidean":
            g = p - z2
        else:  # d(-cos)/dp
            npn = np.linalg.norm(p, axis=1, keepdims=True)
            nz = np.linalg.norm(z2, axis=1, keepdims=True)
            g = -(z2 / (npn * nz) - np.sum(p * z2, axis=1, keepdims=True) * p / (npn**3 * nz))
        W = W - lr * (g @ Wp).T @ x1 / n_samples
    return W


def bench_toy(loss="euclidean", steps=1500, baseline_steps=100, n_samples=50_000):
    rng = np.random.default_rng(2)
    W0 = rng.standard_normal((10, 15)) / 4
    lr = 0.01 if loss == "euclidean" else 0.1
    net = SSLNet(loss=loss, predictor="power", predictor_input="WWt", target="online")
    args = (NetParams(), ViewData.isotropic(15, 0.01))
    y0 = net.initial_state(W0, args=args)
    run = lambda: jax.block_until_ready(train(net, y0, args, lr, steps).final.W)  # noqa: E731
    t0 = time.perf_counter()
    W_ours = run()
    first = time.perf_counter() - t0
    ours = _best(run)
    t0 = time.perf_counter()
    numpy_toy(W0, baseline_steps, lr, 0.1, loss, n_samples, np.random.default_rng(3))
    base = (time.perf_counter() - t0) * steps / baseline_steps
    W_np = numpy_toy(W0, steps, lr, 0.1, loss, 5000, np.random.default_rng(4)) if baseline_steps >= steps else None
    print(f"(a) toy {loss:9s} {steps} steps: dynsim exact GD {ours:7.3f} s (first call incl. compile {first:.2f} s), "
          f"numpy {n_samples} samples/step {base:8.2f} s (scaled from {baseline_steps} steps)")
    if W_np is not None:
        c1, c2 = np.linalg.eigvalsh(np.asarray(W_ours) @ np.asarray(W_ours).T), np.linalg.eigvalsh(W_np @ W_np.T)
        print(f"    final spectra: max |dc| = {np.max(np.abs(c1 - c2)):.2e} (sampled run with 5000 samples/step)")
    return base / ours


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", action="store_true",
                    help="also write the output, date, machine and versions to benchmarks/results/ (the docs include it)")
    ap.add_argument("--quick", action="store_true", help="fewer baseline steps")
    a = ap.parse_args()
    print(f"jax {jax.__version__}, devices {jax.devices()}, float64")
    bench_sgd(baseline_steps=10 if a.quick else 50)
    cos = bench_toy("cosine", baseline_steps=20 if a.quick else 100)
    print(f"cosine_speedup_vs_sampled_numpy={cos:.1f}")
    euc = bench_toy("euclidean", baseline_steps=20 if a.quick else 100)
    print(f"speedup_vs_sampled_numpy={euc:.1f}")


if __name__ == "__main__":
    from _record import run

    run(main, "bench_nets")
