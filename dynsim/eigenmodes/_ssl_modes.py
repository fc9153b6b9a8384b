r"""One per-mode model family for linear non-contrastive SSL: Euclidean or cosine loss,
trainable or closed-form predictor, EMA / SimSiam / no-stop-gradient target, IsoLoss, weight decay.

[`SSLModes`][dynsim.eigenmodes.SSLModes] is the option-string preset of [`dynsim.Modes`][dynsim.models.Modes]: its strings name components
([`dynsim.components`][dynsim.components]) and `args = (TianParams, ModeData, PredictorParams)` hold their parameters;
every computation is the [`Modes`][dynsim.models.Modes] model that `SSLModes.family` assembles (the loss
components define the per-mode drives below once, for every level).

State [`ModeState`][dynsim.models.ModeState] `(w, w_p, w_a)`, one entry per mode: online
amplitude $w_m$ ($c_m = w_m^2$ is the eigenvalue of $WW^\top$), predictor
eigenvalue $w_{p,m} = \lambda_m$, target amplitude $w_{a,m}$. Mode $m$ sees
data with $E[u_1^2] = \lambda_s$, $E[u_1u_2] = \lambda_d$ ([`ModeData`][dynsim.params.ModeData];
Halvagal's $k = 1+\sigma^2 = \lambda_s/\lambda_d$). `args = (TianParams, ModeData,
PredictorParams)`; `PredictorParams` may be omitted. Time: $t = \mathrm{lr}\cdot$ steps.

**Euclidean loss** (Tian et al. 2021 App. D.4; Halvagal et al. 2023), with
$\bar w$ the target seen by the loss (`dynsim.targets`) and $r = \bar w\lambda_d - \lambda w\lambda_s$:

$$
\dot w = \lambda r - \eta w \quad(\text{IsoLoss: } \dot w = r - \eta w),\qquad
\dot w_p = \alpha_p r w - \eta w_p \ (\text{trainable}).
$$

Without stop-gradient $\dot w = -w[(\lambda^2+1)\lambda_s - 2\lambda\lambda_d] - \eta w$.
For $\lambda = c^\alpha$, $\bar w = w$: $\dot c = 2c^{1+\alpha}(1-kc^\alpha)$ (Halvagal).

**Cosine loss** $\mathcal L = -\cos(p, z_2)$ with $z_1 = w\,u_1$, $z_2 = \bar w\,u_2$,
$p = \lambda z_1$ (Halvagal): $\dot w_m = -E[g_m u_{1,m}] - \eta w_m$ with
$g = \lambda\,\partial\mathcal L/\partial p$ (IsoLoss: $g = \partial\mathcal L/\partial p$),
$\partial\mathcal L/\partial p = -[z_2/(\|p\|\|z_2\|) - (p\cdot z_2)\,p/(\|p\|^3\|z_2\|)]$, and a trainable
predictor gets $\dot w_{p,m} = -\alpha_p E[(\partial\mathcal L/\partial p)_m z_{1,m}] - \eta w_{p,m}$.
The Gaussian expectation couples the modes. `expectation="exact"` evaluates it exactly, as the
two-radius integral of [`dynsim.components.mode_cosine_expectation`][dynsim.components.mode_cosine_expectation] (a smooth 2-D integral carried to
round-off by a fixed double-exponential rule; [`dynsim.components.GaussianExact`][dynsim.components.GaussianExact]), with the drives by
automatic differentiation. `expectation="nodes"` uses a fixed set of `n_nodes` scrambled-Sobol Gaussian
nodes from `seed` instead (common random numbers: smooth in the state, so adaptive steps work, but biased
by the same node error at every step). `SSLModes.expectation_error` estimates either error. Because
$\partial\mathcal L/\partial p \perp p$ sample by sample, the conservation of $\mathrm{tr}\,C$
(cosine) and $\sum c^{1+\alpha}$ (cosine IsoLoss with `power`) holds for both.
`expectation="mean_field"` replaces the norms by their RMS values (Halvagal, **approximate**: right
fixed points, transients off by 10-30 %):

$$
\dot w_m \approx \lambda_m\Big[\frac{\bar w_m\lambda_d}{N_pN_z} - \frac{A\,\lambda_m w_m\lambda_s}{N_p^3N_z}\Big] - \eta w_m,\quad
N_p^2 = \sum_j\lambda_j^2w_j^2\lambda_s,\ N_z^2 = \sum_j\bar w_j^2\lambda_s,\ A = \sum_j\lambda_jw_j\bar w_j\lambda_d .
$$

**Closed-form predictors** (`dynsim.eigenmodes.predictors`) take the eigenvalues of the
predictor input's correlation. Which correlation is **unconfirmed** across the papers, so it is an
option, `predictor_input`: `"WWt"` ($c = w^2$, Halvagal's toy; default), `"WXWt"`
($\lambda_d w^2$, Tian's $F$), `"features"` ($\lambda_s w^2$, $E[ff^\top]$ of augmented
views as in the DirectPred code). For closed-form predictors the state's `w_p` follows
$\lambda(c(t))$ (its derivative is the chain rule), so trajectories record the predictor.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp

from dynsim import _checks, targets
from dynsim import components as cp
from dynsim.components import gaussian_nodes
from dynsim.eigenmodes._predictors import KINDS, NORMS, PredictorParams, spectral_predictor
from dynsim.models import ModeState, Modes
from dynsim.params import ModeData, TianParams
from dynsim.solvers import CollapseEvent

LOSSES = tuple(cp.LOSSES)  # the component losses by name
PREDICTORS = ("trainable", "identity") + KINDS
EXPECTATIONS = ("exact", "nodes", "mean_field")
PREDICTOR_INPUTS = ("WWt", "WXWt", "features")

__all__ = ["EXPECTATIONS", "LOSSES", "PREDICTORS", "PREDICTOR_INPUTS", "SSLModes", "gaussian_nodes"]


def _split_args(args):
    if isinstance(args, tuple) and len(args) == 2:
        args = (*args, PredictorParams())
    try:
        params, data, pred = args
    except (TypeError, ValueError):
        raise TypeError("args must be (TianParams, ModeData[, PredictorParams])") from None
    for obj, cls in ((params, TianParams), (data, ModeData), (pred, PredictorParams)):
        if not isinstance(obj, cls):
            raise TypeError(f"args must be (TianParams, ModeData[, PredictorParams]); got {type(obj).__name__} "
                            f"where {cls.__name__} belongs")
    return params, data, pred


@dataclass(frozen=True)
class SSLModes:
    """Per-mode non-contrastive SSL dynamics; options (all static) in the module docstring.

    Attributes:
        loss: `"euclidean"` or `"cosine"`.
        predictor: `"trainable"` (Tian's w_p ODE), `"identity"` (no predictor) or a closed form
            `"power"`, `"directpred_paper"`, `"directpred_code"`, `"directset"`.
        target: `"ema"`, `"online"` (SimSiam) or `"fixed_tau"` (see [`dynsim.targets`][dynsim.targets]).
        stop_gradient: `False` lets the gradient through the target (needs `target="online"`).
        iso: IsoLoss (Halvagal): the online update uses $\\partial\\mathcal L/\\partial p$
            in place of $W_P^\\top\\partial\\mathcal L/\\partial p$ (closed-form predictors only).
        predictor_input: which correlation feeds a closed-form predictor (module docstring).
        norm: DirectSet normalisation, `"max"` (default), `"frobenius"` or `"none"`.
        expectation: cosine only, `"exact"` (the two-radius integral), `"nodes"` (fixed QMC nodes) or
            `"mean_field"` (approximate).
        n_nodes: number of Gaussian nodes of `expectation="nodes"` (a power of two).
        seed: seed of the node set.
    """

    loss: str = "euclidean"
    predictor: str = "power"
    target: str = "online"
    stop_gradient: bool = True
    iso: bool = False
    predictor_input: str = "WWt"
    norm: str = "max"
    expectation: str = "exact"
    n_nodes: int = 4096
    seed: int = 0

    def __post_init__(self):
        _checks.check_choice("loss", self.loss, LOSSES)
        targets.check_target_options(self.target, self.predictor, PREDICTORS, self.stop_gradient)
        _checks.check_choice("predictor_input", self.predictor_input, PREDICTOR_INPUTS)
        _checks.check_choice("norm", self.norm, NORMS)
        _checks.check_choice("expectation", self.expectation, EXPECTATIONS)
        if self.iso and self.predictor in ("trainable", "identity"):
            raise ValueError("iso=True is defined for closed-form predictors only (Halvagal et al. 2023)")
        if self.iso and not self.stop_gradient:
            raise ValueError("iso=True needs the stop-gradient")
        n = int(self.n_nodes)
        if n < 2 or n & (n - 1):
            raise ValueError(f"n_nodes must be a power of two >= 2, got {self.n_nodes}")

    # --- the model this preset names ---------------------------------------------------------------
    def family(self, params: TianParams | None = None, pred: PredictorParams | None = None) -> Modes:
        """The [`Modes`][dynsim.models.Modes] model with these options and the values of `params` and `pred`."""
        params = TianParams() if params is None else params
        pred = PredictorParams() if pred is None else pred
        if self.predictor == "trainable":
            predictor = cp.Trainable(alpha_p=params.alpha_p)
        elif self.predictor == "identity":
            predictor = cp.Identity()
        else:
            predictor = spectral_predictor(self.predictor, pred, self.norm, input=self.predictor_input)
        expectation = {"mean_field": cp.MeanField(),  # "exact": the closed forms, or the cosine two-radius integral
                       "exact": cp.Auto(int(self.n_nodes), int(self.seed)),
                       "nodes": cp.GaussianNodes(int(self.n_nodes), int(self.seed))}[self.expectation]
        loss = cp.LOSSES[self.loss](iso=self.iso)
        target = targets.component(self.target, params.beta, params.tau, self.stop_gradient)
        return Modes(loss=loss, predictor=predictor, target=target, expectation=expectation, weight_decay=params.eta,
                     predictor_weight_decay=params.eta_p)

    @property
    def rhs_work_factor(self) -> int:
        """Elements touched per state element by one right-hand side (sizes batch chunks on CPU)."""
        return self.family().rhs_work_factor

    # --- predictor ---------------------------------------------------------------------------
    def correlation_eigenvalues(self, w, data: ModeData):
        """Eigenvalues $c_m$ fed to a closed-form predictor (`predictor_input`)."""
        return cp.mode_correlation(self.predictor_input, w, data)

    def predictor_values(self, w, data: ModeData, pred: PredictorParams):
        """Closed-form $\\lambda_m(w)$."""
        return self.family(pred=pred).predictor_values(w, data)

    # --- right-hand side ---------------------------------------------------------------------
    def __call__(self, t, y: ModeState, args) -> ModeState:
        params, data, pred = _split_args(args)
        return self.family(params, pred)(t, y, data)

    def after_step(self, y: ModeState, args) -> ModeState:
        """`dynsim.Modes.after_step` of `family` (a closed-form predictor's $w_p$ recomputed)."""
        params, data, pred = _split_args(args)
        return self.family(params, pred).after_step(y, data)

    def expectation_error(self, y: ModeState, args, n_groups: int = 16):
        r"""Error estimate of the cosine expectation in $\dot w$ (shape `(M,)`; `dynsim.Modes.expectation_error`):
        for `"exact"` the change when the rule's step doubles (an overestimate: the rule converges exponentially);
        for `"nodes"` the standard error from `n_groups` disjoint balanced blocks of the node set."""
        if self.loss != "cosine" or self.expectation == "mean_field":
            raise ValueError("expectation_error applies to loss='cosine' with expectation='exact' or 'nodes'")
        params, data, pred = _split_args(args)
        return self.family(params, pred).expectation_error(y, data, n_groups)

    # --- states, conserved quantities, checks -----------------------------------------------
    def initial_state(self, w, w_p=None, w_a=None, params: TianParams | None = None, data: ModeData | None = None,
                      pred: PredictorParams | None = None) -> ModeState:
        """Consistent state: `w_p = lambda(c(w))` for closed-form predictors (needs `data` unless
        `predictor_input='WWt'`), `1` without a predictor, given (default 1) when trainable;
        the target as in [`dynsim.targets.initial_target`][dynsim.targets.initial_target]."""
        if self.target == "fixed_tau" and params is None:
            raise ValueError("target='fixed_tau' needs params to set the target to tau * online")
        if self.predictor not in ("trainable", "identity") and data is None and self.predictor_input != "WWt":
            raise ValueError(f"predictor_input={self.predictor_input!r} needs data to set w_p")
        return self.family(params, pred).initial_state(w, w_p, w_a, data)

    @staticmethod
    def mode_strength(y: ModeState):
        """$c_m = w_m^2$, the eigenvalue of $WW^\\top$."""
        return Modes.mode_strength(y)

    def collapse_event(self, threshold: float = 1e-6) -> CollapseEvent:
        return Modes().collapse_event(threshold)

    @staticmethod
    def trace(y: ModeState):
        r"""$\mathrm{tr}\,C = \sum_m c_m$, conserved by the cosine loss without weight decay."""
        return jnp.sum(jnp.asarray(y.w) ** 2, axis=-1)

    @staticmethod
    def power_sum(y: ModeState, alpha):
        r"""$\sum_m c_m^{1+\alpha}$, conserved by cosine IsoLoss with $\lambda = c^\alpha$ (no weight decay)."""
        return jnp.sum(jnp.abs(jnp.asarray(y.w)) ** (2 * (1 + alpha)), axis=-1)

    def conserved_quantity(self, y: ModeState, args):
        r"""The quantity this configuration conserves without weight decay, evaluated on `y` (any
        leading axes, e.g. a saved trajectory): $\mathrm{tr}\,C$ for the cosine loss,
        $\sum c^{1+\alpha}$ for cosine IsoLoss with the `power` predictor (Halvagal;
        SimSiam target, stop-gradient). Raises `ValueError` for configurations without one."""
        _, _, pred = _split_args(args)
        if self.loss != "cosine" or not self.stop_gradient or self.target != "online":
            raise ValueError("only the cosine loss with a SimSiam target and stop-gradient conserves a quantity")
        if not self.iso:
            return self.trace(y)
        if self.predictor != "power" or self.predictor_input != "WWt":
            raise ValueError("cosine IsoLoss conserves sum c^(1+alpha) for predictor='power', predictor_input='WWt'")
        return self.power_sum(y, pred.power)

    def validate(self, y0, args) -> None:
        params, data, pred = _split_args(args)
        params.validate()
        pred.validate()
        self.family(params, pred).validate(y0, data)
