"""Escape steps of the Halvagal toy's smallest cosine modes: dynsim against the sampled update rule.

The toy of Halvagal et al. (2023) in the authors' setting (N = 15, M = 10, sigma = 0.1, W_P = WW^T, SimSiam,
cosine loss, lr 0.1, 1500 steps; online view clean, target view x + sigma xi; the start of
``dynsim.figures.halvagal2023`` with the published run's spectrum statistics). A mode *escapes* at the first step
where its eigenvalue of WW^T reaches half the isotropic end level tr C0 / M. The reference is the update rule on
2^18 fresh samples per step (NumPy, float64); dynsim runs GD on the exact expected gradient (the network and the
eigenmode GD map). Prints the escape steps of the three smallest modes and, last,
``max_escape_step_difference=<steps>`` (target: <= 3).

    python benchmarks/check_toy_escapes.py            # 2^18 samples per step (a few minutes)
    python benchmarks/check_toy_escapes.py --quick    # 2^14 samples per step
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import dynsim as ds  # noqa: E402
from dynsim.figures import halvagal2023 as fig  # noqa: E402
from dynsim.networks import NetParams, SSLNet, ViewData, train  # noqa: E402

N, M, SIGMA, LR, STEPS = 15, 10, 0.1, 0.1, 1500


def start():
    W0 = np.random.default_rng(fig.PAPER_SEED).standard_normal((M, N)) / 4
    return W0 * np.sqrt(fig.PAPER_TRACE / np.sum(W0**2))


def sampled_spectra(W, n_samples, seed, chunk=1 << 14):
    """The toy's cosine update on ``n_samples`` fresh samples per step (in chunks); eigenvalues after each step."""
    rng = np.random.default_rng(seed)
    out = np.empty((STEPS + 1, M))
    out[0] = np.linalg.eigvalsh(W @ W.T)
    for k in range(STEPS):
        c, U = np.linalg.eigh(W @ W.T)
        Wp = (U * c) @ U.T
        G = np.zeros_like(W)
        for _ in range(n_samples // chunk):
            x = rng.standard_normal((chunk, N))
            z1, z2 = x @ W.T, (x + SIGMA * rng.standard_normal((chunk, N))) @ W.T
            p = z1 @ Wp.T
            n_p = np.linalg.norm(p, axis=1, keepdims=True)
            n_z = np.linalg.norm(z2, axis=1, keepdims=True)
            g = -(z2 / (n_p * n_z) - np.sum(p * z2, axis=1, keepdims=True) * p / (n_p**3 * n_z))
            G += (g @ Wp).T @ x
        W = W - LR * G / n_samples
        out[k + 1] = np.linalg.eigvalsh(W @ W.T)
    return out


def escape_steps(c, level):
    """First step at which each mode (ascending order) reaches half the end level (-1: never)."""
    hit = c >= level / 2
    return np.where(hit.any(axis=0), hit.argmax(axis=0), -1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", action="store_true",
                    help="also write the output, date, machine and versions to benchmarks/results/ (the docs include it)")
    ap.add_argument("--quick", action="store_true", help="2^14 samples per step")
    a = ap.parse_args()
    n_samples = 1 << (14 if a.quick else 18)
    W0 = start()
    level = np.sum(W0**2) / M
    net = SSLNet(loss="cosine", predictor="power", predictor_input="WWt", target="online")
    args = (NetParams(), ViewData.clean_online(N, SIGMA**2))
    sol = train(net, net.initial_state(W0, args=args), args, LR, STEPS, n_saves=STEPS)
    W = np.asarray(sol.ys.W)
    c_net = np.linalg.eigvalsh(W @ np.swapaxes(W, -1, -2))
    modes = ds.SSLModes(loss="cosine", predictor="power", target="online")
    c0 = np.linalg.eigvalsh(W0 @ W0.T)
    gd = ds.gradient_descent(modes, modes.initial_state(jnp.sqrt(jnp.asarray(c0))),
                             (ds.TianParams(), ds.ModeData.clean_online(SIGMA**2, M)), LR, STEPS, n_saves=STEPS)
    c_gd = np.sort(np.asarray(gd.ys.w) ** 2, axis=-1)
    t = time.perf_counter()
    c_ref = sampled_spectra(W0, n_samples, seed=0)
    print(f"reference: {n_samples} samples per step, {time.perf_counter() - t:.0f} s; end level tr C0/M = {level:.4f}")
    e_net, e_gd, e_ref = (escape_steps(c, level)[:3] for c in (c_net, c_gd, c_ref))
    print(f"{'mode':>5s} {'c0':>8s} {'sampled':>8s} {'network':>8s} {'mode map':>8s}")
    for m in range(3):
        print(f"{m:5d} {c0[m]:8.4f} {e_ref[m]:8d} {e_net[m]:8d} {e_gd[m]:8d}")
    print(f"max |network - mode map| over the run: {np.max(np.abs(c_net - c_gd)):.1e}")
    print(f"max_escape_step_difference={int(np.max(np.abs(e_net - e_ref)))}")


if __name__ == "__main__":
    from _record import run

    run(main, "check_toy_escapes")
