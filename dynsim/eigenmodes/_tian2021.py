r"""Decoupled per-eigenmode dynamics of linear BYOL / SimSiam (Tian, Chen & Ganguli 2021).

[`TianModes`][dynsim.eigenmodes.TianModes] is the preset of [`dynsim.Modes`][dynsim.models.Modes] with the Euclidean loss and a trainable (or no)
predictor: `args = (TianParams, ModeData)`; the right-hand side is that model's.

Each of `M` modes follows the scalar BYOL system of App. D.4 (with weight
decay added; Tian et al. 2021, verified against Eqs. 11-13):

$$
\begin{aligned}
r_j &= w_{a,j}\,\lambda_{d,j} - w_{p,j}\, w_j\, \lambda_{s,j} \\
\dot w_{p,j} &= \alpha_p\, r_j\, w_j - \eta\, w_{p,j} \\
\dot w_j &= w_{p,j}\, r_j - \eta\, w_j \\
\dot w_{a,j} &= \beta\,(w_j - w_{a,j})
\end{aligned}
$$

with $s_j = w_j^2$ (eigenvalue of $F = WW^\top$),
$p_j = w_{p,j}$ (eigenvalue of $W_p$), $\tau_j = w_{a,j}/w_j$,
and isotropic data $\lambda_s = 1+\sigma^2$, $\lambda_d = 1$.
This form has no $1/s_j$ in the $\tau$ equation and
$\tau(0) = 0$ is simply $w_a(0) = 0$.

Options (all static, i.e. part of the compiled function):

* `target="ema"` (BYOL, Eq. 13), `"online"` (SimSiam, $w_a \equiv w$),
  `"fixed_tau"` ($w_a \equiv \tau w$ with `TianParams.tau`).
* `predictor="linear"` (trainable, Eq. 11) or `"identity"` (no predictor, $w_p \equiv 1$).
* `stop_gradient=False` (requires `target="online"`): gradient also through
  the target branch (Theorem 2), $\dot w = -w[(w_p^2+1)\lambda_s - 2 w_p \lambda_d] - \eta w$.

State: [`ModeState`][dynsim.models.ModeState] of three arrays of shape `(M,)` (any common shape).
`args = (TianParams, ModeData)`. Time in ODE units ([`dynsim.units`][dynsim.units]).

[`TianPST`][dynsim.analytic.reference.TianPST] (a reference system, [`dynsim.analytic.reference`][dynsim.analytic.reference]) integrates Eqs. 11-13 in the paper's own $(p, s, \tau)$
variables; the tests use it as an independent check of [`TianModes`][dynsim.eigenmodes.TianModes].
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks
from dynsim import components as cp
from dynsim import targets
from dynsim.models import ModeState, Modes
from dynsim.analytic.reference import PSTState, TianPST
from dynsim.params import ModeData, TianParams
from dynsim.solvers import CollapseEvent

PREDICTORS = ("linear", "identity")

__all__ = ["PREDICTORS", "PSTState", "TianModes", "TianPST"]  # TianPST, PSTState: reference systems (dynsim.analytic)


@dataclass(frozen=True)
class TianModes:
    """Per-mode BYOL/SimSiam flow in (w, w_p, w_a) form; see the module docstring for the equations."""

    target: str = "ema"
    predictor: str = "linear"
    stop_gradient: bool = True

    def __post_init__(self):
        targets.check_target_options(self.target, self.predictor, PREDICTORS, self.stop_gradient)

    def family(self, params: TianParams | None = None) -> Modes:
        """The [`Modes`][dynsim.models.Modes] model these options name (Euclidean loss, trainable or no predictor),
        with `params`' values (defaults when `None`)."""
        params = TianParams() if params is None else params
        predictor = cp.Identity() if self.predictor == "identity" else cp.Trainable(alpha_p=params.alpha_p)
        target = targets.component(self.target, params.beta, params.tau, self.stop_gradient)
        return Modes(loss=cp.Euclidean(), predictor=predictor, target=target, weight_decay=params.eta,
                     predictor_weight_decay=params.eta_p)

    def __call__(self, t, y: ModeState, args) -> ModeState:
        params, data = args
        return self.family(params)(t, y, data)

    # --- states and conversions -------------------------------------------------------------
    def initial_state(self, w, w_p=None, w_a=None, params: TianParams | None = None) -> ModeState:
        """A consistent initial state: `w_a` defaults to `0` for `target='ema'` (the paper's
        $\\tau(0)=0$), and is `w` (online) or `tau*w` (fixed_tau, needs `params`) otherwise;
        `w_p` defaults to `1` and is always `1` without a predictor."""
        if self.target == "fixed_tau" and params is None:
            raise ValueError("target='fixed_tau' needs params to set the target to tau * online")
        return self.family(params).initial_state(w, w_p, w_a)

    def from_pst(self, p, s, tau=0.0) -> ModeState:
        r"""State with $w = \sqrt{s}$, $w_p = p$, $w_a = \tau\sqrt{s}$ (`s >= 0`)."""
        _checks.check_positive("s", s, strict=False)
        w = jnp.sqrt(jnp.asarray(s))
        return ModeState(*jnp.broadcast_arrays(w, jnp.asarray(p), jnp.asarray(tau) * w))

    @staticmethod
    def to_pst(y: ModeState) -> PSTState:
        r"""$(p, s, \tau) = (w_p, w^2, w_a/w)$; $\tau$ is undefined (NaN) where $w = 0$."""
        w = jnp.asarray(y.w)
        safe = jnp.where(w == 0, 1.0, w)
        tau = jnp.where(w == 0, jnp.nan, jnp.asarray(y.w_a) / safe)
        return PSTState(jnp.asarray(y.w_p), w**2, tau)

    @staticmethod
    def mode_strength(y: ModeState) -> jax.Array:
        """$s_j = w_j^2$, the eigenvalue of $F = WW^T$ carried by mode `j`."""
        return Modes.mode_strength(y)

    def collapse_event(self, threshold: float = 1e-6) -> CollapseEvent:
        """Event at the first time some $s_j$ falls to `threshold`."""
        return self.family().collapse_event(threshold)

    def validate(self, y0, args) -> None:
        params, data = _checks.unpack_args(args, TianParams, ModeData)
        params.validate()
        data.validate()
        _checks.check_state(y0, ModeState)
        shapes = [np.shape(v) for v in y0]
        try:
            np.broadcast_shapes(*shapes, np.shape(data.lambda_s), np.shape(data.lambda_d))
        except ValueError:
            raise ValueError(f"shape mismatch: y0 fields {shapes}, ModeData lambda_s {np.shape(data.lambda_s)}, "
                             f"lambda_d {np.shape(data.lambda_d)}") from None
        if len(set(shapes)) != 1:
            raise ValueError(f"y0 fields must share one shape, got {shapes}")
