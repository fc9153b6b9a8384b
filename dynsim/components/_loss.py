r"""Losses: per-sample values at network level and the per-mode drives of the eigenmode theory.

A loss is a function of the online output $z_1 = Wx_1$, the prediction $p = W_pz_1$ and the
target output $z_2 = W_tx_2$ (the caller stops the gradient at the target unless the target says
otherwise, and at a closed-form predictor). `AbstractLoss.per_sample` returns the per-sample loss
`(B,)` of batches `(B, n2)`; that is all a new loss needs to run at network level (flow, GD, SGD). A loss of the
batch's second moments (Barlow Twins, the spectral contrastive loss, VICReg) subclasses `AbstractBatchLoss` and defines
`batch_value` instead; every level reaches a loss through `batch_value`.

| component | per-sample loss | source |
|---|---|---|
| [`Euclidean`][dynsim.components.Euclidean] | $\tfrac12\Vert p - z_2\Vert ^2$ | Tian et al. 2021, Eq. 1 |
| [`Cosine`][dynsim.components.Cosine] | $\tfrac12\Vert \hat p - \hat z_2\Vert ^2 = 1 - \cos(p, z_2)$ | BYOL's $2-2\cos$, halved |
| `Euclidean(iso=True)` | $\tfrac12\Vert z_1 - \mathrm{sg}(z_2 + z_1 - p)\Vert ^2$ | Halvagal et al. 2023 |
| `Cosine(iso=True)` | $-\frac{z_1\cdot\mathrm{sg}(z_2)}{\mathrm{sg}(\Vert p\Vert \Vert z_2\Vert )} + \tfrac12\mathrm{sg}\big(\frac{p\cdot z_2}{\Vert p\Vert ^3\Vert z_2\Vert }\big) z_1^\top W_p z_1$ | Halvagal et al. 2023 |
| [`BarlowTwins`][dynsim.components.BarlowTwins] | $\Vert C - I\Vert_F^2$ (off-diagonal weight $\lambda_\mathrm{off}$) of the batch's symmetrised cross-correlation $C$: a loss of the batch, `batch_value` | Simon et al. 2023 |
| [`SpectralContrastive`][dynsim.components.SpectralContrastive] | $-2\,p\cdot z_2$ averaged, plus $\Vert M\Vert_F^2$ of the batch's second moment $M$: a loss of the batch, `batch_value` | HaoChen et al. 2021 |
| [`VICReg`][dynsim.components.VICReg] | invariance $\Vert p - z_2\Vert^2$ averaged, plus each branch's variance hinge and covariance penalty: a loss of the batch, `batch_value` | Bardes et al. 2022, Eq. 6 |

**Scale.** The Euclidean and cosine losses carry the ½ of Tian et al.'s Eq. 1, so the cosine loss is $1-\cos$, half
BYOL's $2-2\cos$, with exactly the gradient of Halvagal et al.'s $-\cos$; the eigenmode
theory and the networks share one time axis. Code with $2-2\cos$ runs at twice this speed. Barlow Twins,
the spectral contrastive loss and VICReg keep their papers' scales (no ½).

**IsoLoss** (Halvagal et al. 2023): the gradient with respect to $z_1$ equals the original
loss's gradient with respect to $p$, removing one factor $W_p^\top$; it needs a closed-form
(symmetric) predictor. Only gradients of these surrogate values are meaningful.

**Eigenmode form.** In a common eigenbasis of the data moments, with the predictor and target aligned,
mode $m$ carries amplitudes $w_m$ (online), $\lambda_m$ (predictor eigenvalue) and
$\bar w_m$ (target seen by the loss), and sees views $(u_{1,m}, u_{2,m})$
(`_expectation`). `AbstractLoss.mode_drives` returns the online drive
$-\partial_w E[\ell]$ and the predictor drive $-\partial_\lambda E[\ell]$ of the network restricted
to such aligned (diagonal) states. The default is exactly that restriction, by automatic differentiation
of `batch_value` on the per-mode nodes; the built-in losses override it with their per-mode closed
forms (equal to the default, tested):

$$
\text{Euclidean:}\quad r = \bar w\lambda_d - \lambda w\lambda_s,\qquad
-\partial_w E[\ell] = \lambda r\ (\text{IsoLoss: } r),\qquad -\partial_\lambda E[\ell] = r w,
$$

and without the stop-gradient $-\partial_w E[\ell] = -w[\lambda^2\ell_{11} - 2\lambda\ell_{12} + \ell_{22}]$
(Tian et al. 2021 App. D.4; Halvagal et al. 2023; $\lambda_s = \ell_{11}$, $\lambda_d = \ell_{12}$,
$\ell_{22} = \lambda_s$ unless the views differ, `docs/theory/views.md`). The cosine drives are exact for Gaussian views
([`mode_cosine_expectation`][dynsim.components.mode_cosine_expectation], the gradient of the two-radius integral; `docs/theory/cosine_expectation.md`),
or node averages of $-\partial\mathcal L/\partial p$ (Halvagal et al. 2023), or their mean-field
approximation.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax

from dynsim.components._base import AbstractComponent
from dynsim.components._expectation import GaussianExact, GaussianNodes, MeanField, SecondMoments
from dynsim.components._two_radius import mode_cosine_expectation, network_cosine_expectation


def _norm(x):
    return jnp.sqrt(jnp.sum(x * x, axis=-1))


def euclidean(z1, p, z2, W_p=None):
    r"""$\tfrac12\|p - z_2\|^2$ per sample (Tian et al. 2021, Eq. 1)."""
    return 0.5 * jnp.sum((p - z2) ** 2, axis=-1)


def cosine(z1, p, z2, W_p=None):
    r"""$1 - \cos(p, z_2)$ per sample (BYOL's $2 - 2\cos$, halved)."""
    return 1.0 - jnp.sum(p * z2, axis=-1) / (_norm(p) * _norm(z2))


def euclidean_iso(z1, p, z2, W_p=None):
    r"""Euclidean IsoLoss $\tfrac12\|z_1 - \mathrm{sg}(z_2 + z_1 - p)\|^2$ (Halvagal et al. 2023)."""
    return 0.5 * jnp.sum((z1 - lax.stop_gradient(z2 + z1 - p)) ** 2, axis=-1)


def cosine_iso(z1, p, z2, W_p):
    r"""Cosine IsoLoss (Halvagal et al. 2023; the formula in the module table); needs a symmetric `W_p`."""
    sg = lax.stop_gradient
    n_p, n_z = sg(_norm(p)), sg(_norm(z2))
    coef = sg(jnp.sum(p * z2, axis=-1) / (n_p**3 * n_z))
    quad = jnp.sum(z1 * (z1 @ sg(W_p).T), axis=-1)
    return -jnp.sum(z1 * sg(z2), axis=-1) / (n_p * n_z) + 0.5 * coef * quad


class AbstractLoss(AbstractComponent):
    r"""A loss. Subclasses define `per_sample`; `mode_drives` defaults to the restricted network.

    Class attributes: `quadratic` (its expectation depends on the views' second moments only, so
    [`SecondMoments`][dynsim.components.SecondMoments] is exact), `needs_direction` (a zero target has no
    direction, so an EMA target starts as a copy of the online weights), `mode_nodes` (its per-mode
    drives evaluate the expectation's nodes; `False` for a closed form that needs none) and `rotation_invariant`
    (`False` for a loss of each embedding coordinate, as VICReg: an aligned state then has each output along one
    mode, $W = P\,\mathrm{diag}(w)V^\top$ with $P$ a signed permutation).
    """

    name: ClassVar[str] = ""
    quadratic: ClassVar[bool] = False
    needs_direction: ClassVar[bool] = False
    mode_nodes: ClassVar[bool] = True  #: whether the per-mode drives evaluate the expectation's nodes
    gaussian_exact: ClassVar[bool] = False  #: whether it has an exact two-radius Gaussian form (both levels)
    #: whether it is unchanged by a rotation of the embedding space (an aligned state may then rotate its outputs)
    rotation_invariant: ClassVar[bool] = True
    iso: bool = eqx.field(default=False, static=True)

    def per_sample(self, z1, p, z2, W_p):
        """The per-sample loss `(B,)`."""
        raise NotImplementedError

    def batch_value(self, z1, p, z2, W_p, weights):
        r"""The loss of a weighted batch (`weights` `(B,)`: $1/B$ for a minibatch, the expectation's node weights
        for an expected loss): $\sum_b w_b\ell_b$ for a per-sample loss. A loss of batch statistics (Barlow Twins)
        overrides it; every level (network flow, GD, SGD, the per-mode drives on nodes) goes through it."""
        return jnp.sum(weights * self.per_sample(z1, p, z2, W_p))

    def exact_network_value(self, W, W_p, W_t, views):
        """The expected loss over Gaussian views [`ExactViews`][dynsim.components.ExactViews] in closed form, for a
        loss with a two-radius form (`gaussian_exact`); its gradients are the expected gradients."""
        raise ValueError(f"the {type(self).__name__} loss has no exact Gaussian form; use GaussianNodes")

    def mode_value(self, w, w_bar, lam, data, expectation):
        r"""The expected loss of the restricted network, $E[\ell]$ over the per-mode view law, by `batch_value` on
        `expectation`'s per-mode nodes (exact where those nodes are: second moments for a quadratic loss)."""
        if isinstance(expectation, MeanField):
            raise ValueError(f"the mean-field expectation gives drives, not a loss value ({type(self).__name__})")
        u1, u2, weights = expectation.mode_nodes(data, w.shape[-1], w.dtype)
        z1 = w * u1
        return self.batch_value(z1, lam * z1, w_bar * u2, jnp.diag(lam), weights)

    def mode_drives(self, w, w_bar, lam, data, stop_gradient: bool, expectation):
        """`(online drive, predictor drive)`, each `(M,)`: the restricted network's
        $-\\partial_w E[\\ell]$ and $-\\partial_\\lambda E[\\ell]$ (module docstring), by autodiff of
        `batch_value` on `expectation`'s per-mode nodes."""
        if isinstance(expectation, MeanField):
            raise ValueError(f"the mean-field expectation is defined for the built-in cosine loss only, not "
                             f"{type(self).__name__}")
        u1, u2, weights = expectation.mode_nodes(data, w.shape[-1], w.dtype)

        def expected(wv, lv, wb):
            z1 = wv * u1
            return self.batch_value(z1, lv * z1, wb * u2, jnp.diag(lv), weights)

        # the stop-gradient: the target w_bar is an argument the gradient does not differentiate (lax.stop_gradient
        # would also stop derivatives with respect to the parameters)
        if stop_gradient:
            g_w = jax.grad(expected, 0)(w, lam, w_bar)
        else:  # the target is the online network, differentiated too
            g_w = jax.grad(lambda wv: expected(wv, lam, wv))(w)
        g_lam = jax.grad(expected, 1)(w, lam, w_bar)
        return -g_w, -g_lam


class Euclidean(AbstractLoss):
    """$\\tfrac12\\|p - z_2\\|^2$, or its IsoLoss form with `iso=True` (module table)."""

    name: ClassVar[str] = "euclidean"
    quadratic: ClassVar[bool] = True
    mode_nodes: ClassVar[bool] = False  # closed form: exact without nodes

    def per_sample(self, z1, p, z2, W_p):
        return euclidean_iso(z1, p, z2, W_p) if self.iso else euclidean(z1, p, z2, W_p)

    def mode_value(self, w, w_bar, lam, data, expectation):
        r"""$E[\tfrac12\|p - z_2\|^2] = \tfrac12\sum_m(\lambda_m^2w_m^2\ell_{11} - 2\lambda_mw_m\bar w_m\ell_{12}
        + \bar w_m^2\ell_{22})$ (IsoLoss has the same value), exact for every expectation."""
        return 0.5 * jnp.sum(lam**2 * w**2 * data.l11 - 2 * lam * w * w_bar * data.l12 + w_bar**2 * data.l22)

    def mode_drives(self, w, w_bar, lam, data, stop_gradient: bool, expectation):
        """Closed form (module docstring); exact for every expectation."""
        r = w_bar * data.l12 - lam * w * data.l11
        if not stop_gradient:
            return -w * (lam**2 * data.l11 - 2 * lam * data.l12 + data.l22), r * w
        return (r if self.iso else lam * r), r * w


class Cosine(AbstractLoss):
    """$1 - \\cos(p, z_2)$, or its IsoLoss form with `iso=True` (module table)."""

    name: ClassVar[str] = "cosine"
    needs_direction: ClassVar[bool] = True
    gaussian_exact: ClassVar[bool] = True

    def per_sample(self, z1, p, z2, W_p):
        return cosine_iso(z1, p, z2, W_p) if self.iso else cosine(z1, p, z2, W_p)

    def mode_value(self, w, w_bar, lam, data, expectation):
        """$1 - E[\\cos(p, z_2)]$: exact ([`mode_cosine_expectation`][dynsim.components.mode_cosine_expectation]) with
        [`GaussianExact`][dynsim.components.GaussianExact], else on the expectation's nodes."""
        if isinstance(expectation, GaussianExact):
            sigma, weights = expectation.rule(jnp.result_type(w), False)
            return 1.0 - mode_cosine_expectation(lam * w, w_bar, data.l11, data.l12, data.l22, sigma, weights)
        return super().mode_value(w, w_bar, lam, data, expectation)

    def mode_drives(self, w, w_bar, lam, data, stop_gradient: bool, expectation):
        if isinstance(expectation, MeanField):
            return self._mean_field(w, w_bar, lam, data, stop_gradient)
        if isinstance(expectation, SecondMoments):
            raise ValueError("the cosine loss is not a second-moment loss: use GaussianExact, GaussianNodes or "
                             "MeanField")
        if isinstance(expectation, GaussianExact):
            return self.exact_drives(w, w_bar, lam, data, stop_gradient, expectation)
        drive, pred_drive = self._node_samples(w, w_bar, lam, data, stop_gradient, expectation)
        return jnp.mean(drive, axis=-1), jnp.mean(pred_drive, axis=-1)

    def exact_network_value(self, W, W_p, W_t, views):
        r"""$1 - E[\cos(W_pWx_1, W_tx_2)]$ ([`network_cosine_expectation`][dynsim.components.network_cosine_expectation]; the caller stops the
        gradient at `W_t` unless the target lets it through). IsoLoss: the same value, with the gradient
        $-\partial f/\partial P$ at $P = W_pW$ for `W` (the factor $W_p^\top$ removed) and none
        for `W_p` or the target, as the per-sample IsoLoss (whose own value is only a surrogate)."""
        def f(P, W_t):
            return network_cosine_expectation(P, W_t, views.S11, views.S12, views.S22, views.sigma, views.weights)

        if not self.iso:
            return 1.0 - f(W_p @ W, W_t)
        P, W_t = lax.stop_gradient(W_p @ W), lax.stop_gradient(W_t)
        value, G = jax.value_and_grad(f)(P, W_t)
        return 1.0 - value - jnp.sum(G * (W - lax.stop_gradient(W)))

    def exact_drives(self, w, w_bar, lam, data, stop_gradient: bool, expectation: GaussianExact, coarse=False):
        r"""The drives from the exact expectation $f(q, \bar w) = E[\cos(q\circ u_1, \bar w\circ u_2)]$
        ([`mode_cosine_expectation`][dynsim.components.mode_cosine_expectation]) at $q = \lambda w$: $\partial_qf$ is
        $-E[\partial\mathcal L/\partial p_m\,u_{1,m}]$, so the online drive is $\lambda\,\partial_qf$
        (IsoLoss: $\partial_qf$, the factor $W_p^\top$ removed), plus $\partial_{\bar w}f$ without
        the stop-gradient (the target is the online network), and the predictor drive is $w\,\partial_qf$.
        `coarse`: with the rule at step 2h (for the error estimate)."""
        sigma, weights = expectation.rule(jnp.result_type(w), coarse)
        def f(q, wb):
            return mode_cosine_expectation(q, wb, data.l11, data.l12, data.l22, sigma, weights)

        g_q, g_wb = jax.grad(f, (0, 1))(lam * w, w_bar)
        drive = g_q if self.iso else lam * g_q
        if not stop_gradient:
            drive = drive + g_wb
        return drive, w * g_q

    def node_terms(self, w, w_bar, lam, data, stop_gradient: bool, expectation: GaussianNodes):
        """Per-node samples, shape `(K, M)`, of the online drive and the predictor drive (Halvagal et al.
        2023): $\\partial\\mathcal L/\\partial p = -[z_2/(\\|p\\|\\|z_2\\|) - (p\\cdot z_2)p/(\\|p\\|^3\\|z_2\\|)]$."""
        drive, pred_drive = self._node_samples(w, w_bar, lam, data, stop_gradient, expectation)
        return jnp.swapaxes(drive, -1, -2), jnp.swapaxes(pred_drive, -1, -2)

    def _node_samples(self, w, w_bar, lam, data, stop_gradient: bool, expectation: GaussianNodes):
        """[`node_terms`][dynsim.components.Cosine.node_terms] laid out `(M, K)`: the sums over modes then run
        along the short second-to-last axis, several times faster on a CPU than along a trailing axis of length M."""
        u1, u2, _ = expectation.mode_nodes(data, w.shape[-1], w.dtype)
        u1, u2 = u1.T, u2.T
        w, w_bar, lam = w[..., None], w_bar[..., None], lam[..., None]
        z1, z2 = w * u1, w_bar * u2
        p = lam * z1
        n_p = jnp.sqrt(jnp.sum(p * p, axis=-2, keepdims=True))
        n_z = jnp.sqrt(jnp.sum(z2 * z2, axis=-2, keepdims=True))
        A = jnp.sum(p * z2, axis=-2, keepdims=True)
        dL_dp = -(z2 / (n_p * n_z) - A * p / (n_p**3 * n_z))
        g = dL_dp if self.iso else lam * dL_dp
        drive = -g * u1
        if not stop_gradient:  # target = online: gradient also through z2 = w u2
            dL_dz2 = -(p / (n_p * n_z) - A * z2 / (n_p * n_z**3))
            drive = drive - dL_dz2 * u2
        return drive, -dL_dp * z1

    def _mean_field(self, w, w_bar, lam, data, stop_gradient: bool):
        r"""Halvagal et al. 2023: $N_p^2 = \sum_j\lambda_j^2w_j^2\ell_{11}$, $N_z^2 = \sum_j\bar w_j^2\ell_{22}$,
        $A = \sum_j\lambda_jw_j\bar w_j\ell_{12}$ replace the per-sample norms."""
        ls, ld, l22 = data.l11, data.l12, data.l22
        n_p = jnp.sqrt(jnp.sum(lam**2 * w**2 * ls))
        n_z = jnp.sqrt(jnp.sum(w_bar**2 * l22))
        A = jnp.sum(lam * w * w_bar * ld)
        e_u1 = w_bar * ld / (n_p * n_z) - A * lam * w * ls / (n_p**3 * n_z)  # = -E[dL/dp u1]
        drive = e_u1 if self.iso else lam * e_u1
        if not stop_gradient:
            drive = drive + lam * w * ld / (n_p * n_z) - A * w_bar * l22 / (n_p * n_z**3)
        return drive, w * e_u1


class AbstractBatchLoss(AbstractLoss):
    """A loss of the batch's second moments, not a sum over samples: subclasses define `batch_value`. Such a loss
    depends on the views' second moments only (exact on [`SecondMoments`][dynsim.components.SecondMoments] nodes,
    and SGD's moment sampler is exact in law for it) and has no per-sample value and no IsoLoss form."""

    quadratic: ClassVar[bool] = True  # a function of second moments: exact on SecondMoments nodes

    def __check_init__(self):
        if self.iso:
            raise ValueError(f"the {self.name} loss has no IsoLoss form (iso=True)")

    def per_sample(self, z1, p, z2, W_p):
        raise ValueError(f"the {self.name} loss is a function of the batch's second moments, not a sum over "
                         "samples: use batch_value")


class BarlowTwins(AbstractBatchLoss):
    r"""Barlow Twins on the symmetrised cross-correlation of a batch,
    $C = \sum_bw_b\,\tfrac12(p_bz_{2,b}^\top + z_{2,b}p_b^\top)$ ($= W\Gamma W^\top$ for $p = z_1 = Wx_1$,
    $z_2 = Wx_2$, $\Gamma$ the symmetrised cross-view moment):
    $\mathcal L = \sum_i(1 - C_{ii})^2 + \lambda_\mathrm{off}\sum_{i\ne j}C_{ij}^2$, no ½ and no per-dimension
    normalisation (Simon et al. 2023, whose exactly solvable model is $\lambda_\mathrm{off} = 1$,
    $\mathcal L = \Vert C - I\Vert_F^2$; `docs/theory/simon2023.md#model`). It depends on the views' second moments
    only, so [`SecondMoments`][dynsim.components.SecondMoments] nodes give its expectation exactly. The model of the
    paper has no predictor and lets the gradient through both branches: `predictor="identity"`,
    `target="online"`, `stop_gradient=False`. `standardise=True` first divides each coordinate of each branch by
    its root mean square over the batch, $\sqrt{\sum_bw_bp_{b,i}^2 + \epsilon}$ (practical Barlow Twins'
    batch normalisation, without centring for zero-mean views); the loss is then blind to each coordinate's scale."""

    name: ClassVar[str] = "barlow_twins"
    off_diagonal: float = 1.0
    #: divide each embedding coordinate of each branch by its root mean square over the batch (plus `eps`) before
    #: the cross-correlation, as the batch-normalised embeddings of practical Barlow Twins (zero-mean views: no
    #: centring); `docs/theory/simon2023.md#standardised`
    standardise: bool = eqx.field(default=False, static=True)
    eps: float = 1e-5

    @property
    def rotation_invariant(self) -> bool:  # standardising acts on each embedding coordinate
        return not self.standardise

    def check(self):
        self._positive("off_diagonal", strict=False)
        self._positive("eps", strict=False)
        return self

    def batch_value(self, z1, p, z2, W_p, weights):
        if self.standardise:
            p = p / jnp.sqrt(jnp.einsum("b,bi->i", weights, p * p) + self.eps)
            z2 = z2 / jnp.sqrt(jnp.einsum("b,bi->i", weights, z2 * z2) + self.eps)
        cross = jnp.einsum("b,bi,bj->ij", weights, p, z2)
        C = 0.5 * (cross + cross.T)
        off = C - jnp.diag(jnp.diag(C))
        return jnp.sum((1.0 - jnp.diag(C)) ** 2) + self.off_diagonal * jnp.sum(off * off)


class SpectralContrastive(AbstractBatchLoss):
    r"""The spectral contrastive loss (HaoChen et al. 2021) of a batch:
    $\mathcal L = -2\sum_bw_b\,p_b\cdot z_{2,b} + \Vert M\Vert_F^2$,
    $M = \sum_bw_b\,\tfrac12(p_bp_b^\top + z_{2,b}z_{2,b}^\top)$. For $p = z_1 = Wx_1$, $z_2 = Wx_2$ its expectation
    is $-2\,\mathrm{tr}(W\Gamma W^\top) + \Vert WSW^\top\Vert_F^2$ with $S = \tfrac12E[x_1x_1^\top + x_2x_2^\top]$: the
    paper's $E[(f(x)^\top f(x'))^2]$ over independent views $x, x'$, which a batch estimates with all its pairs (the
    pairs of a sample with itself included). A function of second moments, exact on
    [`SecondMoments`][dynsim.components.SecondMoments] nodes (`docs/theory/haochen2021.md#loss`). Like Barlow Twins
    it is used without a predictor and with the gradient through both branches."""

    name: ClassVar[str] = "spectral_contrastive"

    def batch_value(self, z1, p, z2, W_p, weights):
        positive = jnp.sum(weights * jnp.sum(p * z2, axis=-1))
        M = 0.5 * (jnp.einsum("b,bi,bj->ij", weights, p, p) + jnp.einsum("b,bi,bj->ij", weights, z2, z2))
        return -2.0 * positive + jnp.sum(M * M)


def smooth_hinge(x, width):
    r"""$\max(0, x)$ with its kink rounded over `width` $\tau \ge 0$: $0$ for $x \le 0$, $x^2/(2\tau)$ on
    $[0, \tau]$, $x - \tau/2$ above; $\tau = 0$ is the hinge itself. Its derivative, $\mathrm{clip}(x/\tau, 0, 1)$,
    is continuous for $\tau > 0$ (`docs/theory/bardes2022.md#smoothing`)."""
    inner = jnp.clip(x, 0.0, width)
    safe = jnp.where(width > 0, width, 1.0)  # inner is 0 where width is 0: no 0/0 in the value or its gradient
    return inner * inner / (2.0 * safe) + jnp.maximum(x - width, 0.0)


class VICReg(AbstractBatchLoss):
    r"""VICReg (Bardes, Ponce & LeCun 2022, Eq. 6) of a batch:
    $\mathcal L = \lambda\,s + \mu\,[v(Z_1) + v(Z_2)] + \nu\,[c(Z_1) + c(Z_2)]$ with the invariance
    $s = \sum_bw_b\Vert p_b - z_{2,b}\Vert^2$ (Eq. 5), the variance hinge
    $v(Z) = \frac1d\sum_jh_\tau(\gamma - \sqrt{C_{jj} + \epsilon})$ (Eqs. 1-2) and the covariance term
    $c(Z) = \frac1d\sum_{i\ne j}C_{ij}^2$ (Eq. 4), $C = \sum_bw_bz_bz_b^\top$ each branch's second moment and
    $d$ the embedding dimension. $h_0$ is the paper's hinge $\max(0, \cdot)$; `smoothing` $\tau > 0$ rounds its kink
    ([`smooth_hinge`][dynsim.components.smooth_hinge]) so that a flow has a smooth right-hand side.

    The paper centres $C$ on the batch mean (and divides by $B - 1$); dynsim's views have zero mean and the loss uses
    the uncentred second moment, so it is a function of the views' second moments, exact on
    [`SecondMoments`][dynsim.components.SecondMoments] nodes; on a minibatch the two differ by $O(1/B)$
    (`docs/theory/bardes2022.md#loss`). Fields: `invariance` $\lambda$, `variance` $\mu$, `covariance` $\nu$, `gamma`
    $\gamma$, `eps` $\epsilon$ (a positive $\epsilon$ keeps the gradient finite where a coordinate collapses) and
    `smoothing` $\tau$; the defaults are the paper's: $\lambda = \mu = 25$, $\nu = 1$, $\gamma = 1$,
    $\epsilon = 10^{-4}$, $\tau = 0$. Like Barlow Twins it is used without a predictor and with the gradient through both
    branches (`predictor="identity"`, `target="online"`, `stop_gradient=False`)."""

    name: ClassVar[str] = "vicreg"
    rotation_invariant: ClassVar[bool] = False  # its variance and covariance terms act per embedding coordinate
    invariance: float = 25.0
    variance: float = 25.0
    covariance: float = 1.0
    gamma: float = 1.0
    eps: float = 1e-4
    smoothing: float = 0.0

    def check(self):
        for name in ("invariance", "variance", "covariance", "eps", "smoothing"):
            self._positive(name, strict=False)
        self._positive("gamma")
        return self

    def _regulariser(self, z, weights):
        C = jnp.einsum("b,bi,bj->ij", weights, z, z)
        d = z.shape[-1]
        std = jnp.sqrt(jnp.diag(C) + self.eps)
        off = C - jnp.diag(jnp.diag(C))
        return (self.variance * jnp.sum(smooth_hinge(self.gamma - std, self.smoothing))
                + self.covariance * jnp.sum(off * off)) / d

    def batch_value(self, z1, p, z2, W_p, weights):
        invariance = jnp.sum(weights * jnp.sum((p - z2) ** 2, axis=-1))
        return self.invariance * invariance + self._regulariser(p, weights) + self._regulariser(z2, weights)


LOSSES = {cls.name: cls for cls in (Euclidean, Cosine, BarlowTwins, SpectralContrastive, VICReg)}
