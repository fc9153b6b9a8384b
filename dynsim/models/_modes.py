r"""The eigenmode level: one scalar ODE system per common eigenmode of the data moments.

State [`ModeState`][dynsim.models.ModeState] `(w, w_p, w_a)`, one entry per mode: online amplitude $w_m$
($c_m = w_m^2$ is the eigenvalue of $WW^\top$), predictor eigenvalue $w_{p,m}$, stored
target amplitude $w_{a,m}$. `args` is the [`ModeData`][dynsim.params.ModeData] (per-mode
$\lambda_s = E[u_1^2]$, $\lambda_d = E[u_1u_2]$). With $\bar w$ the target the loss sees
and the loss's drives (`dynsim.components.AbstractLoss.mode_drives`),

$$
\dot w = D_w(w, \bar w, \lambda) - \eta w,\qquad
\dot w_p = \alpha_p D_\lambda(w, \bar w, w_p) - \eta_p w_p\ \ (\text{trainable}),\qquad
\dot w_a = \text{the target's rate},
$$

the per-mode form of the network flow restricted to aligned states (Tian et al. 2021, App. D.4 and
Eqs. 11-13; Halvagal et al. 2023). A closed-form predictor is $w_p = \lambda(c(w))$ with
$c$ the eigenvalues of its input moment (`WWt`: $w^2$; `WXWt`: $\lambda_dw^2$;
`features`: $\lambda_sw^2$); its recorded $w_p$ follows by the chain rule.
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks
from dynsim.components import AbstractSpectral, GaussianExact, GaussianNodes, Identity, Trainable, input_reads_data
from dynsim.models._base import AbstractModel
from dynsim.models._states import ModeState
from dynsim.params import ModeData
from dynsim.solvers import CollapseEvent


def _mode_strength(y: ModeState):
    return jnp.asarray(y.w) ** 2


class Modes(AbstractModel):
    """Per-mode dynamics of a model assembled from components (module docstring; fields as
    [`AbstractModel`][dynsim.models.AbstractModel]). Use with [`dynsim.solve`][dynsim.solvers.solve] and `args` a
    [`ModeData`][dynsim.params.ModeData]."""

    modes_level: ClassVar[bool] = True

    @property
    def rhs_work_factor(self) -> int:
        """Elements one right-hand side touches per state element: the node count when the loss's per-mode
        drives evaluate the expectation's nodes, else 1 (sizes batch chunks on CPU)."""
        return self.resolved_expectation.work_factor(self.loss) if self.loss.mode_nodes else 1

    def __check_init__(self):
        if not isinstance(self.predictor, (Trainable, Identity, AbstractSpectral)):
            raise ValueError(f"no eigenmode theory for the predictor {type(self.predictor).__name__} (trainable, "
                             f"identity and spectral closed forms have one)")
        if isinstance(self.predictor, AbstractSpectral) and self.predictor.freq != 1:
            raise ValueError("the eigenmode theory recomputes a closed-form predictor at every instant: use freq=1")

    # --- predictor ---------------------------------------------------------------------------
    def correlation_eigenvalues(self, w, data: ModeData):
        """Eigenvalues $c_m$ of the closed-form predictor's input moment."""
        return self.predictor.mode_correlation(w, data)

    def predictor_values(self, w, data: ModeData):
        """Closed-form $\\lambda_m(w)$ (ridge included)."""
        return self.predictor.mode_values(self.correlation_eigenvalues(w, data))

    def predictor_eigenvalues(self, y: ModeState, data: ModeData):
        """The predictor eigenvalues the loss sees at state `y`."""
        if isinstance(self.predictor, Trainable):
            return y.w_p
        if isinstance(self.predictor, Identity):
            return jnp.ones_like(y.w)
        return self.predictor_values(y.w, data)

    # --- right-hand side ---------------------------------------------------------------------
    def __call__(self, t, y: ModeState, data: ModeData) -> ModeState:
        w = y.w
        lam = self.predictor_eigenvalues(y, data)
        w_bar = self.target.in_loss(w, y.w_a)
        dw, pred_drive = self.loss.mode_drives(w, w_bar, lam, data, self.target.stop_gradient,
                                               self.resolved_expectation)
        dw = dw - self.weight_decay * w
        if isinstance(self.predictor, Trainable):
            dw_p = self.predictor.alpha_p * pred_drive - self.eta_p * y.w_p
        elif isinstance(self.predictor, Identity):
            dw_p = jnp.zeros_like(w)
        else:  # w_p follows lambda(c(w(t))): chain rule
            dw_p = jax.jvp(lambda ww: self.predictor_values(ww, data), (w,), (dw,))[1]
        return ModeState(dw, dw_p, self.target.rate(w, y.w_a, dw))

    def expected_loss(self, y: ModeState, data: ModeData):
        """The loss's expectation over the views at state `y` (the restricted network's; `loss.mode_value`)."""
        return self.loss.mode_value(y.w, self.target.in_loss(y.w, y.w_a), self.predictor_eigenvalues(y, data), data,
                                    self.resolved_expectation)

    def after_step(self, y: ModeState, data: ModeData) -> ModeState:
        """A closed-form predictor's recorded $w_p$ is $\\lambda(c(w))$ at the stepped $w$ (the
        network's GD recomputes $W_p$ from the current moments the same way); other states are unchanged."""
        if self.closed_form:
            return y._replace(w_p=self.predictor_values(y.w, data))
        return y

    # --- states, observables, checks ---------------------------------------------------------
    def initial_state(self, w, w_p=None, w_a=None, data: ModeData | None = None) -> ModeState:
        """A consistent state: `w_p = lambda(c(w))` for closed forms (`data` needed unless the input is
        `WWt`), `1` without a predictor, given (default 1) when trainable; the target from
        `dynsim.components.AbstractTarget.initial` (an EMA target starts at 0 unless given)."""
        w = jnp.asarray(w)
        if isinstance(self.predictor, Identity) or (isinstance(self.predictor, Trainable) and w_p is None):
            w_p = jnp.ones_like(w)
        elif not isinstance(self.predictor, Trainable):
            if data is None and input_reads_data(self.predictor.input):
                raise ValueError(f"predictor input {self.predictor.input!r} needs data to set w_p")
            w_p = self.predictor_values(w, data)
        w_a = self.target.initial(w, w_a)
        return ModeState(*jnp.broadcast_arrays(w, jnp.asarray(w_p), w_a))

    @staticmethod
    def mode_strength(y: ModeState):
        """$c_m = w_m^2$, the eigenvalue of $WW^\\top$ carried by mode `m`."""
        return _mode_strength(y)

    def collapse_event(self, threshold: float = 1e-6) -> CollapseEvent:
        """Event at the first time some $c_m$ falls to `threshold`."""
        return CollapseEvent(_mode_strength, threshold)

    def expectation_error(self, y: ModeState, data: ModeData, n_groups: int = 16):
        r"""Error estimate of the expectation in the online drive (shape `(M,)`), for losses with node terms (the
        cosine losses): for [`GaussianExact`][dynsim.components.GaussianExact] the change when the rule's step doubles (an
        overestimate: the rule converges exponentially); for [`GaussianNodes`][dynsim.components.GaussianNodes] the standard
        error from `n_groups` disjoint balanced blocks of the node set."""
        expectation = self.resolved_expectation
        if not hasattr(self.loss, "node_terms") or not isinstance(expectation, (GaussianExact, GaussianNodes)):
            raise ValueError("expectation_error applies to the cosine losses with the exact or the node expectation")
        lam = self.predictor_eigenvalues(y, data)
        w_bar = self.target.in_loss(y.w, y.w_a)
        sg = self.target.stop_gradient
        if isinstance(expectation, GaussianExact):
            fine, _ = self.loss.exact_drives(y.w, w_bar, lam, data, sg, expectation)
            coarse, _ = self.loss.exact_drives(y.w, w_bar, lam, data, sg, expectation, coarse=True)
            return jnp.abs(fine - coarse)
        return self._node_blocks(y, data, n_groups)[1]

    def _node_blocks(self, y: ModeState, data: ModeData, n_groups: int = 16):
        """`(drive, standard error)` of the node expectation's online drive from `n_groups` balanced blocks."""
        lam = self.predictor_eigenvalues(y, data)
        per_node, _ = self.loss.node_terms(y.w, self.target.in_loss(y.w, y.w_a), lam, data, self.target.stop_gradient,
                                           self.resolved_expectation)
        blocks = per_node.reshape((n_groups, -1) + per_node.shape[1:]).mean(axis=1)
        return jnp.mean(blocks, axis=0), jnp.std(blocks, axis=0, ddof=1) / jnp.sqrt(n_groups)

    def _warn_node_error(self, y0: ModeState, data: ModeData) -> None:
        """Warn (`dynsim.components.GaussianNodes.warn_if_inaccurate`) when the node expectation's estimated
        error is large against the largest drive at the start."""
        expectation = self.resolved_expectation
        if not (isinstance(expectation, GaussianNodes) and hasattr(self.loss, "node_terms")
                and all(_checks.is_concrete(v) for v in y0)):
            return
        drive, err = self._node_blocks(y0, data)
        expectation.warn_if_inaccurate(float(jnp.max(err)), float(jnp.max(jnp.abs(drive))), "error", "largest drive")

    def validate(self, y0, data) -> None:
        if not isinstance(data, ModeData):
            raise TypeError(f"args of a Modes model must be a ModeData, got {type(data).__name__}")
        self.check()
        data.validate()
        _checks.check_state(y0, ModeState)
        shapes = {np.shape(v) for v in y0}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise ValueError(f"y0 fields must be vectors of one length M, got shapes {sorted(shapes)}")
        try:
            np.broadcast_shapes(next(iter(shapes)), np.shape(data.lambda_s), np.shape(data.lambda_d))
        except ValueError:
            raise ValueError(f"shape mismatch: y0 has {next(iter(shapes))[0]} modes, ModeData lambda_s "
                             f"{np.shape(data.lambda_s)}, lambda_d {np.shape(data.lambda_d)}") from None
        self._warn_node_error(y0, data)
