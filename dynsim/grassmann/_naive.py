r"""The naive (unconstrained) flow $\dot W = AW$ and dimension collapse (Esser et al. 2023).

Gradient flow of $L(W) = -\tfrac12\operatorname{tr}(W^\top AW)$ with optional weight decay
$\tfrac\gamma2\|W\|_F^2$:

$$
\dot W = (A - \gamma I)W,\qquad W(t) = U e^{t(\Lambda-\gamma)}U^\top W_0 .
$$

On the Frobenius sphere $\|W\|_F = 1$: $\dot W = AW - \operatorname{tr}(W^\top AW)W$,
$W(t) = e^{tA}W_0/\|e^{tA}W_0\|_F$ (weight decay is normal to the sphere and drops out).

Collapse: if $u_1^\top W_0\ne0$, $W(t)/\|W(t)\|$ tends to the rank-one
$u_1(u_1^\top W_0)/\|u_1^\top W_0\|$, $\sigma_2/\sigma_1 = \Theta(e^{-t(\lambda_1-\lambda_2)})$ and the
stable rank $\|W\|_F^2/\|W\|_2^2\to1$: a "trivial scalar representation".
Shapes: `A` `(d, d)` symmetric, `W0` `(d, h)` (any, not necessarily orthonormal), times `(T,)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from dynsim import _checks
from dynsim.grassmann._linalg import check_problem, eigh_desc
from dynsim.networks import stable_rank


def naive_solution(A, W0, ts, *, weight_decay=0.0, sphere: bool = False):
    r"""Exact $W(t)$ of the naive flow at times `ts` (`(T,)`), shape `(T, d, h)`.

    `sphere=False`: $U e^{t(\Lambda-\gamma)}U^\top W_0$ (its norm grows like $e^{t(\lambda_1-\gamma)}$
    and overflows in float64 once $t(\lambda_1 - \gamma) \gtrsim 700$; use [`collapse_diagnostics`][dynsim.grassmann.collapse_diagnostics]
    of `sphere=True` for long times). `sphere=True`: the Frobenius-sphere flow, evaluated with the
    exponent shifted by $\lambda_1$ so it never overflows. `W0` must be nonzero."""
    check_problem(A, W0, orthonormal=False)
    _checks.check_finite("weight_decay", weight_decay)
    ts = jnp.atleast_1d(jnp.asarray(ts))
    lam, U = eigh_desc(jnp.asarray(A))
    Z = U.T @ jnp.asarray(W0)
    if sphere:
        grow = jnp.exp(ts[:, None] * (lam - lam[0])[None, :])
        W = jnp.einsum("ij,tj,jk->tik", U, grow, Z)
        return W / jnp.sqrt(jnp.sum(W * W, axis=(-2, -1), keepdims=True))
    grow = jnp.exp(ts[:, None] * (lam - weight_decay)[None, :])
    return jnp.einsum("ij,tj,jk->tik", U, grow, Z)


@dataclass(frozen=True)
class NaiveFlow:
    r"""The naive flow as a model for [`dynsim.solve`][dynsim.solvers.solve]: state `W` `(d, h)`, `args = (A, weight_decay)`.

    `sphere=False`: $\dot W = (A-\gamma I)W$; `sphere=True`: $\dot W = AW - \operatorname{tr}(W^\top AW)W$
    (keeps $\|W\|_F = 1$). Esser et al. 2023."""

    sphere: bool = False

    def __call__(self, t, W, args):
        A, gamma = args
        AW = A @ W
        if self.sphere:
            return AW - jnp.sum(W * AW) * W
        return AW - gamma * W

    def validate(self, W0, args):
        A, gamma = args
        check_problem(A, W0, orthonormal=False)
        _checks.check_finite("weight_decay", gamma)
        if self.sphere and _checks.is_concrete(W0) and abs(float(np.sum(np.asarray(W0) ** 2)) - 1) > 1e-6:
            raise ValueError("the sphere flow needs ||W0||_F = 1")


def collapse_diagnostics(W) -> dict:
    r"""Collapse measures of `W` (`(..., d, h)`): `sigma_ratio` $\sigma_2/\sigma_1$ and
    `stable_rank` $\|W\|_F^2/\|W\|_2^2$ (both scale invariant), and `singular_values`
    (descending, `(..., min(d, h))`). For `h = 1` the ratio is 0."""
    s = jnp.linalg.svd(W, compute_uv=False)
    ratio = s[..., 1] / s[..., 0] if s.shape[-1] > 1 else jnp.zeros(s.shape[:-1], s.dtype)
    return {"sigma_ratio": ratio, "stable_rank": stable_rank(s * s), "singular_values": s}
