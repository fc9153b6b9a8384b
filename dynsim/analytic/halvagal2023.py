r"""Closed-form results for closed-form-predictor SSL (Halvagal, Laborieux & Zenke 2023).

Derived from the losses as the authors implement them and checked numerically by the tests.
Setting: $\lambda = c^\alpha$ predictor, SimSiam target, data $k = 1+\sigma^2$
($\lambda_s/\lambda_d$ per mode with $\lambda_d = 1$; for views that differ the Euclidean results
hold with $k = \ell_{11}/\ell_{12}$, `docs/theory/views.md`), weight decay `wd` in ODE units
([`dynsim.units`][dynsim.units]), time $t = \mathrm{lr}\cdot$ steps. All functions are `jax.numpy`.
"""

from __future__ import annotations

import jax.numpy as jnp

from dynsim.analytic import tian2021 as _tian


def euclidean_fixed_points(k, wd=0.0):
    r"""Non-zero fixed points of $\dot\lambda \propto \lambda^2(1-k\lambda) - \mathrm{wd}\,\lambda$:
    $\lambda_\pm = [1 \pm \sqrt{1-4k\,\mathrm{wd}}]/(2k)$. $\lambda_+$ is stable;
    modes starting below $\lambda_-$ collapse. `wd = 0` gives $\lambda_+ = 1/k$, $\lambda_- = 0$.
    The same quadratic as Tian et al.'s Eq. 16 with τ = 1 ([`dynsim.analytic.tian2021.parabola_fixed_points`][dynsim.analytic.tian2021.parabola_fixed_points])."""
    return _tian.parabola_fixed_points(1.0, wd, k)


def iso_fixed_point(k, wd=0.0):
    r"""Euclidean IsoLoss fixed point $\lambda^* = (1-\mathrm{wd})/k$; zero is unstable for wd < 1."""
    return (1.0 - wd) / k


def c_from_lambda(lam, alpha):
    r"""$c = \lambda^{1/\alpha}$ for the `power` predictor $\lambda = c^\alpha$."""
    return lam ** (1.0 / alpha)


def cosine_end_level(c0):
    r"""Cosine loss, no weight decay: $\mathrm{tr}\,C$ is conserved and the fixed point is
    isotropic, so every $c_m \to \mathrm{tr}\,C_0/M$. `c0`: `(..., M)`."""
    return jnp.mean(c0, axis=-1)


def cosine_iso_end_level(c0, alpha):
    r"""Cosine IsoLoss: $\sum c^{1+\alpha}$ is conserved, so $c_m \to (\sum c_0^{1+\alpha}/M)^{1/(1+\alpha)}$."""
    return jnp.mean(c0 ** (1 + alpha), axis=-1) ** (1 / (1 + alpha))


def euclidean_escape_time(lam, lam0, k, alpha):
    r"""Exact implicit solution of $\dot\lambda = 2\alpha\lambda^2(1-k\lambda)$, wd = 0:
    $2\alpha t = [-1/\lambda + k\ln(\lambda/|1-k\lambda|)]_{\lambda_0}^{\lambda}$, valid while
    $\lambda$ stays on one side of $1/k$. Small modes escape in $t \approx 1/(2\alpha\lambda_0)$."""

    def F(x):
        return -1.0 / x + k * jnp.log(x / jnp.abs(1.0 - k * x))

    return (F(lam) - F(lam0)) / (2 * alpha)


def iso_trajectory(t, lam0, k, alpha):
    r"""Euclidean IsoLoss, wd = 0: logistic $\lambda(t) = \lambda^*/[1 + (\lambda^*/\lambda_0 - 1)e^{-2\alpha t}]$,
    $\lambda^* = 1/k$; escape time $\sim \ln(1/\lambda_0)/(2\alpha)$."""
    lam_star = 1.0 / k
    return lam_star / (1.0 + (lam_star / lam0 - 1.0) * jnp.exp(-2 * alpha * t))


def iso_escape_time(lam, lam0, k, alpha):
    r"""Inverse of [`iso_trajectory`][dynsim.analytic.halvagal2023.iso_trajectory]: time for $\lambda_0 \to \lambda$ ($\lambda < 1/k$)."""
    lam_star = 1.0 / k
    return jnp.log((lam_star / lam0 - 1.0) / (lam_star / lam - 1.0)) / (2 * alpha)


def discrete_stability_bound(alpha, k, iso=False):
    r"""Largest stable learning rate of the GD map at $\lambda^*$: the map's slope there is
    $1 - 2\alpha\,\mathrm{lr}/k$ (Euclidean) or $1 - 2\alpha\,\mathrm{lr}$ (IsoLoss), so stable iff
    $\mathrm{lr} < k/\alpha$ or $\mathrm{lr} < 1/\alpha$."""
    return 1.0 / alpha if iso else k / alpha
