r"""Riemannian gradient descent on the Grassmannian (Esser et al. 2023), batched over seeds.

One step, for $L(W) = -\tfrac12\operatorname{tr}(W^\top AW)$ with $W^\top W = I$:

1. Euclidean gradient $\nabla L = -AW$;
2. descent direction $\xi = -(I - WW^\top)\nabla L = AW - W(W^\top AW)$ (Grassmann = Stiefel gradient
   for trace-quadratic losses);
3. $W_{k+1} = R_{W_k}(\eta\,\xi_k)$ with a retraction $R$.

| `method` | update |
|---|---|
| `"qr"` | $\mathrm{qf}(W + \eta\xi)$, signs fixed so $\mathrm{diag}R > 0$ |
| `"polar"` | $(W+\eta\xi)[(W+\eta\xi)^\top(W+\eta\xi)]^{-1/2} = U_YV_Y^\top$ (thin SVD) |
| `"exp"` | Grassmann exponential map (Edelman, Arias & Smith 1998): $\eta\xi = U\Sigma V^\top$, $WV\cos\Sigma V^\top + U\sin\Sigma V^\top$, then $\mathrm{qf}$ against round-off |
| `"subspace_iteration"` | $\mathrm{qf}((I + \eta A)W)$ (not a retraction of $\xi$; ~5x the error) |
| `"exact"` | $\mathrm{qf}(e^{\eta A}W)$: spans the exact flow's subspace at $t = \eta k$ for any $\eta$ |

The retractions agree with the geodesic to second order per step, so RGD is an explicit Euler scheme for
Oja's flow: global error $O(\eta)$ at fixed $t = \eta k$ (Esser et al. 2023: about
$0.12\,\eta$ at T = 6). Empirical stability: $\eta(\lambda_1-\lambda_d)\lesssim1$.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks
from dynsim.grassmann._linalg import check_problem, eigh_desc, qf, qf_cholesky, random_stiefel
from dynsim.parallel import pad_and_shard
from dynsim.solvers import DEFAULTS, Solution, Status, check_on_failure, handle_failure, iterate

RETRACTIONS = ("qr", "polar", "exp")


def qr_retraction(W, V):
    r"""$R_W(V) = \mathrm{qf}(W + V)$, sign-fixed (Cholesky QR: exact to round-off for a tangent `V`)."""
    return qf_cholesky(W + V)


def polar_retraction(W, V):
    r"""$R_W(V) = Y(Y^\top Y)^{-1/2}$, $Y = W + V$, with the inverse square root from the
    eigen-decomposition of the $h\times h$ matrix $Y^\top Y$ (equals $U_YV_Y^\top$ of the thin SVD)."""
    Y = W + V
    mu, E = jnp.linalg.eigh(Y.T @ Y)
    return Y @ ((E * jax.lax.rsqrt(mu)[None, :]) @ E.T)


def exp_retraction(W, V):
    r"""Grassmann exponential map for a horizontal `V` ($W^\top V = 0$): thin SVD $V = U\Sigma V_r^\top$,
    $W V_r\cos\Sigma V_r^\top + U\sin\Sigma V_r^\top$ (Edelman, Arias & Smith 1998, Thm 2.3), followed by
    `qf_cholesky` to remove round-off (the correction is $O(\varepsilon)$)."""
    U, S, Vt = jnp.linalg.svd(V, full_matrices=False)
    Wn = (W @ Vt.T) * jnp.cos(S)[None, :] @ Vt + (U * jnp.sin(S)[None, :]) @ Vt
    return qf_cholesky(Wn)


def stiefel_gradient(W, G):
    r"""Riemannian gradient on the Stiefel manifold (embedded metric): $G - W\operatorname{sym}(W^\top G)$."""
    WtG = W.T @ G
    return G - W @ (0.5 * (WtG + WtG.T))


def grassmann_gradient(W, G):
    r"""Horizontal (Grassmann) gradient $(I - WW^\top)G$. Equal to `stiefel_gradient` when
    $W^\top G$ is symmetric, as for every trace-quadratic loss ($G = -AW$)."""
    return G - W @ (W.T @ G)


def descent_direction(W, A):
    r"""$\xi = -(I - WW^\top)\nabla L = AW - W(W^\top AW)$ (the right-hand side of Oja's flow)."""
    return grassmann_gradient(W, A @ W)


def _retracted(retraction):
    """A step that moves along the Grassmann gradient and retracts with `retraction`."""
    def step(W, lam, lr):
        return retraction(W, lr * grassmann_gradient(W, lam[:, None] * W))
    return step


#: one update per method in A's eigenbasis (`rgd_step`): the retractions of a gradient step, subspace
#: iteration $\mathrm{qf}(W + \eta AW)$, and the exact map $\mathrm{qf}(e^{\eta A}W)$
STEPS = {"qr": _retracted(qr_retraction), "polar": _retracted(polar_retraction), "exp": _retracted(exp_retraction),
         "subspace_iteration": lambda W, lam, lr: qf_cholesky(W + lr * (lam[:, None] * W)),
         "exact": lambda W, lam, lr: qf(jnp.exp(lr * lam)[:, None] * W)}


METHODS = tuple(STEPS)


def rgd_step(W, lam, lr, method: str = "qr"):
    r"""One update of `W` (`(d, h)`) by `method` (module table) **in the eigenbasis of A**, where
    $A = \mathrm{diag}(\lambda)$ (`lam` `(d,)`). Every method is equivariant under $W\mapsto U^\top W$
    ($\mathrm{qf}(U^\top Y) = U^\top\mathrm{qf}(Y)$, likewise polar and exp), so this is the input-basis update at
    $O(dh^2)$ instead of $O(d^2h)$ per step (`tests/test_grassmann.py` checks the equivalence)."""
    return STEPS[method](W, lam, lr)


@partial(jax.jit, static_argnames=("method", "n_saves"))
def rgd_core(A, W0, lr, every, method: str, n_saves: int):
    r"""Pure, vmappable core: `n_saves * every` steps of `method` from `W0`, returning the saved frames
    `(n_saves + 1, d, h)` (the start first) in the input basis. It runs in A's eigenbasis (`rgd_step`):
    one `eigh` per call and a rotation back per save. `every` is traced: new step counts do not recompile."""
    lr = jnp.asarray(lr, W0.dtype)
    lam, U = eigh_desc(A)

    sol = iterate(lambda w, _: rgd_step(w, lam, lr, method), U.T @ W0, n_saves, every, lr,
                  save=lambda w: U @ w, first=W0)
    return sol.ys


def riemannian_gd(A, W0, lr, n_steps: int, *, method: str = "qr", n_saves: int | None = None,
                  on_failure: str = DEFAULTS.on_failure) -> Solution:
    r"""Riemannian GD (or the exact integrator) from `W0` for `n_steps` steps of size `lr`.

    Args:
        A: symmetric dynamics matrix `(d, d)`, or a batch `(B, d, d)`.
        W0: orthonormal start `(d, h)`, or a batch `(B, d, h)` (e.g. [`random_stiefel`][dynsim.grassmann.random_stiefel] with `batch`):
            batched inputs are vmapped in one compiled call.
        lr: step size $\eta$ (ODE time per step), a float or `(B,)`.
        method: `"qr"` (default), `"polar"`, `"exp"`, `"subspace_iteration"` or `"exact"`.
        n_saves: saved frames after the start (must divide `n_steps`; default 1).
    Returns:
        [`Solution`][dynsim.solvers.Solution] with `ts` $=\eta k$ `(n_saves+1,)` and `ys` the frames
        `(n_saves+1, d, h)`, or `(B, n_saves+1, d, h)` with `time_axis=1` for a batch.
    Raises:
        ValueError: bad method, non-symmetric `A`, non-orthonormal `W0`, `h > d`, `lr <= 0`, bad counts.
        SolveError: a frame became non-finite (`on_failure="raise"`); only a huge `lr` does this, and
            convergence needs roughly $\eta(\lambda_1 - \lambda_d)\lesssim 1$ (Esser et al. 2023).
    """
    _checks.check_choice("method", method, METHODS)
    check_on_failure(on_failure)
    check_problem(A, W0)
    n_steps, n_saves = _checks.check_step_counts(lr, n_steps, n_saves)
    A, W0 = jnp.asarray(A), jnp.asarray(W0)
    dtype = jnp.result_type(A.dtype, W0.dtype, float)
    A, W0 = A.astype(dtype), W0.astype(dtype)
    lr = jnp.asarray(lr, dtype)
    axes = (0 if A.ndim == 3 else None, 0 if W0.ndim == 3 else None, 0 if lr.ndim == 1 else None)
    every = jnp.asarray(n_steps // n_saves, jnp.int32)

    def core(A, W0, lr):
        return rgd_core(A, W0, lr, every, method=method, n_saves=n_saves)

    batched = any(a is not None for a in axes)
    if batched:  # vmap over the batch, spread over jax.devices() (dynsim.parallel)
        (A_s, W0_s, lr_s), n = pad_and_shard([A, W0, lr], [a is not None for a in axes])
        Ws = jax.vmap(core, in_axes=axes)(A_s, W0_s, lr_s)[:n]
    else:
        Ws = core(A, W0, lr)
    finite = jnp.all(jnp.isfinite(Ws), axis=tuple(range(Ws.ndim - 3, Ws.ndim)))
    status = jnp.where(finite, Status.SUCCESS, Status.NONFINITE).astype(jnp.int32)
    k = (n_steps // n_saves) * jnp.arange(n_saves + 1, dtype=dtype)
    ts = lr[..., None] * k if lr.ndim == 1 else jnp.broadcast_to(lr * k, Ws.shape[:-2])
    sol = Solution(ts=ts, ys=Ws, status=status, event_time=jnp.full(status.shape, jnp.inf, dtype),
                   n_steps=jnp.full(status.shape, n_steps, jnp.int32), n_rejected=jnp.zeros(status.shape, jnp.int32),
                   n_rhs=jnp.full(status.shape, n_steps, jnp.int32), time_axis=1 if batched else 0)
    return handle_failure(sol, on_failure)


def riemannian_gd_widths(A, widths, seeds, lr, n_steps: int, *, method: str = "qr", n_saves: int | None = None,
                         dtype=None) -> dict:
    r"""Runs for several widths `h` (each a separate shape, hence one compile per width) and seeds
    (vmapped within a width): `{h: Solution}` with `ys` `(len(seeds), n_saves+1, d, h)`. The start of
    seed `s` at width `h` is [`random_stiefel`][dynsim.grassmann.random_stiefel] of `fold_in(key(s), h)`."""
    d = np.shape(A)[-1]
    out = {}
    for h in widths:
        W0 = jnp.stack([random_stiefel(jax.random.fold_in(jax.random.key(int(s)), int(h)), d, int(h), dtype=dtype)
                        for s in seeds])
        out[int(h)] = riemannian_gd(A, W0, lr, n_steps, method=method, n_saves=n_saves)
    return out
