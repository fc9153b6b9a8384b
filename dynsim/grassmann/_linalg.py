r"""Small linear-algebra pieces shared by the Grassmannian modules, and their input checks.

* [`eigh_desc`][dynsim.grassmann.eigh_desc]: eigen-decomposition of a symmetric matrix, eigenvalues **descending**.
* [`qf`][dynsim.grassmann.qf]: the Q factor of a thin QR with the column signs fixed so that $\mathrm{diag}(R) > 0$
  (Esser et al. 2023: the sign fix makes runs reproducible across LAPACK builds and backends).
* [`random_stiefel`][dynsim.grassmann.random_stiefel]: Haar-distributed orthonormal $d\times h$ frames.
* `check_problem`: the user-facing checks (`A` symmetric, `W0` orthonormal, `h <= d`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks

ORTHONORMAL_RTOL = 1e-6  #: allowed max |W0^T W0 - I| (float32 input is accepted; float64 is far tighter)


def eigh_desc(A):
    r"""`(lam, U)` with $A = U\,\mathrm{diag}(\lambda)U^\top$ and $\lambda_1\ge\lambda_2\ge\dots$."""
    lam, U = jnp.linalg.eigh(A)
    return lam[..., ::-1], U[..., ::-1]


def qf(Y):
    r"""Sign-fixed Q factor of the thin QR of `Y` (`(..., d, h)`, `h <= d`): $Y = QR$,
    $Q^\top Q = I$, $R_{ii} > 0$ (a zero diagonal entry keeps sign +)."""
    Q, R = jnp.linalg.qr(Y)
    s = jnp.sign(jnp.diagonal(R, axis1=-2, axis2=-1))
    s = jnp.where(s == 0, 1, s)
    return Q * s[..., None, :]


UNROLL_MAX_WIDTH = 16  #: qf_cholesky unrolls its column loops up to this width, else uses Householder QR


def qf_cholesky(Y):
    r"""Sign-fixed Q factor by Cholesky QR, for well-conditioned `Y` (`(..., d, h)`).

    $Y^\top Y = LL^\top$, $Q = YL^{-\top}$ (so $R = L^\top$ has a positive diagonal: the same Q as
    [`qf`][dynsim.grassmann.qf] in exact arithmetic). Its loss of orthonormality is $O(\kappa(Y)^2\varepsilon)$; the retraction
    inputs $Y = W + \eta\xi$ with $\xi\perp W$ have $Y^\top Y = I + \eta^2\xi^\top\xi$, hence
    $\kappa\approx1$ and machine-precision orthonormality. Both triangular loops are unrolled over the `h`
    columns (elementwise and small matmul ops that XLA fuses and vmaps; several times faster than LAPACK QR on
    small batched frames on CPU); for `h > UNROLL_MAX_WIDTH` it falls back to [`qf`][dynsim.grassmann.qf]."""
    h = Y.shape[-1]
    if h > UNROLL_MAX_WIDTH:
        return qf(Y)
    S = jnp.swapaxes(Y, -1, -2) @ Y
    L = jnp.zeros_like(S)
    idx = jnp.arange(h)
    for j in range(h):  # Cholesky, column j: L[:, j] = (S[:, j] - L L[j, :]^T) / L[j, j] on rows >= j
        v = S[..., :, j] - jnp.einsum("...ik,...k->...i", L, L[..., j, :])
        L = L.at[..., :, j].set(jnp.where(idx >= j, v / jnp.sqrt(v[..., j : j + 1]), 0.0))
    Q = jnp.zeros_like(Y)
    for j in range(h):  # forward substitution Q L^T = Y, column by column
        q = (Y[..., :, j] - jnp.einsum("...ik,...k->...i", Q, L[..., j, :])) / L[..., j, j : j + 1]
        Q = Q.at[..., :, j].set(q)
    return Q


def random_stiefel(key, d: int, h: int, batch: int | None = None, dtype=None):
    r"""Haar-random orthonormal frames $\mathrm{qf}(N(0,1)^{d\times h})$, shape `(d, h)` or
    `(batch, d, h)`. `key` is a JAX PRNG key or an int seed."""
    if not 1 <= h <= d:
        raise ValueError(f"need 1 <= h <= d, got d={d}, h={h}")
    key = jax.random.key(key) if isinstance(key, (int, np.integer)) else key
    shape = (d, h) if batch is None else (int(batch), d, h)
    return qf(jax.random.normal(key, shape, dtype=dtype or jnp.result_type(float)))


def orthonormality_error(W):
    r"""$\max|W^\top W - I|$ over the last two axes (`(...)`)."""
    h = W.shape[-1]
    E = jnp.swapaxes(W, -1, -2) @ W - jnp.eye(h, dtype=W.dtype)
    return jnp.max(jnp.abs(E), axis=(-2, -1))


def check_frame(W0, d: int, *, orthonormal: bool = True) -> None:
    """Raise `ValueError` unless `W0` is finite with shape `(..., d, h)`, `1 <= h <= d`, and (when
    `orthonormal`) `max|W0^T W0 - I| <= ORTHONORMAL_RTOL`. Skipped for traced values."""
    if not _checks.is_concrete(W0):
        return
    shp = np.shape(W0)
    if len(shp) < 2 or shp[-2] != d:
        raise ValueError(f"W0 must have shape (..., d, h) with d = {d}, got {shp}")
    if not 1 <= shp[-1] <= d:
        raise ValueError(f"the width h = {shp[-1]} must satisfy 1 <= h <= d = {d} (orthonormal columns)")
    _checks.check_finite("W0", W0)
    if orthonormal:
        err = float(np.max(np.asarray(orthonormality_error(jnp.asarray(W0)))))
        if err > ORTHONORMAL_RTOL:
            raise ValueError(f"W0 must have orthonormal columns (W0^T W0 = I), max |W0^T W0 - I| = {err:.3g}; "
                             "orthonormalise it first, e.g. with dynsim.grassmann.qf(W0)")


def check_problem(A, W0=None, *, orthonormal: bool = True) -> None:
    """Raise `ValueError` for a non-symmetric or non-finite `A` (`(d, d)` or batched) and for a `W0`
    failing `check_frame`. Skipped for traced values."""
    _checks.check_symmetric("A", A, rtol=1e-10)
    if W0 is not None:
        check_frame(W0, np.shape(A)[-1], orthonormal=orthonormal)
