r"""Trace-form SSL losses and the dynamics matrix :math:`A` (esser2023.md §1).

Every loss here is quadratic in the encoder :math:`W\in\mathbb{R}^{d\times h}`
(:math:`f_W(x) = W^\top x`) and is written :math:`L(W) = -\operatorname{tr}(W^\top M W)` with
:math:`M` symmetric, so :math:`\nabla L = -2MW = -AW` with the **dynamics matrix**
:math:`A := \texttt{GRADIENT\_FACTOR}\cdot M = 2M`. Continuous time is :math:`t = \eta k`
(:mod:`dynsim.units`). esser2023.md §0 flags the paper's constants as unconfirmed: a ½ or
:math:`1/n` placed elsewhere rescales :math:`A` (hence time) by a constant; change
:data:`GRADIENT_FACTOR` in this one place if the paper's convention differs.

==================  =======================================================  ==================================
``loss``            per-sample loss (data columns :math:`x_i, x_i^+, x_i^-`)  :math:`M` (:math:`A = 2M`)
==================  =======================================================  ==================================
``"contrastive"``   :math:`-\frac1n\sum_i f(x_i)^\top[f(x_i^+) - f(x_i^-)]`   :math:`\operatorname{sym}(XX^{+\top} - XX^{-\top})/n`
``"alignment"``     :math:`-\frac1n\sum_i f(x_i)^\top f(x_i^+)`                :math:`\operatorname{sym}(XX^{+\top})/n`
``"mse"``           :math:`\frac1n\sum_i\|f(x_i) - f(x_i^+)\|^2`                :math:`-(X - X^+)(X - X^+)^\top/n`
==================  =======================================================  ==================================

Population versions replace the sample moments by :math:`E[xx^{+\top}]`, :math:`E[xx^{-\top}]` and
:math:`D = E[(x - x^+)(x - x^+)^\top]`. With centred negatives independent of :math:`x`,
:math:`E[xx^{-\top}] = 0` and the contrastive and alignment losses coincide in population.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from dynsim import _checks

GRADIENT_FACTOR = 2.0  #: A = GRADIENT_FACTOR * M for L(W) = -tr(W^T M W) (esser2023.md §1, "unified convention")
LOSSES = ("contrastive", "alignment", "mse")


def sym(M):
    r""":math:`(M + M^\top)/2` over the last two axes."""
    return 0.5 * (M + jnp.swapaxes(M, -1, -2))


def _check_views(loss, X, X_pos, X_neg):
    _checks.check_choice("loss", loss, LOSSES)
    for name, Z in (("X", X), ("X_pos", X_pos)) + ((("X_neg", X_neg),) if X_neg is not None else ()):
        if np.ndim(Z) != 2:
            raise ValueError(f"{name} must be a (d, n) matrix of data columns, got shape {np.shape(Z)}")
        _checks.check_finite(name, Z)
        if np.shape(Z) != np.shape(X):
            raise ValueError(f"{name} must have the shape of X {np.shape(X)}, got {np.shape(Z)}")
    if loss == "contrastive" and X_neg is None:
        raise ValueError("the contrastive loss needs negatives X_neg")


def dynamics_matrix(loss: str, X, X_pos, X_neg=None):
    r"""The dynamics matrix :math:`A = 2M` of a trace-form loss from a dataset (esser2023.md §1 table).

    Args:
        loss: ``"contrastive"``, ``"alignment"`` or ``"mse"``.
        X, X_pos, X_neg: data, positive views and negatives as columns, each ``(d, n)``
            (``X_neg`` only for ``"contrastive"``).
    Returns:
        Symmetric ``(d, d)`` matrix :math:`A` with :math:`\nabla L(W) = -AW`.
    """
    _check_views(loss, X, X_pos, X_neg)
    X, X_pos = jnp.asarray(X), jnp.asarray(X_pos)
    n = X.shape[1]
    if loss == "mse":
        R = X - X_pos
        M = -(R @ R.T) / n
    else:
        cross = X @ X_pos.T
        if loss == "contrastive":
            cross = cross - X @ jnp.asarray(X_neg).T
        M = sym(cross) / n
    return GRADIENT_FACTOR * M


def population_dynamics_matrix(loss: str, cross_pos=None, cross_neg=None, diff_cov=None):
    r"""Population :math:`A`: ``2 sym(cross_pos - cross_neg)`` (contrastive), ``2 sym(cross_pos)``
    (alignment) or ``-2 diff_cov`` (mse), with ``cross_pos`` :math:`=E[xx^{+\top}]`, ``cross_neg``
    :math:`=E[xx^{-\top}]` (default 0: independent centred negatives) and ``diff_cov``
    :math:`=E[(x-x^+)(x-x^+)^\top]`, all ``(d, d)``. See :func:`additive_augmentation_moments`."""
    _checks.check_choice("loss", loss, LOSSES)
    if loss == "mse":
        if diff_cov is None:
            raise ValueError("the mse loss needs diff_cov = E[(x - x+)(x - x+)^T]")
        _checks.check_psd("diff_cov", diff_cov, rtol=1e-8)
        return -GRADIENT_FACTOR * jnp.asarray(diff_cov)
    if cross_pos is None:
        raise ValueError(f"the {loss} loss needs cross_pos = E[x x+^T]")
    _checks.check_square("cross_pos", cross_pos)
    _checks.check_finite("cross_pos", cross_pos)
    M = jnp.asarray(cross_pos)
    if loss == "contrastive" and cross_neg is not None:
        _checks.check_shape("cross_neg", cross_neg, np.shape(cross_pos))
        _checks.check_finite("cross_neg", cross_neg)
        M = M - jnp.asarray(cross_neg)
    return GRADIENT_FACTOR * sym(M)


def additive_augmentation_moments(data_cov, noise_cov) -> dict:
    r"""Moments for :math:`x\sim N(0,\Sigma)`, :math:`x^+ = x + \epsilon`, :math:`\epsilon\sim N(0,\Sigma_\epsilon)`
    and independent negatives: ``cross_pos`` :math:`=\Sigma`, ``cross_neg`` :math:`=0`,
    ``diff_cov`` :math:`=\Sigma_\epsilon` (keyword arguments of :func:`population_dynamics_matrix`)."""
    _checks.check_psd("data_cov", data_cov, rtol=1e-8)
    _checks.check_psd("noise_cov", noise_cov, rtol=1e-8)
    data_cov = jnp.asarray(data_cov)
    return {"cross_pos": data_cov, "cross_neg": jnp.zeros_like(data_cov), "diff_cov": jnp.asarray(noise_cov)}


def trace_loss(W, A):
    r"""The loss :math:`L(W) = -\tfrac12\operatorname{tr}(W^\top A W)` (``= -tr(W^T M W)``) for ``W`` of
    shape ``(..., d, h)`` and ``A`` ``(d, d)`` (or batched alike); returns shape ``(...)``."""
    return -0.5 * jnp.sum(W * (A @ W), axis=(-2, -1))


def protocol_data(seed: int = 0, d: int = 30, n: int = 2000, noise: float = 0.3, noise_cov=None):
    r"""esser2023.md §5.2's synthetic dataset: :math:`x\sim N(0,\Sigma)`, :math:`\Sigma = Q\,\mathrm{diag}(1/(1+i))Q^\top`
    (``i = 0..d-1``, :math:`Q` Haar), :math:`x^+ = x + \texttt{noise}\,\Sigma^{1/2}\xi` (or
    :math:`x + \Sigma_\epsilon^{1/2}\xi` with ``noise_cov`` :math:`=\Sigma_\epsilon`, e.g. anisotropic noise for the
    MSE loss), negatives :math:`x^-_i = x^+_{\pi(i)}` for a random permutation :math:`\pi`.

    Returns ``(X, X_pos, X_neg, Sigma)`` as numpy arrays, columns are samples. The draws use
    ``numpy.random.default_rng(seed)`` (the note's exact random stream is unknown, so its quoted
    eigenvalues are matched only to sampling error).
    """
    if d < 1 or n < 1:
        raise ValueError(f"d and n must be >= 1, got d={d}, n={n}")
    rng = np.random.default_rng(seed)
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    Q = Q * np.sign(np.diag(R))
    evals = 1.0 / (1.0 + np.arange(d))
    Sigma = (Q * evals) @ Q.T
    X = (Q * np.sqrt(evals)) @ rng.standard_normal((d, n))
    if noise_cov is None:
        noise_root = noise * (Q * np.sqrt(evals)) @ Q.T
    else:
        _checks.check_psd("noise_cov", noise_cov, rtol=1e-8)
        lam, V = np.linalg.eigh(np.asarray(noise_cov, float))
        noise_root = (V * np.sqrt(np.clip(lam, 0, None))) @ V.T
    X_pos = X + noise_root @ rng.standard_normal((d, n))
    X_neg = X_pos[:, rng.permutation(n)]
    return X, X_pos, X_neg, Sigma
