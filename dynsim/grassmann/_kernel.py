r"""Kernelised (data-level) form of the constrained flow for width-m feature models, and the
tangent-kernel drift (Esser et al. 2023).

Features $\Phi\in\mathbb{R}^{m\times N}$ of the $N$ data points (columns), a symmetric pairing
matrix $M_p$ (`(N, N)`, [`pairing_matrix`][dynsim.grassmann.pairing_matrix]) with $A = \Phi M_p\Phi^\top$,
$K = \Phi^\top\Phi$ and $B_0 = \Phi^\top W_0$. The Gram matrix of the learned representations is

$$
\Phi^\top P(t)\Phi = e^{tKM_p}B_0\,[I + B_0^\top\psi_{2t}(M_pK)M_pB_0]^{-1}B_0^\top e^{tM_pK},
\qquad \psi_s(Z) = Z^{-1}(e^{sZ} - I),
$$

so the width m enters only through $B_0$ (Esser et al. 2023, "width independent"). The function's
tangent kernel under the constrained flow is $k_t(x, x') = \phi(x)^\top(I - P_t)\phi(x')$; on the data
$K_t = \Phi^\top(I - P_t)\Phi$ and its relative drift $\|K_t - K_0\|_F/\|K_0\|_F$ stays O(1) at
every width, unlike a supervised model's NTK.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import expm

from dynsim import _checks
from dynsim.grassmann import _subspace as subspace
from dynsim.grassmann._linalg import check_frame, qf, random_stiefel
from dynsim.grassmann._trace_losses import GRADIENT_FACTOR, trace_loss_spec


def pairing_matrix(loss: str, n: int, dtype=None):
    r"""The $M_p$ with $\Phi M_p\Phi^\top$ equal to [`dynamics_matrix`][dynsim.grassmann.dynamics_matrix] of the
    same loss, for stacked features $\Phi = [\Phi(X), \Phi(X^+), \Phi(X^-)]$ (`N = 3n` columns, contrastive)
    or $[\Phi(X), \Phi(X^+)]$ (`N = 2n`, alignment and mse). Shape `(N, N)`, symmetric."""
    return trace_loss_spec(loss).pairing(n, GRADIENT_FACTOR / n, dtype)


def psi(Z, s):
    r"""$\psi_s(Z) = Z^{-1}(e^{sZ} - I) = \sum_{k\ge1}s^kZ^{k-1}/k!$ (any square `Z`, also singular), as the
    top-right block of $\exp\begin{pmatrix}sZ & sI\\ 0 & 0\end{pmatrix}$ (Esser et al. 2023)."""
    n = Z.shape[-1]
    big = jnp.block([[s * Z, s * jnp.eye(n, dtype=Z.dtype)], [jnp.zeros((n, 2 * n), Z.dtype)]])
    return expm(big)[:n, n:]


def _check_features(Phi, Mp, W0):
    if np.ndim(Phi) != 2:
        raise ValueError(f"Phi must be an (m, N) feature matrix, got shape {np.shape(Phi)}")
    _checks.check_finite("Phi", Phi)
    N = np.shape(Phi)[1]
    _checks.check_shape("Mp", Mp, (N, N))
    _checks.check_symmetric("Mp", Mp)
    check_frame(W0, np.shape(Phi)[0])


def gram_closed_form(Phi, Mp, W0, ts):
    r"""$\Phi^\top P(t)\Phi$ by the kernel formula above, `(T, N, N)`. Moderate times only: it
    forms $e^{tKM_p}$, which overflows once $t\lambda_1\gtrsim 350$ in float64 (use [`gram`][dynsim.grassmann.gram])."""
    _check_features(Phi, Mp, W0)
    Phi, Mp, W0 = jnp.asarray(Phi), jnp.asarray(Mp), jnp.asarray(W0)
    K = Phi.T @ Phi
    B0 = Phi.T @ W0
    h = W0.shape[1]

    def one(t):
        L = expm(t * K @ Mp) @ B0
        inner = jnp.eye(h, dtype=Phi.dtype) + B0.T @ psi(Mp @ K, 2 * t) @ Mp @ B0
        return L @ jnp.linalg.solve(inner, L.T)

    return jax.vmap(one)(jnp.atleast_1d(jnp.asarray(ts)))


def reduce_to_data_span(Phi, Mp, W0):
    r"""Exact reduction of the m-dimensional flow to dimension $N + h$ ($N$ = number of data points).

    $A = \Phi M_p\Phi^\top$ vanishes off $\operatorname{span}\Phi$, so $e^{tA}W_0$ lives in
    $\operatorname{span}[\Phi, W_0]$. With the orthonormal basis $E = [Q_\Phi, Q_\perp]$ of that span
    ($\Phi = Q_\Phi R_\Phi$, $Q_\perp = \mathrm{qf}((I - Q_\Phi Q_\Phi^\top)W_0)$):
    $A_r = E^\top AE = \mathrm{blockdiag}(R_\Phi M_pR_\Phi^\top, 0)$, $W_r = E^\top W_0$ (orthonormal) and
    $\Phi^\top P\Phi = R_\Phi^\top[P_r]_{NN}R_\Phi$. Cost $O(mN(N+h))$ instead of $O(m^3)$.
    Needs `m >= N + h` and returns `(A_r, W_r, R_Phi)`."""
    _check_features(Phi, Mp, W0)
    Phi, Mp, W0 = jnp.asarray(Phi), jnp.asarray(Mp), jnp.asarray(W0)
    m, N = Phi.shape
    if m < N + W0.shape[1]:
        raise ValueError(f"the reduction needs width m >= N + h = {N + W0.shape[1]}, got m = {m}; "
                         "use the direct projector")
    return _reduce(Phi, Mp, W0)


def _reduce(Phi, Mp, W0):
    """`reduce_to_data_span` without the input checks (callers have made them)."""
    N, h = Phi.shape[1], W0.shape[1]
    Qp, Rp = jnp.linalg.qr(Phi)
    Wperp = W0 - Qp @ (Qp.T @ W0)
    Qo = qf(Wperp)
    E = jnp.concatenate([Qp, Qo], axis=1)
    Ar = jnp.zeros((N + h, N + h), Phi.dtype).at[:N, :N].set(Rp @ Mp @ Rp.T)
    Wr = qf(E.T @ W0)  # E^T W0 is orthonormal up to round-off; qf keeps the span and removes the round-off
    return 0.5 * (Ar + Ar.T), Wr, Rp


def gram(Phi, Mp, W0, ts):
    r"""$\Phi^\top P(t)\Phi$ at any $t\ge0$, `(T, N, N)`: stable projector of the reduced problem
    (`reduce_to_data_span`) when `m >= N + h`, else the direct `(m, m)` projector."""
    _check_features(Phi, Mp, W0)
    Phi, Mp, W0 = jnp.asarray(Phi), jnp.asarray(Mp), jnp.asarray(W0)
    m, N = Phi.shape
    if m >= N + W0.shape[1]:
        Ar, Wr, Rp = _reduce(Phi, Mp, W0)
        Pr = subspace.projector(Ar, Wr, ts)[:, :N, :N]
        return Rp.T @ Pr @ Rp
    P = subspace.projector(Phi @ Mp @ Phi.T, W0, ts)
    return Phi.T @ P @ Phi


def tangent_kernel(Phi, gram_P):
    r"""$K_t = \Phi^\top(I - P_t)\Phi = K - \Phi^\top P_t\Phi$ from `gram_P` $=\Phi^\top P_t\Phi$ `(..., N, N)`."""
    return Phi.T @ Phi - gram_P


def kernel_drift(Phi, Mp, W0, ts):
    r"""Relative tangent-kernel drift $\|K_t - K_0\|_F/\|K_0\|_F$ along the exact flow, `(T,)` (Esser et al. 2023)."""
    _check_features(Phi, Mp, W0)
    return _drift(jnp.asarray(Phi), jnp.asarray(Mp), jnp.asarray(W0), jnp.atleast_1d(jnp.asarray(ts)))


@jax.jit
def _drift(Phi, Mp, W0, ts):
    Kt = tangent_kernel(Phi, gram(Phi, Mp, W0, jnp.concatenate([jnp.zeros(1, ts.dtype), ts])))
    fro = lambda M: jnp.sqrt(jnp.sum(M * M, axis=(-2, -1)))  # noqa: E731
    return fro(Kt[1:] - Kt[0]) / fro(Kt[0])


#: feature maps of `random_features`: linear (the kernel $X^\top X$) and ReLU (arc-cosine kernel)
ACTIVATIONS = {"linear": lambda F: F, "relu": lambda F: jnp.maximum(F, 0)}


def random_features(key, X, m: int, activation: str = "linear"):
    r"""Width-m random features $\Phi = \sigma(RX)/\sqrt m$ of the data columns `X` `(d, N)`, with
    $R_{ij}\sim N(0,1)$, so $K = \Phi^\top\Phi$ has an $m\to\infty$ limit (`X^T X` for
    `activation="linear"`, the arc-cosine kernel for `"relu"`). Returns `(m, N)`."""
    _checks.check_choice("activation", activation, tuple(ACTIVATIONS))
    if m < 1:
        raise ValueError(f"width m must be >= 1, got {m}")
    X = jnp.asarray(X)
    key = jax.random.key(key) if isinstance(key, (int, np.integer)) else key
    return _features(key, X, int(m), activation)


def _features(key, X, m: int, activation: str):
    R = jax.random.normal(key, (m, X.shape[0]), X.dtype)
    F = R @ X
    return ACTIVATIONS[activation](F) / jnp.sqrt(m)


def drift_vs_width(X_views, loss: str, widths, ts, *, h: int = 2, seeds=(0,), activation: str = "linear"):
    r"""Tangent-kernel drift $\|K_t - K_0\|_F/\|K_0\|_F$ for width-m random-feature models, `(W, S, T)`
    over `widths` x `seeds` x `ts`. `X_views` is `(X, X_pos)` or `(X, X_pos, X_neg)` (columns);
    seed `s` draws the features from `key(s)` and the Haar start $W_0\in St(m, h)$ from `fold_in(key(s), 1)`.
    Each width is one compiled program over all seeds."""
    _checks.check_choice("activation", activation, tuple(ACTIVATIONS))
    X_all = jnp.concatenate([jnp.asarray(Z) for Z in X_views], axis=1)
    _checks.check_finite("X_views", X_all)
    n = np.shape(X_views[0])[1]
    Mp = pairing_matrix(loss, n, X_all.dtype)
    if Mp.shape[0] != X_all.shape[1]:
        raise ValueError(f"loss {loss!r} needs {Mp.shape[0] // n} views, got {len(X_views)}")
    widths = [int(m) for m in widths]
    if any(m < h for m in widths) or h < 1:
        raise ValueError(f"every width must be >= h >= 1, got widths {widths}, h={h}")
    keys = jnp.stack([jax.random.key(int(s)) for s in seeds])
    ts = jnp.atleast_1d(jnp.asarray(ts, X_all.dtype))
    return np.stack([np.asarray(_drift_of_seeds(keys, X_all, Mp, ts, m, int(h), activation)) for m in widths])


@functools.partial(jax.jit, static_argnums=(4, 5, 6))
def _drift_of_seeds(keys, X_all, Mp, ts, m: int, h: int, activation: str):
    def one(key):
        Phi = _features(key, X_all, m, activation)
        W0 = random_stiefel(jax.random.fold_in(key, 1), m, h, dtype=X_all.dtype)
        return _drift(Phi, Mp, W0, ts)

    return jax.vmap(one)(keys)
