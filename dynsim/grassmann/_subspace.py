r"""The orthogonality-constrained flow on the Grassmannian (Esser et al. 2023).

Minimising $L(W) = -\tfrac12\operatorname{tr}(W^\top AW)$ subject to $W^\top W = I_h$ by
Riemannian gradient flow gives Oja's subspace flow, and for the projector $P = WW^\top$
the width-free Riccati equation:

$$
\dot W = (I - WW^\top)AW, \qquad \dot P = AP + PA - 2PAP .
$$

Exact solution: $\operatorname{span}W(t) = \operatorname{span}(e^{tA}W_0)$. Stable form:
with $A = U\Lambda U^\top$ (descending), $Z = U^\top W_0 = [Z_1; Z_2]$ ($Z_1$ is
$h\times h$),

$$
\operatorname{span}W(t) = \operatorname{span}(U_1 + U_2G(t)),\qquad
G_{ji}(t) = e^{t(\lambda_{h+j}-\lambda_i)}(Z_2Z_1^{-1})_{ji},
$$

every exponent $\le 0$, so it never overflows (the naive normal equations of $e^{tA}W_0$ lose
the subspace once $t(\lambda_1-\lambda_h)\approx 30$). The singular values of $G(t)$ are the
tangents of the principal angles between $\operatorname{span}W(t)$ and $U_1$, so
$\|\tan\Theta(t)\|_2\le e^{-t(\lambda_h-\lambda_{h+1})}\|\tan\Theta(0)\|_2$. The loss is
$L(t) = -\tfrac12\operatorname{tr}(AP(t))\to-\tfrac12\sum_{i\le h}\lambda_i$.

$W(t)$ itself differs from any orthonormalisation of $U_1 + U_2G$ by an in-subspace rotation;
[`lift`][dynsim.grassmann.lift] integrates it exactly (see its docstring). **Compare projectors, principal angles or losses,
never raw W.**
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks
from dynsim.grassmann._linalg import check_problem, eigh_desc, qf
from dynsim.grassmann._riemannian import grassmann_gradient

Z1_COND_MAX = 1e10  #: cond(U_1^T W0) above this: W0 is (numerically) orthogonal to part of the top-h eigenspace


@dataclass(frozen=True)
class OjaFlow:
    r"""Oja's subspace flow $\dot W = AW - W(W^\top AW)$ (Esser et al. 2023) for [`dynsim.solve`][dynsim.solvers.solve];
    state `W` `(d, h)` orthonormal, `args = A` `(d, d)` symmetric."""

    def __call__(self, t, W, A):
        return grassmann_gradient(W, A @ W)

    def validate(self, W0, A):
        check_problem(A, W0)


@dataclass(frozen=True)
class RiccatiFlow:
    r"""The projector flow $\dot P = AP + PA - 2PAP$ (Esser et al. 2023) for [`dynsim.solve`][dynsim.solvers.solve];
    state `P` `(d, d)` a rank-h orthogonal projector, `args = A`. The width enters only via rank P(0)."""

    def __call__(self, t, P, A):
        AP = A @ P
        return AP + AP.T - 2.0 * P @ AP

    def validate(self, P0, A):
        check_problem(A)
        _checks.check_shape("P0", P0, np.shape(A))
        if _checks.is_concrete(P0):
            P = np.asarray(P0, float)
            if np.max(np.abs(P @ P - P)) > 1e-8 or np.max(np.abs(P - P.T)) > 1e-10:
                raise ValueError("P0 must be an orthogonal projector (P0 = P0^T = P0^2), e.g. W0 @ W0.T")


def _times(ts):
    if isinstance(ts, (list, tuple, int, float)):
        ts = np.asarray(ts, float)
    _checks.check_finite("ts", ts)
    if _checks.is_concrete(ts) and np.any(np.asarray(ts) < 0):
        raise ValueError("the closed form is evaluated for t >= 0 only")
    return jnp.atleast_1d(jnp.asarray(ts))


@jax.jit
def _factors(A, W0):
    h = W0.shape[-1]
    lam, U = eigh_desc(A)
    Z = U.T @ W0
    Z1, Z2 = Z[:h], Z[h:]
    C = jnp.linalg.solve(Z1.T, Z2.T).T
    return lam[:h], lam[h:], U[:, :h], U[:, h:], C, Z1


def _angle_factors(A, W0):
    """`lam1 (h,), lam2 (d-h,), U1, U2, C = Z2 Z1^{-1} ((d-h, h)), Z1`, with a check on `cond(Z1)`."""
    check_problem(A, W0)
    f = _factors(jnp.asarray(A), jnp.asarray(W0))
    Z1 = f[-1]
    if _checks.is_concrete(Z1):
        cond = float(np.linalg.cond(np.asarray(Z1)))
        if not cond < Z1_COND_MAX:
            raise ValueError(f"U_1^T W0 is singular (cond {cond:.3g}): W0 is orthogonal to part of A's top-"
                             f"{Z1.shape[0]} eigenspace, so the flow does not converge to it and the closed form does "
                             "not apply; use riemannian_gd(..., method='exact') instead")
    return f


def _G(t, lam1, lam2, C):
    return jnp.exp(t * (lam2[:, None] - lam1[None, :])) * C


@jax.jit
def _tangents(lam1, lam2, C, ts):
    s = jnp.linalg.svd(jax.vmap(lambda t: _G(t, lam1, lam2, C))(ts), compute_uv=False)
    return jnp.pad(s, ((0, 0), (0, lam1.shape[0] - s.shape[-1])))


@jax.jit
def _bases(lam1, lam2, U1, U2, C, ts):
    return jax.vmap(lambda t: qf(U1 + U2 @ _G(t, lam1, lam2, C)))(ts)


def principal_tangents(A, W0, ts):
    r"""Exact tangents of the principal angles between $\operatorname{span}W(t)$ and the top-h eigenspace
    $U_1$ of `A`: the singular values of $G(t)$ (Esser et al. 2023), descending, `(T, h)`
    (zeros past `d - h`)."""
    ts = _times(ts)
    lam1, lam2, _, _, C, _ = _angle_factors(A, W0)
    return _tangents(lam1, lam2, C, ts)


def subspace_basis(A, W0, ts):
    r"""An orthonormal basis `(T, d, h)` of $\operatorname{span}W(t)$, $\mathrm{qf}(U_1 + U_2G(t))$
    (stable at any $t\ge0$). It spans the right subspace but is *not* $W(t)$ (see [`lift`][dynsim.grassmann.lift])."""
    ts = _times(ts)
    lam1, lam2, U1, U2, C, _ = _angle_factors(A, W0)
    return _bases(lam1, lam2, U1, U2, C, ts)


def projector(A, W0, ts):
    r"""Exact $P(t) = W(t)W(t)^\top$ of the constrained flow (Esser et al. 2023, evaluated stably through [`principal_tangents`][dynsim.grassmann.principal_tangents]),
    shape `(T, d, d)`."""
    Q = subspace_basis(A, W0, ts)
    return Q @ jnp.swapaxes(Q, -1, -2)


def projector_naive(A, W0, ts):
    r"""$P = Y(Y^\top Y)^{-1}Y^\top$ with $Y = e^{tA}W_0$ (Esser et al. 2023 as written). Exact in exact
    arithmetic; in floating point it loses the subspace once $t(\lambda_1 - \lambda_h)\approx30$. Kept to
    show that failure; use [`projector`][dynsim.grassmann.projector]."""
    check_problem(A, W0)
    ts = _times(ts)
    lam, U = eigh_desc(jnp.asarray(A))
    Z = U.T @ jnp.asarray(W0)
    Y = jnp.einsum("ij,tj,jk->tik", U, jnp.exp(ts[:, None] * lam[None, :]), Z)
    YtY = jnp.swapaxes(Y, -1, -2) @ Y
    return Y @ jnp.linalg.solve(YtY, jnp.swapaxes(Y, -1, -2))


def loss(A, W0, ts):
    r"""Loss along the exact flow, $L(t) = -\tfrac12\operatorname{tr}(AP(t))$, `(T,)`."""
    Q = subspace_basis(A, W0, ts)
    return -0.5 * jnp.sum(Q * (jnp.asarray(A) @ Q), axis=(-2, -1))


def principal_angles(W, U):
    r"""Principal angles `(..., k)` (ascending, radians), $k = \min(h, h')$, between the spans of
    `W` `(..., d, h)` and `U` `(..., d, h')`. Columns need not be orthonormal: each basis is first
    orthonormalised (reduced QR), which keeps its span. Linearly dependent columns have no well-defined span of
    that dimension: a `ValueError` names the argument (NaN angles under `jit`). Computed as
    $\operatorname{atan2}(\sin, \cos)$ from the singular values of $U^\top W$ and
    $(I - UU^\top)W$, accurate for small and large angles alike."""
    W, U = _orthonormal_basis("W", W), _orthonormal_basis("U", U)
    Ut = jnp.swapaxes(U, -1, -2)
    cos = jnp.linalg.svd(Ut @ W, compute_uv=False)  # descending cosines = ascending angles
    sin = jnp.linalg.svd(W - U @ (Ut @ W), compute_uv=False)[..., ::-1]  # ascending sines
    k = min(W.shape[-1], U.shape[-1])
    return jnp.arctan2(sin[..., :k], cos[..., :k])


def _orthonormal_basis(name, A):
    """Orthonormal columns spanning `A`'s columns (reduced QR); linearly dependent columns (a relative pivot
    below $10^3\\epsilon$): `ValueError` naming `name` when concrete, NaN when traced."""
    A = jnp.asarray(A)
    Q, R = jnp.linalg.qr(A)
    d = jnp.abs(jnp.diagonal(R, axis1=-2, axis2=-1))
    dependent = jnp.min(d, axis=-1) <= 1e3 * jnp.finfo(A.dtype).eps * jnp.max(d, axis=-1)
    if _checks.is_concrete(dependent):
        if bool(jnp.any(dependent)):
            raise ValueError(f"principal_angles: the columns of {name} are linearly dependent (no span of dimension "
                             f"{A.shape[-1]})")
        return Q
    return jnp.where(dependent[..., None, None], jnp.nan, Q)


def projection_distance(P, Q):
    r"""$\|P - Q\|_F$ between projectors (`(..., d, d)`); equals $\sqrt2\|\sin\Theta\|_F$ for equal ranks."""
    return jnp.sqrt(jnp.sum((P - Q) ** 2, axis=(-2, -1)))


@dataclass(frozen=True)
class _LiftODE:
    r"""$\dot M = -MM^\top G^\top\dot G M$ with $G(t)$ in closed form; `args = (lam1, lam2, C)`."""

    def __call__(self, t, M, args):
        lam1, lam2, C = args
        G = _G(t, lam1, lam2, C)
        Gdot = lam2[:, None] * G - G * lam1[None, :]
        return -M @ (M.T @ (G.T @ (Gdot @ M)))


def lift(A, W0, ts, **solver_kwargs):
    r"""The exact Stiefel trajectory $W(t)$ of Oja's flow (not just its span), `(T, d, h)`.

    Write $W(t) = B(t)M(t)$ with $B = U_1 + U_2G(t)$ (closed form) and $M(0) = Z_1$. Inserting
    into $\dot W = (I - WW^\top)AW$ and multiplying by $W^\top$ (using $W^\top B = M^{-1}$,
    $B^\top\dot B = G^\top\dot G$) gives the $h\times h$ ODE $\dot M = -MM^\top G^\top\dot G\,M$,
    whose coefficients decay like $e^{-t(\lambda_h-\lambda_{h+1})}$ and whose solution stays bounded
    ($MM^\top = (B^\top B)^{-1}\preceq I$). It replaces the paper's lift
    $\dot K = -(Y^\top Y)^{-1}(Y^\top AY)K$ on $Y = e^{tA}W_0$, which overflows. Integrated with
    [`dynsim.solve`][dynsim.solvers.solve] (`solver_kwargs`: method, rtol, atol, ...; default `rtol=1e-10, atol=1e-12`).
    For `h = 1` it equals $e^{tA}w_0/\|e^{tA}w_0\|$."""
    from dynsim.solvers import solve

    ts = _times(ts)
    lam1, lam2, U1, U2, C, Z1 = _angle_factors(A, W0)
    ts_np = np.asarray(ts)
    t1 = float(ts_np[-1])
    kwargs = {"rtol": 1e-10, "atol": 1e-12} | solver_kwargs
    if t1 > 0:
        sol = solve(_LiftODE(), Z1, (lam1, lam2, C), t1, saveat=ts_np, **kwargs)
        Ms = sol.ys
    else:
        Ms = jnp.broadcast_to(Z1, (len(ts_np),) + Z1.shape)
    B = jax.vmap(lambda t: U1 + U2 @ _G(t, lam1, lam2, C))(ts)
    return B @ Ms
