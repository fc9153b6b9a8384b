r"""Small linear SSL networks (online :math:`W`, predictor :math:`W_p`, target :math:`W_a`) trained by
expected-gradient flow, discrete GD with exact expected gradients, or minibatch SGD.

One gradient, three trainings. For a batch ``(x1, x2, weights)`` (:mod:`dynsim.networks.data`)
with :math:`z_1 = W x_1`, :math:`p = W_p z_1`, :math:`z_2 = \mathrm{sg}(W_t x_2)` and the per-sample
loss :math:`\ell` (:mod:`dynsim.networks.losses`), the loss is :math:`\sum_b w_b\,\ell_b` and

.. math::
    \dot W = -\partial_W \mathcal L - \eta W,\qquad
    \dot W_p = -\alpha_p\,\partial_{W_p}\mathcal L - \eta_p W_p,\qquad
    \dot W_a = \beta (W - W_a),

(Tian et al. 2021 Lemma 1, Eqs. 2-4, generalised to any loss, with separate weight decays
:math:`\eta` = ``wd`` on :math:`W` and :math:`\eta_p` = ``wd_p`` on :math:`W_p`). With the exact
quadrature nodes the Euclidean right-hand side *is* Lemma 1 (tested against
:class:`~dynsim.networks.TianMatrixFlow` to round-off).

* **flow** (:meth:`SSLNet.__call__`, a model for :func:`dynsim.solve`): expected gradients; a
  closed-form predictor is the instantaneous function of the current moments.
* **gd** (:func:`dynsim.networks.train` with ``batch=None``): the same expected gradient, one explicit
  Euler step per iteration, :math:`t = \mathrm{lr}\cdot k` (exactly Euler on the flow when
  ``rho = 0``, ``freq = 1`` and ``ema_after_step=False``).
* **sgd** (``batch=B``): fresh minibatches; closed-form predictors see the batch moments.

Per step (DirectPred code order, tian2021.md §4.9): (1) moments of the predictor input, EMA'd with
``rho`` into the state's ``S11``/``S12``; (2) every ``freq`` steps a closed-form predictor is
recomputed, :math:`W_p \leftarrow \rho_P W_p + (1-\rho_P)\,\mathrm{closed}(S_{11}, S_{12})` (``pred_ema``
= :math:`\rho_P`, Richemond's predictor EMA), and between recomputations it takes gradient steps;
(3) gradient step on :math:`W` (and a trainable :math:`W_p`); (4) target
:math:`W_a \leftarrow W_a + \mathrm{lr}\,\beta\,(W_\mathrm{ref} - W_a)` with the per-step EMA decay
:math:`1 - \mathrm{lr}\,\beta \in [0, 1]`, :math:`W_\mathrm{ref}` the pre-step online weights (Euler)
or the updated ones (``ema_after_step=True``, as BYOL code does; an :math:`O(\mathrm{lr}^2)` difference).

Shapes: ``W``, ``W_a``: ``(n2, n1)``; ``W_p``, ``S11``, ``S12``: ``(n2, n2)``.
``args = (NetParams, ViewData)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from dynsim import _checks
from dynsim.networks import predictors as cf
from dynsim.networks.data import ViewData
from dynsim.networks.losses import LOSS_FUNCTIONS, LOSSES

TRAINABLE = ("trainable", "symmetric")
PREDICTORS = TRAINABLE + ("identity",) + cf.CLOSED_FORMS
TARGETS = ("ema", "online")
PREDICTOR_INPUTS = ("features", "WWt", "WXWt")
EXPECTATIONS = ("auto", "quadratic", "nodes")


class NetState(NamedTuple):
    """Online ``W`` (n2, n1), predictor ``W_p`` (n2, n2), target ``W_a`` (n2, n1), and the running
    moment estimates ``S11``, ``S12`` (n2, n2) that feed closed-form predictors."""

    W: jax.Array
    W_p: jax.Array
    W_a: jax.Array
    S11: jax.Array
    S12: jax.Array


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class NetParams:
    r"""Traced hyper-parameters of a network simulation, in ODE units (:mod:`dynsim.units`).

    Attributes:
        alpha_p: predictor learning rate / online learning rate (``> 0``).
        beta: target EMA rate, :math:`\dot W_a = \beta(W - W_a)`; per-step decay is ``1 - lr*beta``.
        wd: weight decay :math:`\eta` on ``W`` (1/time, ``>= 0``).
        wd_p: weight decay :math:`\eta_p` on ``W_p`` (1/time, ``>= 0``; Tian's theory has ``wd_p = wd``).
        rho: per-step EMA decay of the predictor-input moment estimates (DirectPred's ρ, ``[0, 1)``;
            ``0`` = current moments; ignored by the flow, which is the ``lr -> 0`` limit).
        pred_ema: per-recompute EMA decay of a closed-form predictor (Richemond's predictor EMA,
            ``[0, 1)``; **rate unconfirmed**, default ``0`` = none).
        power: exponent α of ``power`` / ``directset``.
        eps: DirectPred's ε / DirectSet's ``+εI``.
        ridge: ``+ ridge I`` on every closed form (Richemond's predictor ridge α). Because the EMA is
            linear, adding it before or after ``pred_ema`` gives the same predictor.
        visser_step: Visser's step ``h`` (**unconfirmed**; default 0.5).
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
    """``(NetParams, ViewData)`` from ``args``, with a clear ``TypeError`` otherwise."""
    return _checks.unpack_args(args, NetParams, ViewData)


def _sym(A):
    return (A + jnp.swapaxes(A, -1, -2)) / 2


@dataclass(frozen=True)
class SSLNet:
    """A linear non-contrastive SSL network; every option is static (module docstring for the math).

    Attributes:
        loss: ``"euclidean"``, ``"cosine"``, ``"euclidean_iso"``, ``"cosine_iso"`` (:mod:`~dynsim.networks.losses`).
        predictor: ``"trainable"`` (Eq. 2), ``"symmetric"`` (its gradient symmetrised, Tian's Assumption 3),
            ``"identity"`` (no predictor) or a closed form of :mod:`dynsim.networks.predictors`.
        target: ``"ema"`` (BYOL) or ``"online"`` (SimSiam, :math:`W_a \\equiv W`).
        stop_gradient: ``False`` lets the gradient through the target (``target="online"`` only).
        symmetric_loss: average the loss over both view orders (Tian's symmetrised loss).
        predictor_input: moments fed to a closed form: ``"features"`` (:math:`E[z_1z_1^\\top]`, the DirectPred
            code and Richemond; default), ``"WWt"`` (:math:`WW^\\top`, Halvagal's toy), ``"WXWt"`` (Tian's F).
        norm: DirectSet normalisation (``"max"``, ``"frobenius"``, ``"none"``; unconfirmed).
        ne_norm: NE pre-normalisation (``"none"``, ``"max"``, ``"frobenius"``; unconfirmed).
        n_iter: iterations of Visser/NS/NS²/Stiefel (``None``: 50/9/7/9).
        freq: recompute a closed-form predictor every ``freq`` steps (gradient steps in between).
        expectation: ``"quadratic"`` (exact nodes, Euclidean losses), ``"nodes"`` (QMC nodes), or
            ``"auto"`` (quadratic for the Euclidean losses, nodes for the cosine ones).
        n_nodes: QMC node count for ``"nodes"`` (a power of two).
        seed: seed of the QMC node set.
        ema_after_step: update the target from the post-step online weights (BYOL code) instead of
            the pre-step ones (Euler).
        sample_precision: dtype of the minibatch's standard normals, ``"float32"`` (default: about 3x
            faster on CPU; sampling noise ~ 1/sqrt(batch) dwarfs float32 rounding) or ``"state"``.
        sgd_sampling: ``"samples"`` (draw the minibatch), ``"moments"`` (draw its Wishart second moments,
            :meth:`ViewData.moment_batch`: the same law of every step for the Euclidean losses, whose
            gradients depend on the batch only through those moments, at a cost independent of the
            batch size), or ``"auto"``: moments for Euclidean losses on fresh Gaussian data with
            ``batch >= 2 n1``, samples otherwise.
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

    def __post_init__(self):
        _checks.check_choice("loss", self.loss, LOSSES)
        _checks.check_choice("predictor", self.predictor, PREDICTORS)
        _checks.check_choice("target", self.target, TARGETS)
        _checks.check_choice("predictor_input", self.predictor_input, PREDICTOR_INPUTS)
        _checks.check_choice("expectation", self.expectation, EXPECTATIONS)
        _checks.check_choice("sample_precision", self.sample_precision, ("float32", "state"))
        _checks.check_choice("sgd_sampling", self.sgd_sampling, ("auto", "samples", "moments"))
        if self.sgd_sampling == "moments" and self.loss.startswith("cosine"):
            raise ValueError("sgd_sampling='moments' is exact only for the Euclidean losses")
        cf.check_options(self.predictor, self.norm, self.ne_norm)
        if not self.stop_gradient and self.target != "online":
            raise ValueError("stop_gradient=False is defined for target='online' (W_a = W) only")
        if self.loss.endswith("_iso") and not self.closed_form:
            raise ValueError("IsoLoss needs a closed-form predictor (Halvagal et al. 2023, §3)")
        if self.loss.endswith("_iso") and not self.stop_gradient:
            raise ValueError("IsoLoss needs the stop-gradient")
        if self.expectation == "quadratic" and self.loss.startswith("cosine"):
            raise ValueError("expectation='quadratic' is exact only for the Euclidean losses; use 'nodes'")
        if int(self.freq) < 1:
            raise ValueError(f"freq must be >= 1, got {self.freq}")
        if self.n_iter is not None and int(self.n_iter) < 1:
            raise ValueError(f"n_iter must be >= 1, got {self.n_iter}")
        n = int(self.n_nodes)
        if n < 2 or n & (n - 1):
            raise ValueError(f"n_nodes must be a power of two >= 2, got {self.n_nodes}")

    # --- options ---------------------------------------------------------------------------------
    @property
    def closed_form(self) -> bool:
        return self.predictor in cf.CLOSED_FORMS

    @property
    def iterations(self) -> int:
        return int(self.n_iter) if self.n_iter is not None else cf.DEFAULT_ITERATIONS.get(self.predictor, 0)

    @property
    def uses_quadratic_nodes(self) -> bool:
        return self.expectation == "quadratic" or (self.expectation == "auto" and self.loss.startswith("euclidean"))

    @property
    def rhs_work_factor(self) -> int:
        return 1 if self.uses_quadratic_nodes else int(self.n_nodes)

    def samples_moments(self, data: ViewData, batch: int) -> bool:
        """Whether SGD draws the minibatch's moments instead of its samples (``sgd_sampling``)."""
        if self.sgd_sampling != "auto":
            return self.sgd_sampling == "moments"
        return self.loss.startswith("euclidean") and data.points is None and batch >= 2 * data.n1

    def sampler(self, data: ViewData, batch: int):
        """``key -> (x1, x2, weights)`` for SGD (``sgd_sampling``, ``sample_precision``); factors precomputed."""
        draw = jnp.float32 if self.sample_precision == "float32" else None
        if self.samples_moments(data, batch):
            L = data.joint_factor()
            return lambda key: data.moment_batch(key, batch, L, draw)
        return lambda key: data.sample(key, batch, draw)

    def expectation_nodes(self, data: ViewData):
        """The deterministic batch whose weighted loss is the expected loss (exact or QMC)."""
        return data.quadratic_nodes() if self.uses_quadratic_nodes else data.gaussian_nodes(self.n_nodes, self.seed)

    # --- pieces ----------------------------------------------------------------------------------
    def target_weights(self, y: NetState):
        """The target network the loss sees: ``W_a`` (ema) or ``W`` (online)."""
        return y.W_a if self.target == "ema" else y.W

    def expected_moments(self, W, W_t, data: ViewData):
        r"""Population :math:`S_{11}, S_{12}` of the predictor input (``predictor_input``):
        features :math:`(W(X+X')W^\top, WXW_t^\top)`, ``WWt`` :math:`(WW^\top, WW_t^\top)`, ``WXWt`` :math:`(WXW^\top, WXW_t^\top)`."""
        X = data.input_moment
        if self.predictor_input == "WWt":
            return W @ W.T, W @ W_t.T
        S11 = W @ (X + data.noise_cov) @ W.T if self.predictor_input == "features" else W @ X @ W.T
        return S11, W @ X @ W_t.T

    def batch_moments(self, W, W_t, data: ViewData, batch):
        """Moment estimates from a minibatch (``features``) or from the weights (``WWt``, ``WXWt``)."""
        if self.predictor_input != "features":
            return self.expected_moments(W, W_t, data)
        x1, x2, wts = batch
        z1, z2 = x1 @ W.T, x2 @ W_t.T
        return (z1 * wts[:, None]).T @ z1, (z1 * wts[:, None]).T @ z2

    def closed_predictor(self, S11, S12, params: NetParams):
        """The closed-form :math:`W_p` from moment estimates (no gradient flows through it)."""
        return lax.stop_gradient(cf.closed_form_predictor(self.predictor, S11, S12, params, n_iter=self.iterations,
                                                          norm=self.norm, ne_norm=self.ne_norm))

    def loss_value(self, W, W_p, W_t, batch):
        """:math:`\\sum_b w_b \\ell_b` (averaged over both view orders if ``symmetric_loss``)."""
        x1, x2, wts = batch
        fn = LOSS_FUNCTIONS[self.loss]
        tgt = W_t if not self.stop_gradient else lax.stop_gradient(W_t)

        def one(xa, xb):
            z1 = xa @ W.T
            return jnp.sum(wts * fn(z1, z1 @ W_p.T, xb @ tgt.T, W_p))

        return 0.5 * (one(x1, x2) + one(x2, x1)) if self.symmetric_loss else one(x1, x2)

    def gradients(self, y: NetState, W_p, batch):
        """``(dL/dW, dL/dW_p)`` at predictor ``W_p`` (SimSiam without stop-gradient: the target is ``W`` too)."""
        if self.target == "online":
            return jax.grad(lambda W, P: self.loss_value(W, P, W, batch), argnums=(0, 1))(y.W, W_p)
        return jax.grad(lambda W, P: self.loss_value(W, P, y.W_a, batch), argnums=(0, 1))(y.W, W_p)

    def _predictor_rate(self, y, gWp, params):
        g = _sym(gWp) if self.predictor == "symmetric" else gWp
        return -params.alpha_p * g - params.wd_p * y.W_p

    # --- flow ------------------------------------------------------------------------------------
    def predictor_now(self, y: NetState, args):
        """The predictor the flow uses at state ``y`` (closed forms: from the current expected moments)."""
        params, data = _unpack(args)
        if self.predictor == "identity":
            return jnp.eye(y.W.shape[0], dtype=y.W.dtype)
        if self.closed_form:
            return self.closed_predictor(*self.expected_moments(y.W, self.target_weights(y), data), params)
        return y.W_p

    def __call__(self, t, y: NetState, args) -> NetState:
        params, data = _unpack(args)
        W_p = self.predictor_now(y, args)
        gW, gWp = self.gradients(y, W_p, self.expectation_nodes(data))
        dW = -gW - params.wd * y.W
        dWp = self._predictor_rate(y, gWp, params) if self.predictor in TRAINABLE else jnp.zeros_like(y.W_p)
        dWa = params.beta * (y.W - y.W_a) if self.target == "ema" else dW
        zero = jnp.zeros_like(y.S11)
        return NetState(dW, dWp, dWa, zero, zero)

    # --- one discrete step -----------------------------------------------------------------------
    def step(self, y: NetState, k, batch, expected: bool, lr, args) -> NetState:
        """One GD (``expected=True``: ``batch`` are the expectation nodes) or SGD step ``k``."""
        params, data = _unpack(args)
        W_t = self.target_weights(y)
        S11, S12 = y.S11, y.S12
        W_p = y.W_p
        if self.closed_form:
            m11, m12 = (self.expected_moments if expected else
                        lambda W, Wt, d: self.batch_moments(W, Wt, d, batch))(y.W, W_t, data)
            S11 = params.rho * S11 + (1 - params.rho) * m11
            S12 = params.rho * S12 + (1 - params.rho) * m12
            fresh = params.pred_ema * y.W_p + (1 - params.pred_ema) * self.closed_predictor(S11, S12, params)
            W_p = jnp.where(k % self.freq == 0, fresh, y.W_p) if self.freq > 1 else fresh
        elif self.predictor == "identity":
            W_p = jnp.eye(y.W.shape[0], dtype=y.W.dtype)
        gW, gWp = self.gradients(y._replace(W_p=W_p), W_p, batch)
        W_new = y.W - lr * (gW + params.wd * y.W)
        if self.predictor in TRAINABLE or (self.closed_form and self.freq > 1):
            W_p_new = W_p + lr * self._predictor_rate(y._replace(W_p=W_p), gWp, params)
        else:
            W_p_new = W_p
        if self.target == "ema":
            W_ref = W_new if self.ema_after_step else y.W
            W_a_new = y.W_a + lr * params.beta * (W_ref - y.W_a)
        else:
            W_a_new = W_new
        return NetState(W_new, W_p_new, W_a_new, S11, S12)

    # --- states and checks ---------------------------------------------------------------------
    def initial_state(self, W, W_p=None, W_a=None, args=None) -> NetState:
        """A consistent start: ``W_a`` = 0 for an EMA target with a Euclidean loss (Tian's :math:`W_a(0)=0`),
        ``W`` with a cosine loss (BYOL's copy; a zero target has no direction), unless given; ``W`` (online);
        ``W_p`` given for trainable predictors, ``I`` without one, and for closed forms computed from the
        expected moments at ``W`` (``args`` needed), which also initialise ``S11``, ``S12``."""
        W = jnp.asarray(W)
        if W.ndim != 2:
            raise ValueError(f"W must be a matrix (n2, n1), got shape {W.shape}")
        n2 = W.shape[0]
        if self.target == "online":
            W_a = W
        elif W_a is None:
            W_a = W if self.loss.startswith("cosine") else jnp.zeros_like(W)
        else:
            W_a = jnp.asarray(W_a, W.dtype)
        zero = jnp.zeros((n2, n2), W.dtype)
        if self.predictor in TRAINABLE:
            if W_p is None:
                raise ValueError(f"predictor={self.predictor!r} needs an initial W_p")
            return NetState(W, jnp.asarray(W_p, W.dtype), W_a, zero, zero)
        if self.predictor == "identity":
            return NetState(W, jnp.eye(n2, dtype=W.dtype), W_a, zero, zero)
        if args is None:
            raise ValueError("a closed-form predictor needs args=(NetParams, ViewData) to set W_p, S11, S12")
        params, data = _unpack(args)
        S11, S12 = self.expected_moments(W, W if self.target == "online" else W_a, data)
        return NetState(W, self.closed_predictor(S11, S12, params), W_a, S11, S12)

    def validate(self, y0, args) -> None:
        params, data = _unpack(args)
        params.validate()
        data.validate()
        _checks.check_state(y0, NetState, " (see SSLNet.initial_state)")
        n2, n1 = np.shape(y0.W)
        if n1 != data.n1:
            raise ValueError(f"y0.W has {n1} inputs but the data have n1 = {data.n1}")
        _checks.check_shape("y0.W_p", y0.W_p, (n2, n2))
        _checks.check_shape("y0.W_a", y0.W_a, (n2, n1))
        if self.predictor == "symmetric":
            _checks.check_symmetric("y0.W_p (predictor='symmetric' needs a symmetric start)", y0.W_p)
        if self.loss.startswith("cosine") and self.target == "ema" and _checks.is_concrete(y0.W_a) \
                and not np.any(np.asarray(y0.W_a)):
            raise ValueError("the cosine loss needs a non-zero target: y0.W_a = 0 has no direction "
                             "(start the EMA target as a copy of W, as BYOL does)")
