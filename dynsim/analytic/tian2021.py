r"""Closed-form results of Tian, Chen & Ganguli (2021), used as oracles and in figures.

Every function names its equation, with the paper's typos corrected (README, "Corrections"). Data enter through
$\lambda_s$ (eigenvalue of $X+X'$, `1 + sigma2` when isotropic) and
$\lambda_d$ (eigenvalue of $X$, `1` when isotropic); every formula in
the paper depends on τ and $\lambda_d$ only through $\tau\lambda_d$. For views that differ
(`docs/theory/views.md`) the stop-gradient results hold with $\lambda_s = \ell_{11}$ (the online view's
second moment) and $\lambda_d = \ell_{12}$ (the views' cross moment); the collapse results of the two
ablations name the view whose noise they read.
All functions but [`ema_tau_eq15`][dynsim.analytic.tian2021.ema_tau_eq15] (a NumPy quadrature of sampled trajectories) are plain
`jax.numpy` and work under `jit`/`vmap`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from dynsim import _checks


def _swapT(A):
    return jnp.swapaxes(A, -1, -2)


# --- Theorem 1 and Eq. 14: conserved quantities ------------------------------------------------

def balancing_matrix(W, W_p, alpha_p):
    r"""Theorem 1 (Eq. 5) left side: $W W^\top - \alpha_p^{-1} W_p^\top W_p$, shape `(n2, n2)`.

    Along Lemma 1's flow (any $X, X'$, any $W_a(t)$, non-symmetric $W_p$, the
    same η on W and W_p) it equals $e^{-2\eta t} C$ with C its value at $t=0$
    (the appendix restatement drops $\alpha_p^{-1}$: Tian et al. 2021).
    """
    return W @ _swapT(W) - _swapT(W_p) @ W_p / alpha_p


def balancing_residual(W, W_p, t, C0, alpha_p, eta):
    r"""Relative Theorem-1 residual $\|WW^\top - \alpha_p^{-1}W_p^\top W_p - e^{-2\eta t}C_0\|_F / \|C_0\|_F$.

    `W`, `W_p` may carry a leading time axis matching `t`.
    """
    t = jnp.asarray(t)[..., None, None]
    diff = balancing_matrix(W, W_p, alpha_p) - jnp.exp(-2 * eta * t) * C0
    return jnp.linalg.norm(diff, axis=(-2, -1)) / jnp.linalg.norm(C0)


def invariant_c(p, s, alpha_p):
    r"""Eq. 14 constant $c_j = s_j - p_j^2/\alpha_p$ (sign corrected; Tian et al. 2021)."""
    return s - p**2 / alpha_p


def parabola_s(p, t, c, alpha_p, eta):
    r"""Eq. 14: $s_j(t) = p_j(t)^2/\alpha_p + c_j e^{-2\eta t}$, valid for any τ(t)."""
    return p**2 / alpha_p + c * jnp.exp(-2 * eta * t)


# --- Fixed points -----------------------------------------------------------------

def parabola_rate(p, tau, eta, lambda_s, lambda_d=1.0):
    r"""Eq. 16, $\dot p$ on the invariant parabola $s = p^2/\alpha_p$:
    $p^2(\tau\lambda_d - \lambda_s p) - \eta p = -\lambda_s p (p - p^*_-)(p - p^*_+)$ (α_p cancels)."""
    return p**2 * (tau * lambda_d - lambda_s * p) - eta * p


def collapse_threshold_eta(tau, lambda_s, lambda_d=1.0):
    r"""Weight decay above which only the collapsed point survives (Obs. 5):
    $\eta_c = (\tau\lambda_d)^2 / (4\lambda_s)$, i.e. $\tau^2/(4(1+\sigma^2))$ when isotropic."""
    return (tau * lambda_d) ** 2 / (4 * lambda_s)


class ParabolaFixedPoints(NamedTuple):
    """`p_minus` (unstable, the basin boundary), `p_plus` (stable); `exists` is False above
    the collapse threshold, where both are NaN because no real root exists."""

    p_minus: object
    p_plus: object
    exists: object


def parabola_fixed_points(tau, eta, lambda_s, lambda_d=1.0) -> ParabolaFixedPoints:
    r"""Non-zero fixed points of Eq. 16:
    $p^*_\pm = [\tau\lambda_d \pm \sqrt{(\tau\lambda_d)^2 - 4\eta\lambda_s}]/(2\lambda_s)$.

    For $0 < \eta \le \eta_c$ a start on the parabola with $p(0) < p^*_-$ collapses and
    one with $p(0) > p^*_-$ converges to $p^*_+$, $s^* = (p^*_+)^2/\alpha_p$.
    """
    a = tau * lambda_d
    disc = a**2 - 4 * eta * lambda_s
    exists = disc >= 0
    root = jnp.sqrt(jnp.where(exists, disc, jnp.nan))
    return ParabolaFixedPoints((a - root) / (2 * lambda_s), (a + root) / (2 * lambda_s), exists)


class Eta0Limit(NamedTuple):
    """Limits of one mode at η = 0 and fixed τ; `guaranteed` is the sufficient
    non-collapse condition $c_j > 0$."""

    p_inf: object
    s_inf: object
    guaranteed: object


def eta0_limit(p0, s0, alpha_p, tau, lambda_s, lambda_d=1.0) -> Eta0Limit:
    r"""η = 0, fixed τ: if $c = s_0 - p_0^2/\alpha_p > 0$ the mode does not collapse and
    $p_\infty = \tau\lambda_d/\lambda_s$, $s_\infty = s_0 + (p_\infty^2 - p_0^2)/\alpha_p$
    (s moves along its conserved parabola). Where `guaranteed` is False the values are the limit
    only if the trajectory does not reach $s = 0$ first."""
    p_inf = jnp.broadcast_to(jnp.asarray(tau * lambda_d / lambda_s), jnp.shape(jnp.asarray(p0 + s0)))
    s_inf = s0 + (p_inf**2 - p0**2) / alpha_p
    return Eta0Limit(p_inf, s_inf, invariant_c(p0, s0, alpha_p) > 0)


def predictor_fixed_point(F, tau, eta, alpha_p, lambda_s, lambda_d=1.0):
    r"""Appendix B: for frozen PSD F the non-symmetrised Eq. 2 converges to
    $W_p^* = \tau\lambda_d F[\lambda_s F + (\eta/\alpha_p) I]^{-1}$ (symmetric).
    Needs $\eta > 0$ or F full-rank."""
    n = F.shape[-1]
    A = lambda_s * F + (eta / alpha_p) * jnp.eye(n, dtype=F.dtype)
    # F A^{-1} = (A^{-1} F)^T since both symmetric; solve instead of inverting
    return tau * lambda_d * _swapT(jnp.linalg.solve(A, F))


# --- Theorem 3: eigenspace alignment -----------------------------------------------------------

def commutator(F, W_p):
    r"""$L = [F, W_p] = F W_p - W_p F$."""
    return F @ W_p - W_p @ F


def theorem3_K(F, W_p, tau, eta, alpha_p, lambda_s, lambda_d=1.0):
    r"""Theorem 3: $K = \lambda_s[\tfrac{\alpha_p}{2}F + W_p^2 - \tfrac{\tau\lambda_d}{\lambda_s}W_p]
    + \tfrac32\eta I$, so that along Eqs. 7-8 $\dot L = -(KL + LK)$ and
    $\|L(t)\|_F \le e^{-2\lambda_0 t}\|L(0)\|_F$ when $\lambda_{\min}(K(t)) \ge \lambda_0 > 0$
    (the appendix's "max_t" should read "inf_t": Tian et al. 2021)."""
    n = F.shape[-1]
    eye = jnp.eye(n, dtype=F.dtype)
    return lambda_s * ((alpha_p / 2) * F + W_p @ W_p) - tau * lambda_d * W_p + 1.5 * eta * eye


def commutator_rate(F, W_p, tau, eta, alpha_p, lambda_s, lambda_d=1.0):
    r"""Right side of Theorem 3: $-(KL + LK)$."""
    K = theorem3_K(F, W_p, tau, eta, alpha_p, lambda_s, lambda_d)
    L = commutator(F, W_p)
    return -(K @ L + L @ K)


# --- EMA (Eq. 15) and collapse ablations ------------------------------------------------

def ema_tau_eq15(ts, p, beta):
    r"""Eq. 15 on the parabola with $\tau(0) = 0$:
    $\tau(t) = p(t)^{-1}\,\beta e^{-\beta t}\int_0^t p(t') e^{\beta t'}\,dt'$,
    evaluated by the cumulative trapezoid rule on the samples `p` at times `ts` (error
    $O(\Delta t^2)$). `ts`: `(T,)` starting at 0; `p`: `(T, ...)`. Returns `(T, ...)`
    (τ(0) = 0)."""
    ts = np.asarray(ts, float)
    p = np.asarray(p, float)
    _checks.check_finite("ts", ts)
    if ts[0] != 0.0:
        raise ValueError("ema_tau_eq15 needs samples starting at t = 0")
    shape = (-1,) + (1,) * (p.ndim - 1)
    integrand = p * np.exp(beta * (ts - ts[-1])).reshape(shape)  # scaled by e^{-beta t_end} for range
    dt = np.diff(ts).reshape(shape)
    cum = np.concatenate([np.zeros_like(p[:1]), np.cumsum(0.5 * dt * (integrand[1:] + integrand[:-1]), axis=0)])
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = beta * np.exp(-beta * (ts - ts[-1])).reshape(shape) * cum / p
    tau[0] = 0.0
    return tau


def no_predictor_solution(W0, t, sigma2, eta):
    r"""No predictor, stop-gradient: $W(t) = e^{-(\sigma^2+\eta)t} W(0)$ (collapse).

    The expected gradient of $\tfrac12\|Wx_1 - \mathrm{SG}(Wx_2)\|^2$ is $W(S_{11} - S_{21})$, and with
    $x_i = x + \xi_i$ (noise independent of $x$ and of each other) $S_{11} - S_{21} = N_1$, the
    online view's noise covariance; the target view's noise does not enter (`docs/theory/views.md`). So
    `sigma2` is the online view's noise variance (Tian et al.'s $\sigma^2$ when both views are alike; 0 for
    a clean online view, where nothing moves), or the matrix $N_1$ itself (symmetric PSD, shape
    `(n1, n1)`), for which $W(t) = W(0)\,e^{-(N_1+\eta I)t}$. `t` of shape `(T,)` gives `(T, n2, n1)`."""
    t = jnp.asarray(t)
    sigma2 = jnp.asarray(sigma2)
    if sigma2.ndim == 2:
        nu, V = jnp.linalg.eigh(sigma2)
        decay = jnp.exp(-(nu + eta) * t[..., None])  # (..., n1)
        return (W0 @ V * decay[..., None, :]) @ V.T
    return jnp.exp(-(sigma2 + eta) * t)[..., None, None] * W0


def no_stopgrad_bound(norm_W0, t, sigma2, eta):
    r"""Theorem 2: without stop-gradient, $\|W(t)\|_F \le e^{-(\sigma^2+\eta)t}\|W(0)\|_F$ for any (trainable)
    predictor.

    Along the flow $\tfrac{d}{dt}\|W\|_F^2 = -4\mathcal L - 2\eta\|W\|_F^2$ (the loss
    $\mathcal L = \tfrac12E\|W_pWx_1 - Wx_2\|^2$ is homogeneous of degree 2 in $W$), and
    $2\mathcal L \ge \lambda_{\min}(S_{2|1})\|W\|_F^2$ with $S_{2|1} = S_{22} - S_{21}S_{11}^{+}S_{12}$
    the covariance of the target view left after regressing it on the online view ([`no_stopgrad_rate`][dynsim.analytic.tian2021.no_stopgrad_rate]).
    `sigma2` is any lower bound on $\lambda_{\min}(S_{2|1})$: the target view's noise variance
    $\sigma_2^2$ is one (Tian et al.'s $X' = \sigma^2 I$; exact for a clean online view and
    $W_p = I$)."""
    return jnp.exp(-(sigma2 + eta) * jnp.asarray(t)) * norm_W0


def no_stopgrad_rate(S11, S12, S22):
    r"""The largest rate that [`no_stopgrad_bound`][dynsim.analytic.tian2021.no_stopgrad_bound] can use for views with second moments
    $S_{11}, S_{12}, S_{22}$: $\lambda_{\min}(S_{22} - S_{21}S_{11}^{+}S_{12})$, since
    $E\|W_pWx_1 - Wx_2\|^2 \ge E\|W(x_2 - S_{21}S_{11}^{+}x_1)\|^2$ for every $W_p$. Isotropic views
    with the same noise $\sigma^2$: $\sigma^2(2+\sigma^2)/(1+\sigma^2)$ (at least the paper's
    $\sigma^2$); a clean online view: $\sigma^2$."""
    S11, S12, S22 = jnp.asarray(S11), jnp.asarray(S12), jnp.asarray(S22)
    cond = S22 - S12.T @ jnp.linalg.pinv(S11, hermitian=True) @ S12
    return jnp.linalg.eigvalsh(0.5 * (cond + cond.T))[0]
