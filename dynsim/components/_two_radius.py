r"""The two-radius form of the expected cosine (`docs/theory/cosine_expectation.md`).

For jointly Gaussian $(p, z)$, $1/\|p\|$ and $1/\|z\|$ become Gaussian tilts
($\|y\|^{-1} = \pi^{-1/2}\int_0^\infty s^{-1/2}e^{-s\|y\|^2}ds$), and

$$
E[\cos(p, z)] = \frac1\pi\int_0^\infty\!\!\int_0^\infty (st)^{-1/2}\,
\det(I + 2CQ)^{-1/2}\,\mathrm{tr}\big(\tilde C_{pz}\big)\,ds\,dt,\qquad Q = \mathrm{diag}(sI, tI),
$$

with $C$ the covariance of $(p, z)$ and $\tilde C = C(I + 2QC)^{-1}$ the tilted one. Two
evaluations share the radial rule ([`radial_rule`][dynsim.components.radial_rule]) and a one-pass hand-written gradient:

* [`mode_cosine_expectation`][dynsim.components.mode_cosine_expectation]: aligned eigenmodes, one 2x2 block per mode, $O(M)$ per node pair;
* [`network_cosine_expectation`][dynsim.components.network_cosine_expectation]: general $M\times M$ blocks $C_{pp}, C_{pz}, C_{zz}$; one
  eigendecomposition of $C_{pp}$ serves every node $s$, one of the tilted $K_s$ per node
  $s$, after which every $t$ node is $O(M)$.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_vjp
def _two_radius(a, b, d, sigma, weights):
    """The boxed integral of the theory page for blocks `(a, b, d)` (shape `(M,)`) under the rule."""
    _, P, S = _two_radius_parts(a, b, d, sigma)
    w = weights / jnp.sqrt(jnp.pi)
    return w @ (P * S) @ w


def _two_radius_parts(a, b, d, sigma):
    st = sigma[:, None] * sigma[None, :]
    inv = 1 / (1 + (2 * a)[:, None, None] * sigma[:, None] + (2 * d)[:, None, None] * sigma[None, :]
               + (4 * (a * d - b * b))[:, None, None] * st)  # 1/Delta_m, shape (M, K, K); s on axis 1, t on 2
    P = jnp.prod(jnp.sqrt(inv), axis=0)  # each factor <= 1: no overflow
    S = jnp.einsum("m,mij->ij", b, inv)
    return inv, P, S


def _two_radius_fwd(a, b, d, sigma, weights):
    r"""Value and, in one pass, the contractions its gradient needs: with $f = PS$,
    $P = \prod_m\Delta_m^{-1/2}$, $S = \sum_m b_m/\Delta_m$, the derivative
    $\partial f/\partial\Delta_m = G_m = -P\Delta_m^{-1}(S/2 + b_m/\Delta_m)$ and
    $\partial\Delta_m/\partial(a_m, d_m, b_m) = (2s + 4std_m,\ 2t + 4sta_m,\ -8stb_m)$."""
    inv, P, S = _two_radius_parts(a, b, d, sigma)
    w, ws = weights / jnp.sqrt(jnp.pi), weights * sigma / jnp.sqrt(jnp.pi)
    value = w @ (P * S) @ w
    G = -P * inv * (0.5 * S + b[:, None, None] * inv)
    # contract one node axis at a time: the weight products w_i s_i w_j t_j overflow float32 in the far corners
    G_w, G_ws = G @ w, G @ ws  # (M, K): summed over t's nodes
    g_s, g_t, g_st = G_w @ ws, G_ws @ w, G_ws @ ws
    g_b = ((inv * P) @ w) @ w - 8 * b * g_st
    return value, (2 * g_s + 4 * d * g_st, g_b, 2 * g_t + 4 * a * g_st, sigma, weights)


def _scaled_gradients(res, ct):
    """The backward pass of both two-radius forms: their forward passes store the three block gradients."""
    g1, g2, g3, sigma, weights = res
    return ct * g1, ct * g2, ct * g3, jnp.zeros_like(sigma), jnp.zeros_like(weights)


_two_radius.defvjp(_two_radius_fwd, _scaled_gradients)


def mode_cosine_expectation(q, w_bar, l11, l12, l22, sigma, weights):
    r"""$E[\cos(p, z)]$ for $p_m = q_mu_{1,m}$, $z_m = \bar w_mu_{2,m}$ with independent Gaussian
    pairs $(u_{1,m}, u_{2,m})$ of covariance $\begin{pmatrix}\ell_{11}&\ell_{12}\\\ell_{12}&\ell_{22}
    \end{pmatrix}_m$ (the two-radius integral, `docs/theory/cosine_expectation.md`):

    $$
    E[\cos(p, z)] = \frac1\pi\int_0^\infty\!\!\int_0^\infty (st)^{-1/2}
    \prod_m \Delta_m^{-1/2}\sum_m\frac{b_m}{\Delta_m}\,ds\,dt,\qquad
    \Delta_m = 1 + 2a_ms + 2d_mt + 4st(a_md_m - b_m^2),
    $$

    with $a = q^2\ell_{11}$, $b = q\bar w\ell_{12}$, $d = \bar w^2\ell_{22}$, from
    $\|y\|^{-1} = \pi^{-1/2}\int_0^\infty s^{-1/2}e^{-s\|y\|^2}ds$ and the tilted Gaussian moment
    $E[p_mz_me^{-s\|p\|^2-t\|z\|^2}] = b_m\Delta_m^{-1}\prod_j\Delta_j^{-1/2}$. The blocks are first
    scaled to $\sum a = \sum d = 1$ (the cosine is scale-free), then `(sigma, weights)` of
    [`radial_rule`][dynsim.components.radial_rule] carry both integrals. `q`, `w_bar`: shape `(M,)` (`vmap` for
    batches). Its gradient is written out (one pass, no stored node arrays) rather than traced."""
    a, b, d = q * q * l11, q * w_bar * l12, w_bar * w_bar * l22
    A, D = jnp.sum(a), jnp.sum(d)
    return _two_radius(a / A, b / jnp.sqrt(A * D), d / D, sigma, weights)


def _swap(A):
    return jnp.swapaxes(A, -1, -2)


@jax.custom_vjp
def _two_radius_matrix(Cpp, Cpz, Czz, sigma, w):
    """The integral of the module docstring for normalised blocks; `w` includes the $\\pi^{-1/2}$."""
    return _two_radius_matrix_fwd(Cpp, Cpz, Czz, sigma, w)[0]


def _two_radius_matrix_fwd(Cpp, Cpz, Czz, sigma, w):
    r"""Value and gradient in one pass (`docs/theory/cosine_expectation.md`, network level). Per node
    $s$: $A = I + 2sC_{pp}$, $X = A^{-1}C_{pz}$, $K = C_{zz} - 2sC_{pz}^\top X$ (the
    $s$-tilted covariance of $z$), $\delta = \det A^{-1/2}$; with $K = V\mathrm{diag}(\kappa)V^\top$,
    $r_t = 1/(1 + 2t\kappa)$ and $H = V^\top XV$ the inner integral is
    $\varphi = \sum_t w_t d_t\tau_t$, $d_t = \prod_k r_{t,k}^{1/2}$, $\tau_t = \sum_k H_{kk}r_{t,k}$.
    Its gradients are $\partial\varphi/\partial X = V\mathrm{diag}(\sum_t w_td_tr_t)V^\top$ and
    $\partial\varphi/\partial K = V[\mathrm{diag}(-\sum_t w_td_tt\tau_tr_t) + H^\top\circ\sum_t(-2w_td_tt)\,r_tr_t^\top]V^\top$
    (no eigenvalue differences: exact at degenerate $K$, e.g. isotropic states); the chain through
    $A, X, K$ is written out below."""
    M = Cpp.shape[-1]
    alpha, U = jnp.linalg.eigh(Cpp)  # one factorisation for every s: A = U diag(1 + 2 s alpha) U^T
    a_s = 1 / (1 + 2 * sigma[:, None] * jnp.maximum(alpha, 0.0)[None, :])  # (S, M)
    delta = jnp.prod(jnp.sqrt(a_s), axis=1)  # det(A)^{-1/2}, each factor <= 1
    B = U.T @ Cpz  # rows b_m: X = A^{-1}C_pz = U diag(a_s) B and C_pz^T X = B^T diag(a_s) B
    n_s = sigma.shape[0]
    X = ((U[None] * a_s[:, None, :]).reshape(n_s * M, M) @ B).reshape(n_s, M, M)
    outer = (B[:, :, None] * B[:, None, :]).reshape(M, M * M)  # b_m b_m^T: every K_s from one 2-D product
    K = Czz - ((2 * sigma[:, None] * a_s) @ outer).reshape(n_s, M, M)
    kappa, V = jnp.linalg.eigh(K)
    kappa = jnp.maximum(kappa, 0.0)  # K is a covariance; clip round-off
    rT = 1 / (1 + 2 * sigma[None, None, :] * kappa[:, :, None])  # (S, M, T)
    d = jnp.sqrt(jnp.prod(rT, axis=1))  # (S, T); underflow to 0 only where the weight cannot make it count
    H = _swap(V) @ X @ V
    tau = jnp.einsum("sm,smt->st", jnp.diagonal(H, axis1=1, axis2=2), rT)  # (S, T)
    wd = w[None, :] * d
    phi = jnp.sum(wd * tau, axis=1)  # (S,)
    ws = w * delta
    value = ws @ phi
    wdt = wd * sigma[None, :]
    # one contraction over t: rows 0..M-1 give sum_t c_t r_t r_t^T, row M sum_t w d r_t, row M+1 the diagonal term
    # (built with t last and multiplied by r laid out with t first: the batched product's fastest layout)
    left = jnp.concatenate([-2 * wdt[:, None, :] * rT, wd[:, None, :], (-wdt * tau)[:, None, :]], axis=1)
    sums = left @ (1 / (1 + 2 * sigma[None, :, None] * kappa[:, None, :]))  # (S, M + 2, M)
    g_X = (V * sums[:, M:M + 1, :]) @ _swap(V)  # scales V's columns
    eye = jnp.eye(M, dtype=Cpp.dtype)
    inner = _swap(H) * sums[:, :M, :] + eye * sums[:, M + 1:, :]
    g_K = V @ inner @ _swap(V)
    g_K = 0.5 * (g_K + _swap(g_K))
    # chain: dK = dCzz - 2s(dCpz^T X + Cpz^T dX), dX = A^{-1}(dCpz - 2s dCpp X), d delta = -s delta tr(A^{-1} dCpp);
    # the weighted sums over s are single (M, S M) @ (S M, M) products
    s = sigma[:, None, None]
    Ainv = (U * a_s[:, None, :]) @ U.T
    AgX = Ainv @ (g_X - 2 * s * (Cpz @ g_K))
    ws3 = ws[:, None, None]

    def s_sum(A, B):  # sum_s A_s @ B_s
        return jnp.swapaxes(A, 0, 1).reshape(M, -1) @ B.reshape(-1, M)

    g_zz = jnp.sum(ws3 * g_K, axis=0)
    g_pz = jnp.sum(ws3 * AgX, axis=0) + s_sum(-2 * ws3 * s * X, g_K)
    g_pp = (U * (-(ws * sigma * phi) @ a_s)) @ U.T + s_sum(-2 * ws3 * s * AgX, _swap(X))
    return value, (0.5 * (g_pp + g_pp.T), g_pz, g_zz, sigma, w)


_two_radius_matrix.defvjp(_two_radius_matrix_fwd, _scaled_gradients)


def network_cosine_expectation(P, W_t, S11, S12, S22, sigma, weights):
    r"""$E[\cos(Px_1, W_tx_2)]$ for Gaussian views with $E[x_1x_1^\top] = S_{11}$,
    $E[x_1x_2^\top] = S_{12}$, $E[x_2x_2^\top] = S_{22}$ (the two-radius integral of the module
    docstring with $C_{pp} = PS_{11}P^\top$, $C_{pz} = PS_{12}W_t^\top$, $C_{zz} = W_tS_{22}W_t^\top$,
    scaled to unit traces). `P` (the online map to the prediction, $W_pW$) and `W_t`: shape
    `(M, n1)`; `(sigma, weights)` from [`radial_rule`][dynsim.components.radial_rule]. Differentiable in `P`,
    `W_t` and the moments; the gradient is written out (one pass, no stored node arrays)."""
    Cpp, Cpz, Czz = P @ S11 @ P.T, P @ S12 @ W_t.T, W_t @ S22 @ W_t.T
    a, d = jnp.trace(Cpp), jnp.trace(Czz)
    return _two_radius_matrix(Cpp / a, Cpz / jnp.sqrt(a * d), Czz / d, sigma, weights / jnp.sqrt(jnp.pi))
