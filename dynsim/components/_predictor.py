r"""Predictors: trainable, none, and closed forms of the predictor-input moments.

A closed-form predictor is a function of two $n_2\times n_2$ moments of the predictor input
$z_1 = W x_1$ and the target output $z_2$,

* `S11` $= E[z_1 z_1^\top]$ (Richemond et al. 2023's $\Sigma = Z_\theta^\top Z_\theta / b$),
* `S12` $= E[z_1 z_2^\top]$ (only [`LRP`][dynsim.components.LRP] and [`NE`][dynsim.components.NE] use it),

and returns $W_p$ in dynsim's **column convention** $p = W_p z_1$ (Richemond et al. write
rows, $ZP$, so $W_p = P^\top$). Gradients never flow through it. Which moments feed it is
the `input` option (the papers differ): `"features"` ($E[z_1z_1^\top]$ of augmented views,
as the DirectPred code does), `"WWt"` ($WW^\top$, Halvagal et al. 2023's toy) or `"WXWt"`
($WXW^\top$, Tian et al. 2021's $F$).

**Spectral** closed forms ([`AbstractSpectral`][dynsim.components.AbstractSpectral]) map each eigenvalue $c_m$ of the symmetrised
`S11` to a predictor eigenvalue $\lambda_m$ in the same eigenbasis; they act mode by mode and so
have an eigenmode form (a user-defined spectral predictor gets one too):

| component | $\lambda_m$ | source |
|---|---|---|
| [`Power`][dynsim.components.Power] | $\vert c_m\vert ^{\alpha} + \varepsilon$ | Halvagal et al. 2023 toy (α = 1, ε = 0) |
| [`DirectPred`][dynsim.components.DirectPred] (`"paper"`) | $\sqrt{c_m} + \varepsilon \max_k c_k$ | Tian et al. 2021, Eq. 18 |
| [`DirectPred`][dynsim.components.DirectPred] (`"code"`) | $\max(\sqrt{c_m/\max_k c_k} + \varepsilon, 10^{-4})$ | the authors' released code (`docs/theory/tian2021.md`) |
| [`DirectSet`][dynsim.components.DirectSet] | $(c_m/\Vert c\Vert )^{\alpha} + \varepsilon$ | Wang et al. 2021; DirectCopy is α = 1 |

The other closed forms act on whole matrices (no eigenmode form unless noted):

|  |  |  |
|---|---|---|
| [`LRP`][dynsim.components.LRP] | $S_{21} S_{11}^{-1}$ (the least-squares predictor) | Richemond et al. 2023 (`docs/theory/richemond_li_wang.md#lrp`) |
| [`NE`][dynsim.components.NE] | $2S_{21} - S_{21}S_{11}$ | Richemond et al. 2023, Prop. 4 |
| [`Visser`][dynsim.components.Visser] | $P_{k+1} = P_k + h(\Sigma - P_k^2)$, $P_0 = I/(2h)$, n steps | Richemond et al. 2023, Prop. 6 |
| [`NS`][dynsim.components.NS] | coupled Newton–Schulz, n steps, $A_n\sqrt{\Vert \Sigma\Vert _F}$ | Richemond et al. 2023, Prop. 7 |
| [`NS2`][dynsim.components.NS2] | [`NS`][dynsim.components.NS] applied twice ($\approx\Sigma^{1/4}$) | Richemond et al. 2023 |
| [`Stiefel`][dynsim.components.Stiefel] | $B_n\Sigma/\Vert B_n\Vert _F$, NS on $\Sigma^2$ | Richemond et al. 2023, Prop. 10 |

The finite-iteration predictors are spectral filters at their iteration counts, not their limits:
[`ns_filter`][dynsim.components.ns_filter], [`stiefel_filter`][dynsim.components.stiefel_filter] and [`visser_filter`][dynsim.components.visser_filter] give the scalar maps.

Every closed form carries the options of the training loop: `ridge` (`+ ridge I`, Richemond et al.'s
predictor ridge), `rho` (per-step EMA decay of the moment estimates, DirectPred's ρ), `pred_ema`
(per-recompute EMA decay of the predictor itself; **rate unconfirmed**) and `freq` (recompute every
`freq` steps, gradient steps at relative learning rate `alpha_p` in between). The flow is the `lr -> 0` limit and ignores `rho`,
`pred_ema` and `freq`; the eigenmode theory needs them at their defaults.
"""

from __future__ import annotations

from typing import Callable, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from dynsim import _checks
from dynsim.components._base import AbstractComponent

#: the scales a closed form may divide its moment by: of a spectrum `c` (last axis) and of a matrix `S`
_SCALES = {"max": (lambda c: jnp.max(c, axis=-1, keepdims=True),
                   lambda S: jnp.max(jnp.linalg.eigvalsh(S), axis=-1)[..., None, None]),
           "frobenius": (lambda c: jnp.sqrt(jnp.sum(c * c, axis=-1, keepdims=True)),
                         lambda S: jnp.sqrt(jnp.sum(S * S, axis=(-2, -1), keepdims=True))),
           "none": (lambda c: 1.0, lambda S: 1.0)}
DIRECTSET_NORMS = ("max", "frobenius", "none")
NE_NORMS = ("none", "max", "frobenius")
DIRECTPRED_CODE_FLOOR = 1e-4  # the released code's clamp


def _sym(A):
    return (A + jnp.swapaxes(A, -1, -2)) / 2


def spectral_map(S, fn):
    """$U\\,\\mathrm{diag}(fn(s))\\,U^\\top$ for the symmetrised `S = U diag(s) U^T`."""
    s, U = jnp.linalg.eigh(_sym(S))
    return (U * fn(s)[..., None, :]) @ jnp.swapaxes(U, -1, -2)


def _feature_moments(W, W_t, data, batch):
    if batch is not None:
        x1, x2, wts = batch
        z1, z2 = x1 @ W.T, x2 @ W_t.T
        return (z1 * wts[:, None]).T @ z1, (z1 * wts[:, None]).T @ z2
    X = data.input_moment
    return W @ (X + data.noise_cov) @ W.T, W @ X @ W_t.T


class _Input(NamedTuple):
    moments: Callable  # (W, W_t, data, batch) -> (S11, S12) at network level
    mode_eigenvalue: Callable  # (w**2, ModeData) -> per-mode eigenvalue of S11
    reads_data: bool  # False when the moments come from the weights alone


#: the `input` options of a closed-form predictor: what it reads at network and at eigenmode level
_INPUTS = {
    "features": _Input(_feature_moments, lambda w2, data: data.lambda_s * w2, True),
    "WWt": _Input(lambda W, W_t, data, batch: (W @ W.T, W @ W_t.T), lambda w2, data: w2, False),
    "WXWt": _Input(lambda W, W_t, data, batch: (W @ data.input_moment @ W.T, W @ data.input_moment @ W_t.T),
                   lambda w2, data: data.lambda_d * w2, True),
}
INPUTS = tuple(_INPUTS)


def input_moments(input: str, W, W_t, data, batch=None):
    r"""The moments $S_{11}, S_{12}$ a closed form reads, for the `input` option (`INPUTS`) and views
    `data` ([`ViewData`][dynsim.networks.ViewData]): `features` $(W(X+X')W^\top, WXW_t^\top)$, or the
    minibatch's $(E_b[z_1z_1^\top], E_b[z_1z_2^\top])$ when a `batch` `(x1, x2, weights)` is given;
    `WWt` $(WW^\top, WW_t^\top)$; `WXWt` $(WXW^\top, WXW_t^\top)$ (the last two from the weights)."""
    return _INPUTS[input].moments(W, W_t, data, batch)


def mode_correlation(input: str, w, data):
    """Per-mode eigenvalues $c_m$ of the `input` moment at eigenmode level (`data` a
    [`ModeData`][dynsim.params.ModeData]): $w^2$ (`WWt`), $\\lambda_dw^2$ (`WXWt`) or
    $\\lambda_sw^2$ (`features`)."""
    return _INPUTS[input].mode_eigenvalue(jnp.asarray(w) ** 2, data)


def input_reads_data(input: str) -> bool:
    """Whether the `input` moments need the data (`features`, `WXWt`) or come from the weights (`WWt`)."""
    return _INPUTS[input].reads_data


class AbstractPredictor(AbstractComponent):
    """A predictor. `trainable`: it has its own gradient dynamics; `closed_form`: a function of the moments."""

    name: ClassVar[str] = ""
    trainable: ClassVar[bool] = False
    closed_form: ClassVar[bool] = False


class Trainable(AbstractPredictor):
    r"""A trained linear predictor, $\dot W_p = -\alpha_p\,\partial_{W_p}\mathcal L - \eta_p W_p$
    (Tian et al. 2021, Eq. 2).

    Attributes:
        alpha_p: $\alpha_p > 0$, predictor learning rate divided by the online one.
        symmetric: symmetrise the gradient (Tian et al.'s Assumption 3, Eq. 7); needs a symmetric start.
    """

    name: ClassVar[str] = "trainable"
    trainable: ClassVar[bool] = True
    alpha_p: float = 1.0
    symmetric: bool = eqx.field(default=False, static=True)

    def check(self):
        self._positive("alpha_p")
        return self

    def rate(self, gradient, W_p, decay):
        """$-\\alpha_p g - \\eta_p W_p$ (`g` symmetrised when `symmetric`)."""
        g = _sym(gradient) if self.symmetric else gradient
        return -self.alpha_p * g - decay * W_p


class Identity(AbstractPredictor):
    """No predictor: $W_p = I$ (per mode, $w_p = 1$)."""

    name: ClassVar[str] = "identity"


class AbstractClosedForm(AbstractPredictor):
    """A predictor computed from the moment estimates (module docstring for the options)."""

    closed_form: ClassVar[bool] = True
    ridge: float = 0.0
    rho: float = 0.0
    pred_ema: float = 0.0
    alpha_p: float = 1.0
    freq: int = eqx.field(default=1, static=True)
    input: str = eqx.field(default="features", static=True)

    def __check_init__(self):
        _checks.check_choice("input", self.input, INPUTS)
        if int(self.freq) < 1:
            raise ValueError(f"freq must be >= 1, got {self.freq}")

    def check(self):
        self._positive("ridge", strict=False)
        self._positive("alpha_p")
        for name in ("rho", "pred_ema"):
            self._in_range(name, 0.0, 1.0 - 1e-12)
        return self

    @property
    def instantaneous(self) -> bool:
        """True when the discrete predictor equals the flow's at every step (no moment or predictor EMA, freq 1)."""
        concrete = _checks.is_concrete(self.rho) and _checks.is_concrete(self.pred_ema)
        return concrete and float(self.rho) == 0 and float(self.pred_ema) == 0 and self.freq == 1

    # --- the input moments (the `input` option) ----------------------------------------------------
    def expected_moments(self, W, W_t, data):
        """Population moments of the predictor input ([`input_moments`][dynsim.components.input_moments])."""
        return input_moments(self.input, W, W_t, data)

    def batch_moments(self, W, W_t, data, batch):
        """Moment estimates from a minibatch or from the weights ([`input_moments`][dynsim.components.input_moments])."""
        return input_moments(self.input, W, W_t, data, batch)

    def mode_correlation(self, w, data):
        """Per-mode eigenvalues of the input moment ([`mode_correlation`][dynsim.components.mode_correlation])."""
        return mode_correlation(self.input, w, data)

    def matrix(self, S11, S12):
        """$W_p$ before the ridge, from the moments (column convention)."""
        raise NotImplementedError

    def __call__(self, S11, S12):
        """$W_p$ from the moments, ridge included."""
        Wp = self.matrix(S11, S12)
        return Wp + self.ridge * jnp.eye(Wp.shape[-1], dtype=Wp.dtype)


class AbstractSpectral(AbstractClosedForm):
    """A closed form acting on the eigenvalues of `S11` alone; subclasses define `eigenvalues`."""

    def eigenvalues(self, c):
        """$\\lambda_m$ from the correlation eigenvalues `c` (modes on the last axis), before the ridge."""
        raise NotImplementedError

    def matrix(self, S11, S12):
        return spectral_map(S11, self.eigenvalues)

    def mode_values(self, c):
        """Per-mode predictor eigenvalues, ridge included (the eigenmode form of `__call__`)."""
        return self.eigenvalues(c) + self.ridge


class Power(AbstractSpectral):
    r"""$\lambda_m = |c_m|^{\alpha} + \varepsilon$ (Halvagal et al. 2023's toy $W_P = (WW^\top)^\alpha$)."""

    name: ClassVar[str] = "power"
    power: float = 1.0
    eps: float = 0.0

    def check(self):
        self._positive("power")
        self._positive("eps", strict=False)
        return super().check()

    def eigenvalues(self, c):
        return jnp.abs(c) ** self.power + self.eps


class DirectPred(AbstractSpectral):
    r"""DirectPred (Tian et al. 2021, Eq. 18): `normalisation="paper"` gives
    $\sqrt{c_m} + \varepsilon\max_k c_k$; `"code"` the released code's
    $\max(\sqrt{c_m/\max_k c_k} + \varepsilon, 10^{-4})$. The two differ in scale, which matters for
    a Euclidean loss."""

    name: ClassVar[str] = "directpred"
    eps: float = 0.0
    normalisation: str = eqx.field(default="paper", static=True)

    def __check_init__(self):
        _checks.check_choice("normalisation", self.normalisation, ("paper", "code"))

    def check(self):
        self._positive("eps", strict=False)
        return super().check()

    def eigenvalues(self, c):
        cmax = jnp.max(c, axis=-1, keepdims=True)
        if self.normalisation == "paper":
            return jnp.sqrt(jnp.maximum(c, 0.0)) + self.eps * cmax
        return jnp.maximum(jnp.sqrt(jnp.maximum(c, 0.0) / cmax) + self.eps, DIRECTPRED_CODE_FLOOR)


class DirectSet(AbstractSpectral):
    r"""DirectSet(α) (Wang et al. 2021): $(c_m/\|c\|)^{\alpha} + \varepsilon$; DirectCopy is α = 1. The
    normalisation `norm` is **unconfirmed**: `"max"` (spectral, default), `"frobenius"` or `"none"`."""

    name: ClassVar[str] = "directset"
    power: float = 1.0
    eps: float = 0.0
    norm: str = eqx.field(default="max", static=True)

    def __check_init__(self):
        _checks.check_choice("norm", self.norm, DIRECTSET_NORMS)

    def check(self):
        self._positive("power")
        self._positive("eps", strict=False)
        return super().check()

    def eigenvalues(self, c):
        scale = _SCALES[self.norm][0](c)
        return (jnp.maximum(c, 0.0) / scale) ** self.power + self.eps


class LRP(AbstractClosedForm):
    r"""The least-squares predictor $W_p = S_{21}S_{11}^{-1}$ (Richemond et al. 2023; `docs/theory/richemond_li_wang.md#lrp`)."""

    name: ClassVar[str] = "lrp"

    def matrix(self, S11, S12):
        return jnp.swapaxes(jnp.linalg.solve(_sym(S11), S12), -1, -2)  # S11 W_p^T = S12


class NE(AbstractClosedForm):
    r"""$W_p = 2S_{21} - S_{21}S_{11}$ (Richemond et al. 2023, Prop. 4); `norm` (**unconfirmed**)
    divides both moments by `max s` or $\|S_{11}\|_F$ first (default `"none"`)."""

    name: ClassVar[str] = "ne"
    norm: str = eqx.field(default="none", static=True)

    def __check_init__(self):
        _checks.check_choice("ne_norm", self.norm, NE_NORMS)

    def matrix(self, S11, S12):
        S21, S = jnp.swapaxes(S12, -1, -2), _sym(S11)
        scale = _SCALES[self.norm][1](S)
        S, S21 = S / scale, S21 / scale
        return 2 * S21 - S21 @ S


def newton_schulz(A0, n: int):
    r"""Coupled Newton–Schulz (Richemond et al. 2023, Prop. 7): $A_{k+1} = \tfrac12 A_k(3I - B_kA_k)$,
    $B_{k+1} = \tfrac12(3I - B_kA_k)B_k$, $B_0 = I$. For $\|A_0\|_2 < 3$,
    $A_n \to A_0^{1/2}$ and $B_n \to A_0^{-1/2}$. Returns `(A_n, B_n)`."""
    eye = jnp.eye(A0.shape[-1], dtype=A0.dtype)

    def body(_, AB):
        A, B = AB
        T = 3 * eye - B @ A
        return 0.5 * A @ T, 0.5 * T @ B

    return jax.lax.fori_loop(0, n, body, (A0, jnp.broadcast_to(eye, A0.shape)))


def ns_sqrt(S, n: int):
    r"""NS predictor: $A_n(\Sigma/\|\Sigma\|_F)\cdot\sqrt{\|\Sigma\|_F} \approx \Sigma^{1/2}$."""
    fro = jnp.sqrt(jnp.sum(S * S, axis=(-2, -1), keepdims=True))
    A, _ = newton_schulz(S / fro, n)
    return A * jnp.sqrt(fro)


def stiefel(S, n: int):
    r"""Stiefel predictor (Prop. 10): NS on $M = \Sigma^\top\Sigma$ gives $B_n \approx (M/\|M\|_F)^{-1/2}$;
    $P = B_n\Sigma^\top/\|B_n\|_F$ (row form; the transpose for symmetric Σ is the same matrix)."""
    M = jnp.swapaxes(S, -1, -2) @ S
    fro = jnp.sqrt(jnp.sum(M * M, axis=(-2, -1), keepdims=True))
    _, B = newton_schulz(M / fro, n)
    P = B @ jnp.swapaxes(S, -1, -2) / jnp.sqrt(jnp.sum(B * B, axis=(-2, -1), keepdims=True))
    return jnp.swapaxes(P, -1, -2)


def visser(S, n: int, h):
    r"""Visser iteration (Prop. 6): $P_0 = I/(2h)$, $P_{k+1} = P_k + h(\Sigma - P_k^2)$, n steps."""
    eye = jnp.eye(S.shape[-1], dtype=S.dtype)
    P0 = jnp.broadcast_to(eye / (2 * h), S.shape)
    return jax.lax.fori_loop(0, n, lambda _, P: P + h * (S - P @ P), P0)


class Visser(AbstractClosedForm):
    """`n_iter` Visser steps of size `step` (Richemond et al. 2023, Prop. 6; `step` **unconfirmed**)."""

    name: ClassVar[str] = "visser"
    step: float = 0.5
    n_iter: int = eqx.field(default=50, static=True)

    def check(self):
        self._positive("step")
        return super().check()

    def matrix(self, S11, S12):
        return visser(_sym(S11), self.n_iter, self.step)


class NS(AbstractClosedForm):
    """`n_iter` coupled Newton–Schulz steps towards $S_{11}^{1/2}$ (Richemond et al. 2023, Prop. 7)."""

    name: ClassVar[str] = "ns"
    n_iter: int = eqx.field(default=9, static=True)

    def matrix(self, S11, S12):
        return ns_sqrt(_sym(S11), self.n_iter)


class NS2(AbstractClosedForm):
    """[`NS`][dynsim.components.NS] applied twice ($\\approx S_{11}^{1/4}$), `n_iter` steps each; the second stage
    renormalises by its own Frobenius norm (**unconfirmed**)."""

    name: ClassVar[str] = "ns2"
    n_iter: int = eqx.field(default=7, static=True)

    def matrix(self, S11, S12):
        return ns_sqrt(_sym(ns_sqrt(_sym(S11), self.n_iter)), self.n_iter)


class Stiefel(AbstractClosedForm):
    """The Stiefel predictor (Richemond et al. 2023, Prop. 10), `n_iter` Newton–Schulz steps."""

    name: ClassVar[str] = "stiefel"
    n_iter: int = eqx.field(default=9, static=True)

    def matrix(self, S11, S12):
        return stiefel(_sym(S11), self.n_iter)


# --- scalar filters (the maps the iterations apply to each eigenvalue) ---------------------------
def ns_filter(lam, n: int):
    """Scalar coupled NS on a normalised eigenvalue `lam` in (0, 1]: returns `(a_n, b_n)`."""
    a, b = jnp.asarray(lam, float), jnp.ones_like(jnp.asarray(lam, float))
    for _ in range(n):
        t = 3 - b * a
        a, b = 0.5 * a * t, 0.5 * t * b
    return a, b


def stiefel_filter(s, n: int):
    """Eigenvalues of the Stiefel predictor for a PSD Σ with eigenvalues `s`."""
    s = jnp.asarray(s, float)
    m = s * s
    _, b = ns_filter(m / jnp.sqrt(jnp.sum(m * m)), n)
    return b * s / jnp.sqrt(jnp.sum(b * b))


def visser_filter(s, n: int, h):
    """Eigenvalues after `n` Visser steps from `1/(2h)` (converges to `sqrt(s)`)."""
    p = jnp.full_like(jnp.asarray(s, float), 1 / (2 * h))
    for _ in range(n):
        p = p + h * (s - p * p)
    return p


PREDICTORS = {cls.name: cls for cls in (Trainable, Identity, Power, DirectPred, DirectSet, LRP, NE, Visser, NS, NS2,
                                        Stiefel)}
