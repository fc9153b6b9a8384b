r"""Reference systems written out by hand from Tian, Chen & Ganguli (2021): the tests' independent oracles
for the model family ([`dynsim.Network`][dynsim.models.Network], [`dynsim.Modes`][dynsim.models.Modes]), and the paper's own variables.

* [`TianMatrixFlow`][dynsim.analytic.reference.TianMatrixFlow] — Lemma 1, Eqs. 2-4, for any symmetric PSD moments (below);
* [`TianCorrelationFlow`][dynsim.analytic.reference.TianCorrelationFlow] — the isotropic symmetrised reduction to $(F, W_p)$, Eqs. 7-8;
* [`TianPST`][dynsim.analytic.reference.TianPST] — Eqs. 11-13 in the paper's per-mode variables $(p, s, \tau)$.

Matrix-level expected-gradient flow of a linear BYOL / SimSiam network (Tian et al. 2021).

[`TianMatrixFlow`][dynsim.analytic.reference.TianMatrixFlow] is Lemma 1, Eqs. 2-4, for any
symmetric PSD second moments $X$ (cross-view) and $X'$ (augmentation):

$$
\begin{aligned}
R &= -W_p W (X + X') + W_a X \qquad (n_2\times n_1)\\
\dot W_p &= \alpha_p R\, W^\top - \eta W_p \qquad (2)\\
\dot W &= W_p^\top R - \eta W \qquad (3)\\
\dot W_a &= \beta (W - W_a) \qquad (4)
\end{aligned}
$$

Shapes: `W`, `W_a`: `(n2, n1)`; `W_p`: `(n2, n2)`. `args = (TianParams, MomentData)`.

Options (static):

* `target`: `"ema"` (Eq. 4), `"online"` (SimSiam: $W_a \equiv W$),
  `"fixed_tau"` ($W_a \equiv \tau W$, Assumption 1 with constant τ).
* `predictor`: `"linear"` (Eq. 2, non-symmetric), `"symmetric"` (the gradient
  term of Eq. 2 symmetrised, Assumption 3 / Eq. 7), `"identity"` (no predictor, $W_p \equiv I$).
* `stop_gradient=False` (only with `target="online"`), Theorem 2:
  $\dot W = -(W_p^\top W_p + I) W X' - (W_p-I)^\top (W_p-I) W X - \eta W$.
  Without a predictor and with stop-gradient this reduces to $\dot W = -W X' - \eta W$
  (the paper prints $-(X'+\eta I)W$, whose dimensions do not match: a typo).

For `"online"`/`"fixed_tau"` the state's `W_a` is carried along as `W`/`τW`
(its derivative is `dW`/`τ dW`), so it stays meaningful when initialised consistently.

[`TianCorrelationFlow`][dynsim.analytic.reference.TianCorrelationFlow] is the isotropic symmetrised reduction to
$(F = WW^\top, W_p)$, Eqs. 7-8, used for the eigenspace-alignment theorem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks
from dynsim import targets
from dynsim.params import ModeData, MomentData, TianParams

MATRIX_PREDICTORS = ("linear", "symmetric", "identity")


class MatrixState(NamedTuple):
    """Online `W` (n2, n1), predictor `W_p` (n2, n2), target `W_a` (n2, n1)."""

    W: jax.Array
    W_p: jax.Array
    W_a: jax.Array


class CorrelationState(NamedTuple):
    """Correlation $F = WW^T$ (n2, n2) and symmetric predictor `W_p` (n2, n2)."""

    F: jax.Array
    W_p: jax.Array


def _sym(A):
    return (A + jnp.swapaxes(A, -1, -2)) / 2


@dataclass(frozen=True)
class TianMatrixFlow:
    """Lemma 1 (Eqs. 2-4) of Tian et al. 2021 with the variants in the module docstring."""

    target: str = "ema"
    predictor: str = "linear"
    stop_gradient: bool = True

    def __post_init__(self):
        targets.check_target_options(self.target, self.predictor, MATRIX_PREDICTORS, self.stop_gradient)

    def __call__(self, t, y: MatrixState, args) -> MatrixState:
        params, data = args
        X, Xp, eta = data.X, data.Xp, params.eta
        W = y.W
        n2 = W.shape[-2]
        eye = jnp.eye(n2, dtype=W.dtype)
        W_p = eye if self.predictor == "identity" else y.W_p
        W_a = targets.target_in_loss(self.target, W, y.W_a, params.tau)
        R = -W_p @ W @ (X + Xp) + W_a @ X
        if self.stop_gradient:
            dW = W_p.T @ R - eta * W
        else:
            Wt = W_p - eye
            dW = -(W_p.T @ W_p + eye) @ W @ Xp - Wt.T @ Wt @ W @ X - eta * W
        if self.predictor == "identity":
            dW_p = jnp.zeros_like(y.W_p)
        else:
            G = params.alpha_p * R @ W.T
            dW_p = (_sym(G) if self.predictor == "symmetric" else G) - params.predictor_decay * W_p
        dW_a = targets.target_rate(self.target, W, y.W_a, dW, params.beta, params.tau)
        return MatrixState(dW, dW_p, dW_a)

    def initial_state(self, W, W_p=None, W_a=None, params: TianParams | None = None) -> MatrixState:
        """Consistent initial state: `W_a` is `0` for `"ema"` unless given (the paper's
        $W_a(0)=0$), `W` for `"online"`, `tau*W` for `"fixed_tau"`; `W_p` is `I`
        without a predictor and must be given otherwise."""
        W = jnp.asarray(W)
        n2 = W.shape[0]
        if self.predictor == "identity":
            W_p = jnp.eye(n2, dtype=W.dtype)
        elif W_p is None:
            raise ValueError("W_p is required for a trainable predictor")
        W_a = targets.initial_target(self.target, W, W_a, None if params is None else params.tau)
        return MatrixState(W, jnp.asarray(W_p), W_a)

    @staticmethod
    def correlation(y: MatrixState) -> jax.Array:
        """$F = W W^T$, shape `(..., n2, n2)`."""
        return y.W @ jnp.swapaxes(y.W, -1, -2)

    @staticmethod
    def spectrum(y: MatrixState) -> jax.Array:
        """Eigenvalues of $F = WW^T$ in ascending order (the $s_j$ of the mode theory)."""
        return jnp.linalg.eigvalsh(TianMatrixFlow.correlation(y))

    def validate(self, y0, args) -> None:
        params, data = _checks.unpack_args(args, TianParams, MomentData)
        params.validate()
        data.validate()
        _checks.check_state(y0, MatrixState)
        n2, n1 = np.shape(y0.W)
        _checks.check_shape("MomentData.X", data.X, (n1, n1))
        _checks.check_shape("y0.W_p", y0.W_p, (n2, n2))
        _checks.check_shape("y0.W_a", y0.W_a, (n2, n1))
        if self.predictor == "symmetric":
            _checks.check_symmetric("y0.W_p (predictor='symmetric' needs a symmetric start)", y0.W_p)


@dataclass(frozen=True)
class TianCorrelationFlow:
    r"""Isotropic symmetrised dynamics in $(F, W_p)$, Eqs. 7-8 (fixed τ, generalised to $\lambda_d$):

    $$
    \begin{aligned}
    \dot W_p &= -\tfrac{\alpha_p}{2}\lambda_s \{W_p, F\} + \alpha_p \tau\lambda_d F - \eta W_p \\
    \dot F &= -\lambda_s \{W_p^2, F\} + \tau\lambda_d \{W_p, F\} - 2\eta F
    \end{aligned}
    $$

    with $\{A, B\} = AB + BA$, $\lambda_s = 1+\sigma^2$, $\lambda_d = 1$ in the paper.
    `args = (TianParams, ModeData)` with scalar `lambda_s`, `lambda_d`; τ is `TianParams.tau`.
    """

    def __call__(self, t, y: CorrelationState, args) -> CorrelationState:
        params, data = args
        F, Wp = y.F, y.W_p
        ls, td = data.lambda_s, params.tau * data.lambda_d

        def anti(A, B):
            return A @ B + B @ A

        dWp = -(params.alpha_p / 2) * ls * anti(Wp, F) + params.alpha_p * td * F - params.predictor_decay * Wp
        dF = -ls * anti(Wp @ Wp, F) + td * anti(Wp, F) - 2 * params.eta * F
        return CorrelationState(dF, dWp)

    def validate(self, y0, args) -> None:
        params, data = _checks.unpack_args(args, TianParams, ModeData)
        params.validate()
        data.validate()
        _checks.check_psd("y0.F", y0.F)
        _checks.check_shape("y0.W_p", y0.W_p, np.shape(y0.F))
        _checks.check_symmetric("y0.W_p (TianCorrelationFlow needs a symmetric predictor)", y0.W_p)


class PSTState(NamedTuple):
    r"""The paper's per-mode variables: $p_j$, $s_j$, $\tau_j$."""

    p: jax.Array
    s: jax.Array
    tau: jax.Array


@dataclass(frozen=True)
class TianPST:
    r"""Eqs. 11-13 of Tian et al. (2021) in $(p_j, s_j, \tau_j)$, generalised to per-mode $\lambda_s, \lambda_d$:

    $$
    \begin{aligned}
    \dot p &= \alpha_p s (\tau\lambda_d - \lambda_s p) - \eta p \qquad (11)\\
    \dot s &= 2 p s (\tau\lambda_d - \lambda_s p) - 2\eta s \qquad (12)\\
    \dot\tau &= \beta(1-\tau) - \tau\,\dot s/(2s) \qquad (13,\ \texttt{target="ema"})
    \end{aligned}
    $$

    With `target="fixed_tau"` $\tau$ is constant (`TianParams.tau`; the state's `tau`
    is ignored and kept fixed). In (13) $\dot s/(2s) = p(\tau\lambda_d-\lambda_s p)-\eta$ is
    used, which removes the $1/s$. `args = (TianParams, ModeData)`.
    """

    target: str = "ema"

    def __post_init__(self):
        if self.target not in ("ema", "fixed_tau"):
            raise ValueError(f"TianPST target must be 'ema' or 'fixed_tau', got {self.target!r}")

    def __call__(self, t, y: PSTState, args) -> PSTState:
        params, data = args
        tau = y.tau if self.target == "ema" else params.tau
        g = tau * data.lambda_d - data.lambda_s * y.p
        dp = params.alpha_p * y.s * g - params.predictor_decay * y.p
        ds = 2 * y.p * y.s * g - 2 * params.eta * y.s
        if self.target == "ema":
            dtau = params.beta * (1 - y.tau) - y.tau * (y.p * g - params.eta)  # = tau*ds/(2s)
        else:
            dtau = jnp.zeros_like(y.tau)
        return PSTState(dp, ds, dtau)

    def validate(self, y0, args) -> None:
        params, data = _checks.unpack_args(args, TianParams, ModeData)
        params.validate()
        data.validate()
        _checks.check_positive("y0.s", y0.s, strict=(self.target == "ema"))
