r"""Trace-form SSL losses and the dynamics matrix $A$ (Esser, Mukherjee & Ghoshdastidar 2023).

Every loss here is quadratic in the encoder $W\in\mathbb{R}^{d\times h}$
($f_W(x) = W^\top x$) and is written $L(W) = -\operatorname{tr}(W^\top M W)$ with
$M$ symmetric, so $\nabla L = -2MW = -AW$ with the **dynamics matrix**
$A := \texttt{GRADIENT\_FACTOR}\cdot M = 2M$. Continuous time is $t = \eta k$
([`dynsim.units`][dynsim.units]). The paper's constants are unconfirmed: a ½ or
$1/n$ placed elsewhere rescales $A$ (hence time) by a constant; change
`GRADIENT_FACTOR` in this one place if the paper's convention differs.

| `loss` | per-sample loss (data columns $x_i, x_i^+, x_i^-$) | $M$ ($A = 2M$) |
|---|---|---|
| `"contrastive"` | $-\frac1n\sum_i f(x_i)^\top[f(x_i^+) - f(x_i^-)]$ | $\operatorname{sym}(XX^{+\top} - XX^{-\top})/n$ |
| `"alignment"` | $-\frac1n\sum_i f(x_i)^\top f(x_i^+)$ | $\operatorname{sym}(XX^{+\top})/n$ |
| `"mse"` | $\frac1n\sum_i\Vert f(x_i) - f(x_i^+)\Vert ^2$ | $-(X - X^+)(X - X^+)^\top/n$ |

Population versions replace the sample moments by $E[xx^{+\top}]$, $E[xx^{-\top}]$ and
$D = E[(x - x^+)(x - x^+)^\top]$. With centred negatives independent of $x$,
$E[xx^{-\top}] = 0$ and the contrastive and alignment losses coincide in population.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from dynsim import _checks

GRADIENT_FACTOR = 2.0  #: A = GRADIENT_FACTOR * M for L(W) = -tr(W^T M W)


def sym(M):
    r"""$(M + M^\top)/2$ over the last two axes."""
    return 0.5 * (M + jnp.swapaxes(M, -1, -2))


class TraceLoss:
    r"""One trace-form loss $L(W) = -\operatorname{tr}(W^\top MW)$ (module table): its $M$ from
    data columns (`sample_m`), from population moments (`population_m`), and its pairing
    matrix over stacked views (`pairing`), so that a kernel $\Phi$ gives $M = \Phi M_p
    \Phi^\top$. `views`: the views it reads, in the stacking order of `pairing`."""

    name: str = ""
    views: tuple[str, ...] = ("X", "X_pos")
    uses_difference: bool = False  #: reads the views' difference moment (`diff_cov`) instead of `cross_pos`

    def sample_m(self, X, X_pos, X_neg):
        raise NotImplementedError

    def population_m(self, cross_pos, cross_neg, diff_cov):
        raise NotImplementedError

    def pairing(self, n: int, scale: float, dtype=None):
        raise NotImplementedError


class Contrastive(TraceLoss):
    name, views = "contrastive", ("X", "X_pos", "X_neg")

    def sample_m(self, X, X_pos, X_neg):
        return sym(X @ X_pos.T - X @ X_neg.T) / X.shape[1]

    def population_m(self, cross_pos, cross_neg, diff_cov):
        return sym(cross_pos if cross_neg is None else cross_pos - cross_neg)

    def pairing(self, n, scale, dtype=None):
        eye, zero = jnp.eye(n, dtype=dtype), jnp.zeros((n, n), dtype=dtype)
        half = 0.5 * scale * eye
        return jnp.block([[zero, half, -half], [half, zero, zero], [-half, zero, zero]])


class Alignment(TraceLoss):
    name = "alignment"

    def sample_m(self, X, X_pos, X_neg):
        return sym(X @ X_pos.T) / X.shape[1]

    def population_m(self, cross_pos, cross_neg, diff_cov):
        return sym(cross_pos)

    def pairing(self, n, scale, dtype=None):
        eye, zero = jnp.eye(n, dtype=dtype), jnp.zeros((n, n), dtype=dtype)
        half = 0.5 * scale * eye
        return jnp.block([[zero, half], [half, zero]])


class MSE(TraceLoss):
    name, uses_difference = "mse", True

    def sample_m(self, X, X_pos, X_neg):
        R = X - X_pos
        return -(R @ R.T) / X.shape[1]

    def population_m(self, cross_pos, cross_neg, diff_cov):
        return -diff_cov

    def pairing(self, n, scale, dtype=None):
        eye = jnp.eye(n, dtype=dtype)
        return -scale * jnp.block([[eye, -eye], [-eye, eye]])


#: the trace losses by name; `loss` arguments take a name or a `TraceLoss` instance
TRACE_LOSSES = {cls.name: cls() for cls in (Contrastive, Alignment, MSE)}
LOSSES = tuple(TRACE_LOSSES)


def trace_loss_spec(loss) -> TraceLoss:
    """The `TraceLoss` named by `loss` (or `loss` itself)."""
    if isinstance(loss, TraceLoss):
        return loss
    _checks.check_choice("loss", loss, LOSSES)
    return TRACE_LOSSES[loss]


def _check_views(spec: TraceLoss, X, X_pos, X_neg):
    for name, Z in (("X", X), ("X_pos", X_pos)) + ((("X_neg", X_neg),) if X_neg is not None else ()):
        if np.ndim(Z) != 2:
            raise ValueError(f"{name} must be a (d, n) matrix of data columns, got shape {np.shape(Z)}")
        _checks.check_finite(name, Z)
        if np.shape(Z) != np.shape(X):
            raise ValueError(f"{name} must have the shape of X {np.shape(X)}, got {np.shape(Z)}")
    if "X_neg" in spec.views and X_neg is None:
        raise ValueError(f"the {spec.name} loss needs negatives X_neg")


def dynamics_matrix(loss, X, X_pos, X_neg=None):
    r"""The dynamics matrix $A = 2M$ of a trace-form loss from a dataset (module table).

    Args:
        loss: `"contrastive"`, `"alignment"` or `"mse"` (or a `TraceLoss`).
        X: data as columns, `(d, n)`.
        X_pos: their positive views, `(d, n)`.
        X_neg: negatives, `(d, n)` (only for `"contrastive"`).
    Returns:
        Symmetric `(d, d)` matrix $A$ with $\nabla L(W) = -AW$.
    """
    spec = trace_loss_spec(loss)
    _check_views(spec, X, X_pos, X_neg)
    X_neg = None if X_neg is None else jnp.asarray(X_neg)
    return GRADIENT_FACTOR * spec.sample_m(jnp.asarray(X), jnp.asarray(X_pos), X_neg)


def population_dynamics_matrix(loss, cross_pos=None, cross_neg=None, diff_cov=None):
    r"""Population $A$: `2 sym(cross_pos - cross_neg)` (contrastive), `2 sym(cross_pos)`
    (alignment) or `-2 diff_cov` (mse), with `cross_pos` $=E[xx^{+\top}]$, `cross_neg`
    $=E[xx^{-\top}]$ (default 0: independent centred negatives) and `diff_cov`
    $=E[(x-x^+)(x-x^+)^\top]$, all `(d, d)`. See [`additive_augmentation_moments`][dynsim.grassmann.additive_augmentation_moments]."""
    spec = trace_loss_spec(loss)
    if spec.uses_difference:
        if diff_cov is None:
            raise ValueError(f"the {spec.name} loss needs diff_cov = E[(x - x+)(x - x+)^T]")
        _checks.check_psd("diff_cov", diff_cov, rtol=1e-8)
        diff_cov = jnp.asarray(diff_cov)
    else:
        if cross_pos is None:
            raise ValueError(f"the {spec.name} loss needs cross_pos = E[x x+^T]")
        _checks.check_square("cross_pos", cross_pos)
        _checks.check_finite("cross_pos", cross_pos)
        cross_pos = jnp.asarray(cross_pos)
    if "X_neg" in spec.views and cross_neg is not None:
        _checks.check_shape("cross_neg", cross_neg, np.shape(cross_pos))
        _checks.check_finite("cross_neg", cross_neg)
        cross_neg = jnp.asarray(cross_neg)
    else:
        cross_neg = None
    return GRADIENT_FACTOR * spec.population_m(cross_pos, cross_neg, diff_cov)


def additive_augmentation_moments(data_cov, noise_cov) -> dict:
    r"""Moments for $x\sim N(0,\Sigma)$, $x^+ = x + \epsilon$, $\epsilon\sim N(0,\Sigma_\epsilon)$
    and independent negatives: `cross_pos` $=\Sigma$, `cross_neg` $=0$,
    `diff_cov` $=\Sigma_\epsilon$ (keyword arguments of [`population_dynamics_matrix`][dynsim.grassmann.population_dynamics_matrix])."""
    _checks.check_psd("data_cov", data_cov, rtol=1e-8)
    _checks.check_psd("noise_cov", noise_cov, rtol=1e-8)
    data_cov = jnp.asarray(data_cov)
    return {"cross_pos": data_cov, "cross_neg": jnp.zeros_like(data_cov), "diff_cov": jnp.asarray(noise_cov)}


def trace_loss(W, A):
    r"""The loss $L(W) = -\tfrac12\operatorname{tr}(W^\top A W)$ (`= -tr(W^T M W)`) for `W` of
    shape `(..., d, h)` and `A` `(d, d)` (or batched alike); returns shape `(...)`."""
    return -0.5 * jnp.sum(W * (A @ W), axis=(-2, -1))


def protocol_data(seed: int = 0, d: int = 30, n: int = 2000, noise: float = 0.3, noise_cov=None):
    r"""Esser et al. (2023)'s synthetic dataset: $x\sim N(0,\Sigma)$, $\Sigma = Q\,\mathrm{diag}(1/(1+i))Q^\top$
    (`i = 0..d-1`, $Q$ Haar), $x^+ = x + \texttt{noise}\,\Sigma^{1/2}\xi$ (or
    $x + \Sigma_\epsilon^{1/2}\xi$ with `noise_cov` $=\Sigma_\epsilon$, e.g. anisotropic noise for the
    MSE loss), negatives $x^-_i = x^+_{\pi(i)}$ for a random permutation $\pi$.

    Returns `(X, X_pos, X_neg, Sigma)` as numpy arrays, columns are samples. The draws use
    `numpy.random.default_rng(seed)` (another random stream gives eigenvalues that agree only to
    sampling error).
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
