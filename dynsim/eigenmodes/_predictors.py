r"""Closed-form predictors at eigenmode level, named by the option strings of [`SSLModes`][dynsim.eigenmodes.SSLModes].

Each string names a spectral component of [`dynsim.components`][dynsim.components] (which defines the formula once,
for both levels); [`PredictorParams`][dynsim.eigenmodes.PredictorParams] carries its parameters as traced leaves.

| `kind` | $\lambda_m$ | component |
|---|---|---|
| `"power"` | $\vert c_m\vert ^{\alpha} + \varepsilon$ | [`Power`][dynsim.components.Power] |
| `"directpred_paper"` | $\sqrt{c_m} + \varepsilon \max_k c_k$ | [`DirectPred`][dynsim.components.DirectPred] (`"paper"`) |
| `"directpred_code"` | $\max(\sqrt{c_m/\max_k c_k} + \varepsilon, 10^{-4})$ | [`DirectPred`][dynsim.components.DirectPred] (`"code"`) |
| `"directset"` | $(c_m/\Vert c\Vert )^{\alpha} + \varepsilon$ | [`DirectSet`][dynsim.components.DirectSet] |
"""

from __future__ import annotations

from dataclasses import dataclass

import jax

from dynsim import _checks
from dynsim import components as cp

KINDS = ("power", "directpred_paper", "directpred_code", "directset")
NORMS = ("max", "frobenius", "none")
DIRECTPRED_CODE_FLOOR = 1e-4  # the reference code's clamp


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PredictorParams:
    r"""Traced parameters of the closed-form predictors.

    Attributes:
        power: exponent $\alpha$ of `"power"` and `"directset"` (`> 0`; ignored by DirectPred, which is 1/2).
        eps: $\varepsilon >= 0$, the boost of small eigenvalues (DirectPred) or the `+εI` ridge (DirectSet).
    """

    power: jax.Array | float = 1.0
    eps: jax.Array | float = 0.0

    def validate(self) -> "PredictorParams":
        _checks.check_positive("PredictorParams.power", self.power)
        _checks.check_positive("PredictorParams.eps", self.eps, strict=False)
        return self


def spectral_predictor(kind: str, params, norm: str = "max", **options) -> cp.AbstractSpectral:
    """The spectral component named `kind` with `params`' `power` and `eps` (`options`: the closed-form
    options `ridge`, `rho`, `pred_ema`, `alpha_p`, `freq`, `input`)."""
    _checks.check_choice("closed-form predictor", kind, KINDS)
    if kind == "power":
        return cp.Power(power=params.power, eps=params.eps, **options)
    if kind == "directset":
        return cp.DirectSet(power=params.power, eps=params.eps, norm=norm, **options)
    return cp.DirectPred(eps=params.eps, normalisation=kind.split("_")[1], **options)


def predictor_eigenvalues(kind: str, c, params: PredictorParams, norm: str = "max"):
    """$\\lambda_m$ for correlation eigenvalues `c` (`(..., M)`, modes on the last axis)."""
    return spectral_predictor(kind, params, norm).eigenvalues(c)
