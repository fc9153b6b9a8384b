r"""Small linear SSL networks (online $W$, predictor $W_p$, target $W_a$) trained by
expected-gradient flow, discrete GD with exact expected gradients, or minibatch SGD.

[`SSLNet`][dynsim.networks.SSLNet] is the option-string preset of [`dynsim.Network`][dynsim.models.Network]: its strings name components
([`dynsim.components`][dynsim.components]) and its [`NetParams`][dynsim.networks.NetParams] hold their parameters; every computation is the
[`Network`][dynsim.models.Network] that `SSLNet.family` assembles. The equations below are that model's.

One gradient, three trainings. For a batch `(x1, x2, weights)` (`dynsim.networks.data`)
with $z_1 = W x_1$, $p = W_p z_1$, $z_2 = \mathrm{sg}(W_t x_2)$ and the per-sample
loss $\ell$ (`dynsim.networks.losses`), the loss is $\sum_b w_b\,\ell_b$ and

$$
\dot W = -\partial_W \mathcal L - \eta W,\qquad
\dot W_p = -\alpha_p\,\partial_{W_p}\mathcal L - \eta_p W_p,\qquad
\dot W_a = \beta (W - W_a),
$$

(Tian et al. 2021 Lemma 1, Eqs. 2-4, generalised to any loss, with separate weight decays
$\eta$ = `wd` on $W$ and $\eta_p$ = `wd_p` on $W_p$). With the exact
quadrature nodes the Euclidean right-hand side *is* Lemma 1 (tested against
[`TianMatrixFlow`][dynsim.analytic.reference.TianMatrixFlow] to round-off).

* **flow** (`SSLNet.__call__`, a model for [`dynsim.solve`][dynsim.solvers.solve]): expected gradients; a
  closed-form predictor is the instantaneous function of the current moments.
* **gd** ([`dynsim.networks.train`][dynsim.networks.train] with `batch=None`): the same expected gradient, one explicit
  Euler step per iteration, $t = \mathrm{lr}\cdot k$ (exactly Euler on the flow when
  `rho = 0`, `freq = 1` and `ema_after_step=False`).
* **sgd** (`batch=B`): fresh minibatches; closed-form predictors see the batch moments.

Per step (DirectPred code order, Tian et al. 2021): (1) moments of the predictor input, EMA'd with
`rho` into the state's `S11`/`S12`; (2) every `freq` steps a closed-form predictor is
recomputed, $W_p \leftarrow \rho_P W_p + (1-\rho_P)\,\mathrm{closed}(S_{11}, S_{12})$ (`pred_ema`
= $\rho_P$, Richemond's predictor EMA), and between recomputations it takes gradient steps;
(3) gradient step on $W$ (and a trainable $W_p$); (4) target
$W_a \leftarrow W_a + \mathrm{lr}\,\beta\,(W_\mathrm{ref} - W_a)$ with the per-step EMA decay
$1 - \mathrm{lr}\,\beta \in [0, 1]$, $W_\mathrm{ref}$ the pre-step online weights (Euler)
or the updated ones (`ema_after_step=True`, as BYOL code does; an $O(\mathrm{lr}^2)$ difference).

Shapes: `W`, `W_a`: `(n2, n1)`; `W_p`, `S11`, `S12`: `(n2, n2)`.
`args = (NetParams, ViewData)`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax

from dynsim import _checks, targets
from dynsim import components as cp
from dynsim.models import NetState, Network
from dynsim.networks import _predictors as cf
from dynsim.networks._data import ViewData
from dynsim.networks._losses import LOSSES

TRAINABLE = ("trainable", "symmetric")
PREDICTORS = TRAINABLE + ("identity",) + cf.CLOSED_FORMS
TARGETS = ("ema", "online")
PREDICTOR_INPUTS = cp.INPUTS
EXPECTATIONS = ("auto", "exact", "quadratic", "nodes", "empirical")


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class NetParams:
    r"""Traced hyper-parameters of a network simulation, in ODE units ([`dynsim.units`][dynsim.units]).

    Attributes:
        alpha_p: predictor learning rate / online learning rate (`> 0`).
        beta: target EMA rate, $\dot W_a = \beta(W - W_a)$; per-step decay is `1 - lr*beta`.
        wd: weight decay $\eta$ on `W` (1/time, `>= 0`).
        wd_p: weight decay $\eta_p$ on `W_p` (1/time, `>= 0`; Tian's theory has `wd_p = wd`).
        rho: per-step EMA decay of the predictor-input moment estimates (DirectPred's ρ, `[0, 1)`;
            `0` = current moments; ignored by the flow, which is the `lr -> 0` limit).
        pred_ema: per-recompute EMA decay of a closed-form predictor (Richemond's predictor EMA,
            `[0, 1)`; **rate unconfirmed**, default `0` = none).
        power: exponent α of `power` / `directset`.
        eps: DirectPred's ε / DirectSet's `+εI`.
        ridge: `+ ridge I` on every closed form (Richemond's predictor ridge α). Because the EMA is
            linear, adding it before or after `pred_ema` gives the same predictor.
        visser_step: Visser's step `h` (**unconfirmed**; default 0.5).
    """

    alpha_p: jax.Array | float = 1.0
    beta: jax.Array | float = 1.0
    wd: jax.Array | float = 0.0
    wd_p: jax.Array | float = 0.0
    rho: jax.Array | float = 0.0
    pred_ema: jax.Array | float = 0.0
    power: jax.Array | float = 1.0
    eps: jax.Array | float = 0.0
    ridge: jax.Array | float = 0.0
    visser_step: jax.Array | float = 0.5

    def validate(self) -> "NetParams":
        _checks.check_positive("NetParams.alpha_p", self.alpha_p)
        for name in ("beta", "wd", "wd_p", "eps", "ridge"):
            _checks.check_positive(f"NetParams.{name}", getattr(self, name), strict=False)
        _checks.check_positive("NetParams.power", self.power)
        _checks.check_positive("NetParams.visser_step", self.visser_step)
        for name in ("rho", "pred_ema"):
            _checks.check_in_range(f"NetParams.{name} (an EMA decay)", getattr(self, name), 0.0, 1.0 - 1e-12)
        return self

    def replace(self, **changes) -> "NetParams":
        return replace(self, **changes)


def _unpack(args):
    """`(NetParams, ViewData)` from `args`, with a clear `TypeError` otherwise."""
    return _checks.unpack_args(args, NetParams, ViewData)


@dataclass(frozen=True)
class SSLNet:
    """A linear non-contrastive SSL network; every option is static (module docstring for the math).

    Attributes:
        loss: `"euclidean"`, `"cosine"`, `"euclidean_iso"`, `"cosine_iso"` (`losses`).
        predictor: `"trainable"` (Eq. 2), `"symmetric"` (its gradient symmetrised, Tian's Assumption 3),
            `"identity"` (no predictor) or a closed form of `dynsim.networks.predictors`.
        target: `"ema"` (BYOL) or `"online"` (SimSiam, $W_a \\equiv W$).
        stop_gradient: `False` lets the gradient through the target (`target="online"` only).
        symmetric_loss: average the loss over both view orders (Tian's symmetrised loss).
        predictor_input: moments fed to a closed form: `"features"` ($E[z_1z_1^\\top]$, the DirectPred
            code and Richemond; default), `"WWt"` ($WW^\\top$, Halvagal's toy), `"WXWt"` (Tian's F).
        norm: DirectSet normalisation (`"max"`, `"frobenius"`, `"none"`; unconfirmed).
        ne_norm: NE pre-normalisation (`"none"`, `"max"`, `"frobenius"`; unconfirmed).
        n_iter: iterations of Visser/NS/NS²/Stiefel (`None`: 50/9/7/9).
        freq: recompute a closed-form predictor every `freq` steps (gradient steps in between).
        expectation: `"quadratic"` (exact nodes, Euclidean losses), `"exact"` (quadratic for the Euclidean
            losses, the exact Gaussian expectation [`GaussianExact`][dynsim.components.GaussianExact] for the cosine ones),
            `"nodes"` (QMC nodes), `"empirical"` (every pair of a data set's views,
            [`Empirical`][dynsim.components.Empirical]: [`dynsim.data.AugmentedViews`][dynsim.data.AugmentedViews]), or
            `"auto"` (`"exact"` on Gaussian views; on a finite dataset, nodes for the cosine losses).
        n_nodes: QMC node count for `"nodes"` (and `"auto"` with a cosine loss on a finite dataset; a power of
            two).
        seed: seed of the QMC node set.
        ema_after_step: update the target from the post-step online weights (BYOL code) instead of
            the pre-step ones (Euler).
        sample_precision: dtype of the minibatch's standard normals, `"float32"` (default: about 3x
            faster on CPU; sampling noise ~ 1/sqrt(batch) dwarfs float32 rounding) or `"state"`.
        sgd_sampling: `"samples"` (draw the minibatch), `"moments"` (draw its Wishart second moments,
            `ViewData.moment_batch`: the same law of every step for the Euclidean losses, whose
            gradients depend on the batch only through those moments, at a cost independent of the
            batch size), or `"auto"`: moments for Euclidean losses on fresh Gaussian data with
            `batch >= 2 n1`, samples otherwise.
        predictor_timing: `"current"` (default: a closed-form predictor from moments that include the step's
            batch) or `"previous"` (the one set at the end of the previous step, the DirectPred reference
            code's order); [`Network`][dynsim.models.Network].
    """

    loss: str = "euclidean"
    predictor: str = "trainable"
    target: str = "ema"
    stop_gradient: bool = True
    symmetric_loss: bool = False
    predictor_input: str = "features"
    norm: str = "max"
    ne_norm: str = "none"
    n_iter: int | None = None
    freq: int = 1
    expectation: str = "auto"
    n_nodes: int = 4096
    seed: int = 0
    ema_after_step: bool = False
    sample_precision: str = "float32"
    sgd_sampling: str = "auto"
    predictor_timing: str = "current"

    def __post_init__(self):
        _checks.check_choice("loss", self.loss, LOSSES)
        _checks.check_choice("predictor", self.predictor, PREDICTORS)
        _checks.check_choice("target", self.target, TARGETS)
        _checks.check_choice("predictor_input", self.predictor_input, PREDICTOR_INPUTS)
        _checks.check_choice("expectation", self.expectation, EXPECTATIONS)
        cf.check_options(self.predictor, self.norm, self.ne_norm)
        if self.expectation == "quadratic" and self.loss.startswith("cosine"):  # named in this preset's words
            raise ValueError("expectation='quadratic' is exact only for the Euclidean losses; use 'nodes'")
        if int(self.freq) < 1:  # checked for every predictor (the components see it for closed forms only)
            raise ValueError(f"freq must be >= 1, got {self.freq}")
        if self.n_iter is not None and int(self.n_iter) < 1:
            raise ValueError(f"n_iter must be >= 1, got {self.n_iter}")
        self.family()  # the components check the rest (sampling, stop-gradient, IsoLoss, node count)

    # --- the model this preset names ---------------------------------------------------------------
    def family(self, params: NetParams | None = None) -> Network:
        """The [`Network`][dynsim.models.Network] with these options and `params`' values (defaults when `None`)."""
        params = NetParams() if params is None else params
        loss = cp.LOSSES[self.loss.removesuffix("_iso")](iso=self.loss.endswith("_iso"))
        target = targets.component(self.target, beta=params.beta, stop_gradient=self.stop_gradient)
        expectation = {"auto": cp.Auto(int(self.n_nodes), int(self.seed)), "quadratic": cp.SecondMoments(),
                       "exact": cp.SecondMoments() if loss.quadratic else cp.GaussianExact(),
                       "nodes": cp.GaussianNodes(int(self.n_nodes), int(self.seed)),
                       "empirical": cp.Empirical()}[self.expectation]
        predictor = cf.network_predictor(self.predictor, params, input=self.predictor_input, norm=self.norm,
                                      ne_norm=self.ne_norm, n_iter=self.n_iter, freq=int(self.freq))
        return Network(loss=loss, predictor=predictor, target=target, expectation=expectation, weight_decay=params.wd,
                       predictor_weight_decay=params.wd_p, symmetric_loss=self.symmetric_loss,
                       ema_after_step=self.ema_after_step, sample_precision=self.sample_precision,
                       sgd_sampling=self.sgd_sampling, predictor_timing=self.predictor_timing)

    # --- options ---------------------------------------------------------------------------------
    @property
    def closed_form(self) -> bool:
        return self.predictor in cf.CLOSED_FORMS

    @property
    def iterations(self) -> int:
        return int(self.n_iter) if self.n_iter is not None else cf.DEFAULT_ITERATIONS.get(self.predictor, 0)

    @property
    def uses_quadratic_nodes(self) -> bool:
        return isinstance(self.family().resolved_expectation, cp.SecondMoments)

    @property
    def rhs_work_factor(self) -> int:
        return self.family().rhs_work_factor

    def samples_moments(self, data: ViewData, batch: int) -> bool:
        """Whether SGD draws the minibatch's moments instead of its samples (`sgd_sampling`)."""
        return self.family().samples_moments(data, batch)

    def sampler(self, data: ViewData, batch: int):
        """`key -> (x1, x2, weights)` for SGD (`dynsim.Network.sampler`)."""
        return self.family().sampler(data, batch)

    def expectation_nodes(self, data: ViewData):
        """The deterministic batch whose weighted loss is the expected loss (exact or QMC)."""
        return self.family().expectation_nodes(data)

    # --- pieces (each the Network's) ---------------------------------------------------------------
    def target_weights(self, y: NetState):
        """The target network the loss sees: `W_a` (ema) or `W` (online)."""
        return self.family().target_weights(y)

    def expected_moments(self, W, W_t, data: ViewData):
        """Population $S_{11}, S_{12}$ of the predictor input (`dynsim.Network.expected_moments`)."""
        return cp.input_moments(self.predictor_input, W, W_t, data)

    def batch_moments(self, W, W_t, data: ViewData, batch):
        """Moment estimates from a minibatch or from the weights (`dynsim.Network.batch_moments`)."""
        return cp.input_moments(self.predictor_input, W, W_t, data, batch)

    def closed_predictor(self, S11, S12, params: NetParams):
        """The closed-form $W_p$ from moment estimates (no gradient flows through it)."""
        return self.family(params).closed_predictor(S11, S12)

    def loss_value(self, W, W_p, W_t, batch):
        """$\\sum_b w_b \\ell_b$ (averaged over both view orders if `symmetric_loss`)."""
        return self.family().loss_value(W, W_p, W_t, batch)

    def gradients(self, y: NetState, W_p, batch):
        """`(dL/dW, dL/dW_p)` at predictor `W_p` (SimSiam without stop-gradient: the target is `W` too)."""
        return self.family().gradients(y, W_p, batch)

    def predictor_now(self, y: NetState, args):
        """The predictor the flow uses at state `y` (closed forms: from the current expected moments)."""
        params, data = _unpack(args)
        return self.family(params).predictor_now(y, data)

    def __call__(self, t, y: NetState, args) -> NetState:
        params, data = _unpack(args)
        return self.family(params)(t, y, data)

    def step(self, y: NetState, k, batch, expected: bool, lr, args) -> NetState:
        """One GD (`expected=True`: `batch` are the expectation nodes) or SGD step `k`."""
        params, data = _unpack(args)
        return self.family(params).step(y, k, batch, expected, lr, data)

    # --- states and checks ---------------------------------------------------------------------
    def initial_state(self, W, W_p=None, W_a=None, args=None) -> NetState:
        """A consistent start: `W_a` = 0 for an EMA target with a Euclidean loss (Tian's $W_a(0)=0$),
        `W` with a cosine loss (BYOL's copy; a zero target has no direction), unless given; `W` (online);
        `W_p` given for trainable predictors, `I` without one, and for closed forms computed from the
        expected moments at `W` (`args` needed), which also initialise `S11`, `S12`."""
        if self.predictor in TRAINABLE and W_p is None:
            raise ValueError(f"predictor={self.predictor!r} needs an initial W_p")
        if self.closed_form and args is None:
            raise ValueError("a closed-form predictor needs args=(NetParams, ViewData) to set W_p, S11, S12")
        params, data = _unpack(args) if args is not None else (None, None)
        return self.family(params).initial_state(W, W_p, W_a, data)

    def validate(self, y0, args) -> None:
        params, data = _unpack(args)
        params.validate()
        self.family(params).validate(y0, data)
