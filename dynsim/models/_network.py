r"""The network level: online $W$, predictor $W_p$, target $W_a$ as matrices, trained by
expected-gradient flow, GD on exact expected gradients, or minibatch SGD.

One gradient, three trainings. For a batch `(x1, x2, weights)` with $z_1 = Wx_1$,
$p = W_pz_1$, $z_2 = W_tx_2$ ($W_t$ the target the loss sees, stopped unless the target
branch lets the gradient through) and the loss's per-sample $\ell$, $\mathcal L = \sum_b w_b\ell_b$ and

$$
\dot W = -\partial_W \mathcal L - \eta W,\qquad
\dot W_p = -\alpha_p\,\partial_{W_p}\mathcal L - \eta_p W_p\ (\text{trainable}),\qquad
\dot W_a = \text{the target's rate}
$$

(Tian et al. 2021, Lemma 1, Eqs. 2-4, generalised to any loss). `args` is the views'
[`ViewData`][dynsim.networks.ViewData]. A closed-form predictor is the instantaneous function of the current
moments in the flow. One discrete step (`Network.step`; `predictor_timing="current"`, the default): (1)
moments of the predictor input, EMA'd with the predictor's `rho` into `S11`/`S12`; (2) every
`freq` steps a closed form is recomputed, $W_p \leftarrow \rho_P W_p + (1-\rho_P)\,\mathrm{closed}$
(`pred_ema`), with gradient steps in between; (3) the gradient step; (4) the target step. With
`predictor_timing="previous"` the gradient step uses the predictor of the previous step and (2) sets the one
for the next step.
GD with `rho = pred_ema = 0`, `freq = 1` and `ema_after_step=False` is exactly explicit Euler on the flow.

Shapes: `W`, `W_a`: `(n2, n1)`; `W_p`, `S11`, `S12`: `(n2, n2)`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks
from dynsim.components import EMA, ExactViews, GaussianExact, GaussianNodes, Identity, SecondMoments, Trainable
from dynsim.models._base import AbstractModel
from dynsim.models._states import NetState

SAMPLE_PRECISIONS = ("float32", "state")
SGD_SAMPLINGS = ("auto", "samples", "moments")
PREDICTOR_TIMINGS = ("current", "previous")  #: which moments set a closed-form predictor used by step k


class Network(AbstractModel):
    """A linear SSL network assembled from components (module docstring; component fields as
    [`AbstractModel`][dynsim.models.AbstractModel]).

    Attributes:
        symmetric_loss: average the loss over both view orders (Tian et al.'s symmetrised loss).
        ema_after_step: update an EMA target from the post-step online weights (BYOL code) instead of the
            pre-step ones (Euler; an $O(\\mathrm{lr}^2)$ difference).
        sample_precision: dtype of SGD's standard normals, `"float32"` (default: about 3x faster on CPU;
            sampling noise ~ 1/sqrt(batch) dwarfs float32 rounding) or `"state"`.
        sgd_sampling: `"samples"` (draw the minibatch), `"moments"` (draw its Wishart second moments: the
            same law of every step for second-moment losses, at a cost independent of the batch size) or
            `"auto"`: moments for second-moment losses on fresh Gaussian data with `batch >= 2 n1`.
        predictor_timing: which moments set the closed-form predictor that discrete step $k$ uses:
            `"current"` (default): the moment estimate updated with step $k$'s batch, then the predictor,
            then the gradient; `"previous"`: the predictor set at the end of step $k-1$ (the DirectPred
            reference code's order: the gradient step first, then batch $k$'s features update the estimate
            and the predictor for step $k+1$). The flow is the same for both (the `lr -> 0` limit).
    """

    symmetric_loss: bool = eqx.field(default=False, static=True)
    ema_after_step: bool = eqx.field(default=False, static=True)
    sample_precision: str = eqx.field(default="float32", static=True)
    sgd_sampling: str = eqx.field(default="auto", static=True)
    predictor_timing: str = eqx.field(default="current", static=True)

    def __check_init__(self):
        _checks.check_choice("predictor_timing", self.predictor_timing, PREDICTOR_TIMINGS)
        _checks.check_choice("sample_precision", self.sample_precision, SAMPLE_PRECISIONS)
        _checks.check_choice("sgd_sampling", self.sgd_sampling, SGD_SAMPLINGS)
        if self.sgd_sampling == "moments" and not self.loss.quadratic:
            raise ValueError("sgd_sampling='moments' is exact only for second-moment losses (the Euclidean ones)")
        if isinstance(self.resolved_expectation, GaussianExact) and not self.loss.gaussian_exact:
            raise ValueError(f"GaussianExact needs a loss with a two-radius form (the cosine losses), not "
                             f"{type(self.loss).__name__}; use GaussianNodes")
        if not self.loss.quadratic and isinstance(self.resolved_expectation, SecondMoments):
            raise ValueError(f"the second-moment expectation is exact only for second-moment losses, not "
                             f"{type(self.loss).__name__}; use GaussianNodes")

    # --- data and batches ------------------------------------------------------------------------
    def samples_moments(self, data, batch: int) -> bool:
        """Whether SGD draws the minibatch's moments instead of its samples (`sgd_sampling`)."""
        if self.sgd_sampling != "auto":
            return self.sgd_sampling == "moments"
        return self.loss.quadratic and data.points is None and data.gaussian and batch >= 2 * data.n1

    def sampler(self, data, batch: int):
        """`key -> (x1, x2, weights)` for SGD (`sgd_sampling`, `sample_precision`); factors precomputed."""
        draw = jnp.float32 if self.sample_precision == "float32" else None
        if self.samples_moments(data, batch):
            L = data.joint_factor()
            return lambda key: data.moment_batch(key, batch, L, draw)
        return lambda key: data.sample(key, batch, draw)

    def expectation_for(self, data):
        """The expectation used with `data` ([`Auto`][dynsim.components.Auto] takes nodes on a finite dataset)."""
        return self.expectation.resolve(self.loss, modes=False, gaussian=data.points is None)

    def expectation_nodes(self, data):
        """What the expected loss is computed from: a deterministic batch whose weighted loss is the expected loss,
        or the views' moments ([`ExactViews`][dynsim.components.ExactViews], the cosine losses on Gaussian views)."""
        return self.expectation_for(data).network_nodes(data)

    # --- pieces ----------------------------------------------------------------------------------
    def target_weights(self, y: NetState):
        """The target network the loss sees."""
        return self.target.in_loss(y.W, y.W_a)

    def expected_moments(self, W, W_t, data):
        """Population moments of a closed-form predictor's input
        (`dynsim.components.AbstractClosedForm.expected_moments`)."""
        return self.predictor.expected_moments(W, W_t, data)

    def batch_moments(self, W, W_t, data, batch):
        """Moment estimates from a minibatch or from the weights
        (`dynsim.components.AbstractClosedForm.batch_moments`)."""
        return self.predictor.batch_moments(W, W_t, data, batch)

    def closed_predictor(self, S11, S12):
        """The closed-form $W_p$ from moment estimates. No loss gradient flows through it: the flow and the steps
        pass it to [`gradients`][dynsim.models.Network.gradients] as the predictor argument (a
        `stop_gradient` here would also stop the derivatives with respect to the parameters)."""
        return self.predictor(S11, S12)

    def loss_value(self, W, W_p, W_t, batch):
        """$\\sum_b w_b \\ell_b$, or the closed-form expected loss for [`ExactViews`][dynsim.components.ExactViews]
        (averaged over both view orders if `symmetric_loss`), with the target weights `W_t` as given: the
        stop-gradient is [`gradients`][dynsim.models.Network.gradients]', which differentiates with respect to `W` and
        `W_p` only."""
        tgt = W_t
        if isinstance(batch, ExactViews):
            value = self.loss.exact_network_value(W, W_p, tgt, batch)
            if self.symmetric_loss:
                value = 0.5 * (value + self.loss.exact_network_value(W, W_p, tgt, batch.swapped()))
            return value
        x1, x2, wts = batch

        def one(xa, xb):
            z1 = xa @ W.T
            return self.loss.batch_value(z1, z1 @ W_p.T, xb @ tgt.T, W_p, wts)

        return 0.5 * (one(x1, x2) + one(x2, x1)) if self.symmetric_loss else one(x1, x2)

    def expected_loss(self, y: NetState, data):
        """The loss's expectation over the views at state `y`, with the predictor the flow uses
        ([`predictor_now`][dynsim.models.Network.predictor_now]) and the expectation's nodes."""
        return self.loss_value(y.W, self.predictor_now(y, data), self.target.in_loss(y.W, y.W_a),
                               self.expectation_nodes(data))

    def gradients(self, y: NetState, W_p, batch):
        """`(dL/dW, dL/dW_p)` at predictor `W_p`. With the stop-gradient the target weights enter as a constant of
        this gradient (an argument it does not differentiate, not `lax.stop_gradient`, so derivatives of the flow
        with respect to the parameters still see them); without it they are `target.in_loss(W, W_a)`, a function of
        `W`."""
        if self.target.stop_gradient:
            W_t = self.target.in_loss(y.W, y.W_a)
            return jax.grad(lambda W, P: self.loss_value(W, P, W_t, batch), argnums=(0, 1))(y.W, W_p)
        return jax.grad(lambda W, P: self.loss_value(W, P, self.target.in_loss(W, y.W_a), batch),
                        argnums=(0, 1))(y.W, W_p)

    def predictor_now(self, y: NetState, data):
        """The predictor the flow uses at state `y` (closed forms: from the current expected moments)."""
        if isinstance(self.predictor, Identity):
            return jnp.eye(y.W.shape[0], dtype=y.W.dtype)
        if self.closed_form:
            return self.closed_predictor(*self.expected_moments(y.W, self.target_weights(y), data))
        return y.W_p

    # --- flow ------------------------------------------------------------------------------------
    def __call__(self, t, y: NetState, data) -> NetState:
        W_p = self.predictor_now(y, data)
        gW, gWp = self.gradients(y, W_p, self.expectation_nodes(data))
        dW = -gW - self.weight_decay * y.W
        dWp = self.predictor.rate(gWp, y.W_p, self.eta_p) if isinstance(self.predictor, Trainable) \
            else jnp.zeros_like(y.W_p)
        zero = jnp.zeros_like(y.S11)
        return NetState(dW, dWp, self.target.rate(y.W, y.W_a, dW), zero, zero)

    # --- one discrete step -----------------------------------------------------------------------
    def step(self, y: NetState, k, batch, expected: bool, lr, data) -> NetState:
        """One GD (`expected=True`: `batch` are the expectation nodes) or SGD step `k`."""
        W_t = self.target_weights(y)
        S11, S12 = y.S11, y.S12
        W_p = y.W_p
        pred = self.predictor
        if self.closed_form:
            m11, m12 = (self.expected_moments(y.W, W_t, data) if expected
                        else self.batch_moments(y.W, W_t, data, batch))
            S11 = pred.rho * S11 + (1 - pred.rho) * m11
            S12 = pred.rho * S12 + (1 - pred.rho) * m12
            fresh = pred.pred_ema * y.W_p + (1 - pred.pred_ema) * self.closed_predictor(S11, S12)
            W_p_next = jnp.where(k % pred.freq == 0, fresh, y.W_p) if pred.freq > 1 else fresh
            W_p = y.W_p if self.predictor_timing == "previous" else W_p_next
        elif isinstance(pred, Identity):
            W_p = jnp.eye(y.W.shape[0], dtype=y.W.dtype)
        gW, gWp = self.gradients(y._replace(W_p=W_p), W_p, batch)
        W_new = y.W - lr * (gW + self.weight_decay * y.W)
        if isinstance(pred, Trainable):
            W_p_new = W_p + lr * pred.rate(gWp, W_p, self.eta_p)
        elif self.closed_form and self.predictor_timing == "previous":  # the predictor for the next step
            stepped = W_p - lr * (pred.alpha_p * gWp + self.eta_p * W_p)
            W_p_new = jnp.where(k % pred.freq == 0, W_p_next, stepped) if pred.freq > 1 else W_p_next
        elif self.closed_form and pred.freq > 1:  # gradient steps between recomputations
            W_p_new = W_p - lr * (pred.alpha_p * gWp + self.eta_p * W_p)
        else:
            W_p_new = W_p
        W_a_new = self.target.step(y.W, y.W_a, W_new, lr, self.ema_after_step)
        return NetState(W_new, W_p_new, W_a_new, S11, S12)

    # --- states and checks -----------------------------------------------------------------------
    def initial_state(self, W, W_p=None, W_a=None, data=None) -> NetState:
        """A consistent start: the target from `dynsim.components.AbstractTarget.initial` (an EMA target
        starts at 0, or as a copy of `W` for losses that need a direction, unless given); `W_p` given for a
        trainable predictor, `I` without one, and for closed forms computed from the expected moments at
        `W` (`data` needed), which also initialise `S11`, `S12`."""
        W = jnp.asarray(W)
        if W.ndim != 2:
            raise ValueError(f"W must be a matrix (n2, n1), got shape {W.shape}")
        n2 = W.shape[0]
        W_a = self.target.initial(W, W_a, copy=self.loss.needs_direction)
        zero = jnp.zeros((n2, n2), W.dtype)
        if isinstance(self.predictor, Trainable):
            if W_p is None:
                raise ValueError("a trainable predictor needs an initial W_p")
            return NetState(W, jnp.asarray(W_p, W.dtype), W_a, zero, zero)
        if isinstance(self.predictor, Identity):
            return NetState(W, jnp.eye(n2, dtype=W.dtype), W_a, zero, zero)
        if data is None:
            raise ValueError("a closed-form predictor needs the data (ViewData) to set W_p, S11, S12")
        S11, S12 = self.expected_moments(W, self.target.in_loss(W, W_a), data)
        return NetState(W, self.closed_predictor(S11, S12), W_a, S11, S12)

    def expectation_error(self, y: NetState, data, n_groups: int = 16):
        """Error estimate of the expected $\\partial\\mathcal L/\\partial W$ (shape of `W`): for
        [`GaussianExact`][dynsim.components.GaussianExact] the change when the radial rule's step doubles (an overestimate:
        the rule converges exponentially); for nodes the standard error from `n_groups` disjoint balanced blocks
        of the quasi-random nodes (with a finite dataset: of each point's noise nodes); `None` where it does not
        apply (second-moment expectations, fewer than `2 n_groups` nodes per block)."""
        expectation = self.expectation_for(data)
        if isinstance(expectation, GaussianExact):
            W_p = self.predictor_now(y, data)
            fine, coarse = (self.gradients(y, W_p, expectation.network_nodes(data, c))[0] for c in (False, True))
            return jnp.abs(fine - coarse)
        blocks = self._node_blocks(y, data, n_groups)
        return None if blocks is None else jnp.std(blocks, axis=0, ddof=1) / jnp.sqrt(n_groups)

    def _node_blocks(self, y: NetState, data, n_groups: int = 16):
        """$\\partial\\mathcal L/\\partial W$ on each of `n_groups` balanced node blocks (equal total weights,
        so their mean is the node gradient), or `None` (`expectation_error`)."""
        expectation = self.expectation_for(data)
        if not isinstance(expectation, GaussianNodes):
            return None
        x1, x2, wts = expectation.network_nodes(data)
        K = wts.shape[0]
        k = K if data.points is None else K // np.shape(data.points)[0]  # nodes per data point
        if k < 2 * n_groups:
            return None
        group = (jnp.arange(K) % k) // (k // n_groups)
        W_p = self.predictor_now(y, data)

        def block(g):
            w = jnp.where(group == g, wts, 0.0)
            return self.gradients(y, W_p, (x1, x2, w / jnp.sum(w)))[0]

        return jax.vmap(block)(jnp.arange(n_groups))

    def warn_node_error(self, y0: NetState, data) -> None:
        """Warn (`dynsim.components.GaussianNodes.warn_if_inaccurate`) when the node expectation's estimated
        gradient error at `y0` is large against the largest gradient entry (called by the GD and flow entry
        points, not by SGD)."""
        expectation = self.expectation_for(data)
        if self.loss.quadratic or not isinstance(expectation, GaussianNodes) \
                or not all(_checks.is_concrete(v) for v in jax.tree.leaves(y0)):
            return
        stats = _node_error_and_scale(self, y0, data)
        if stats is not None:
            expectation.warn_if_inaccurate(float(stats[0]), float(stats[1]), "gradient error", "largest gradient entry")

    def validate(self, y0, data) -> None:
        if not hasattr(data, "quadratic_nodes"):
            raise TypeError(f"args of a Network model must be a ViewData, got {type(data).__name__}")
        self.check()
        data.validate()
        _checks.check_state(y0, NetState, " (see Network.initial_state)")
        n2, n1 = np.shape(y0.W)
        if n1 != data.n1:
            raise ValueError(f"y0.W has {n1} inputs but the data have n1 = {data.n1}")
        _checks.check_shape("y0.W_p", y0.W_p, (n2, n2))
        _checks.check_shape("y0.W_a", y0.W_a, (n2, n1))
        if isinstance(self.predictor, Trainable) and self.predictor.symmetric:
            _checks.check_symmetric("y0.W_p (a symmetric trainable predictor needs a symmetric start)", y0.W_p)
        if self.loss.needs_direction and isinstance(self.target, EMA) and _checks.is_concrete(y0.W_a) \
                and not np.any(np.asarray(y0.W_a)):
            raise ValueError(f"the {type(self.loss).__name__} loss needs a non-zero target: y0.W_a = 0 has no "
                             "direction (start the EMA target as a copy of W, as BYOL does)")


@eqx.filter_jit
def _node_error_and_scale(model: Network, y, data, n_groups: int = 16):
    """Largest standard error and largest entry of the node gradient from the blocks, compiled once per structure."""
    blocks = model._node_blocks(y, data, n_groups)
    if blocks is None:
        return None
    se = jnp.std(blocks, axis=0, ddof=1) / jnp.sqrt(n_groups)
    return jnp.max(se), jnp.max(jnp.abs(jnp.mean(blocks, axis=0)))
