r"""Theory vs Riemannian GD on the Grassmannian, compared through projectors and principal angles
(never raw W, whose in-subspace rotation is not determined by the span; Esser et al. 2023).

For each method and step size $\eta$, RGD runs $T/\eta$ steps from $W_0$ and is compared at
the saved times $t = \eta k$ with the exact flow ([`projector`][dynsim.grassmann.projector]):

* `projection`: $\max_t\|P_k - P(t)\|_F$ ($=\sqrt2\|\sin\Theta\|_F$ between the two spans);
* `angles`: $\max_t\max_i|\theta_i^{\mathrm{RGD}} - \theta_i(t)|$, the principal angles to the top-h
  eigenspace of A against $\arctan$ of [`principal_tangents`][dynsim.grassmann.principal_tangents];
* `final`: $\|P_K - P(T)\|_F$ (the protocol's table), and fitted orders
  $\log_2(e(\eta)/e(\eta/2))$ of `final` over halving step sizes (1 for the retractions).
"""

from __future__ import annotations

import numpy as np

from dynsim.grassmann import _subspace as subspace
from dynsim.grassmann._linalg import eigh_desc, qf
from dynsim.grassmann._riemannian import METHODS, riemannian_gd
from dynsim.grassmann._trace_losses import dynamics_matrix, protocol_data


def protocol_problem(loss: str = "contrastive", d: int = 30, h: int = 4, n: int = 2000, seed: int = 0):
    r"""Esser et al. (2023)'s problem: `(A, W0)` from [`protocol_data`][dynsim.grassmann.protocol_data] (seed `seed`;
    for `"mse"` with anisotropic noise $\mathrm{diag}(\mathrm{linspace}(0.05, 1, d))$ so the bottom
    eigenspace of D has a usable gap) and $W_0 = \mathrm{qf}(N(0,1)^{d\times h})$ from `default_rng(seed)`."""
    if not 1 <= h <= d:
        raise ValueError(f"need 1 <= h <= d, got d={d}, h={h}")
    noise_cov = np.diag(np.linspace(0.05, 1.0, d)) if loss == "mse" else None
    X, Xp, Xn, _ = protocol_data(seed, d=d, n=n, noise_cov=noise_cov)
    A = np.asarray(dynamics_matrix(loss, X, Xp, Xn))
    W0 = np.asarray(qf(np.random.default_rng(seed).standard_normal((d, h))))
    return A, W0


def rgd_agreement(A, W0, t1: float, lrs=(0.1, 0.05, 0.025), methods=METHODS, n_saves: int = 4) -> dict:
    """Errors of RGD against the exact flow (module docstring) for every `method` x `lr`.

    Returns `{"lrs", "methods", "projection", "angles", "final" (each (M, L)), "orders" ((M, L-1)),
    "ts" (per lr, the compared times)}`. Each `t1 / lr` must be an integer multiple of `n_saves`."""
    lrs = tuple(float(x) for x in lrs)
    if len(lrs) < 1 or any(x <= 0 for x in lrs):
        raise ValueError(f"lrs must be positive, got {lrs}")
    A, W0 = np.asarray(A), np.asarray(W0)
    h = W0.shape[1]
    U1 = np.asarray(eigh_desc(A)[1])[:, :h]
    out = {k: np.empty((len(methods), len(lrs))) for k in ("projection", "angles", "final")}
    ts_all = []
    for j, lr in enumerate(lrs):
        steps = int(round(t1 / lr))
        if abs(steps * lr - t1) > 1e-9 * t1 or steps % n_saves:
            raise ValueError(f"t1/lr = {t1 / lr:g} must be an integer multiple of n_saves={n_saves}")
        ts = lr * (steps // n_saves) * np.arange(n_saves + 1)
        ts_all.append(ts)
        P = np.asarray(subspace.projector(A, W0, ts))
        theta = np.arctan(np.asarray(subspace.principal_tangents(A, W0, ts)))[:, ::-1]  # ascending
        for i, m in enumerate(methods):
            Ws = np.asarray(riemannian_gd(A, W0, lr, steps, method=m, n_saves=n_saves).ys)
            dist = np.asarray(subspace.projection_distance(Ws @ np.swapaxes(Ws, -1, -2), P))
            ang = np.asarray(subspace.principal_angles(Ws, np.broadcast_to(U1, (len(ts),) + U1.shape)))
            out["projection"][i, j] = dist.max()
            out["final"][i, j] = dist[-1]
            out["angles"][i, j] = np.abs(ang - theta).max()
    with np.errstate(divide="ignore", invalid="ignore"):
        orders = np.log(out["final"][:, :-1] / out["final"][:, 1:]) / np.log(np.array(lrs[:-1]) / np.array(lrs[1:]))
    return out | {"lrs": np.array(lrs), "methods": list(methods), "orders": orders, "ts": ts_all}
