r"""Closed-form predictors as functions of the per-mode correlation eigenvalues.

Each maps the eigenvalues :math:`c_m` of the predictor-input correlation (shape ``(M,)``) to
predictor eigenvalues :math:`\lambda_m`; the predictor shares the correlation's eigenbasis,
so it acts mode by mode. Parameters (:class:`PredictorParams`) are traced leaves.

==========================  ===================================================  ============================================
``kind``                    :math:`\lambda_m`                                    source
==========================  ===================================================  ============================================
``"power"``                 :math:`|c_m|^{\alpha} + \varepsilon`                 Halvagal et al. 2023 toy, :math:`W_P = (WW^\top)^\alpha` (α = 1, ε = 0)
``"directpred_paper"``      :math:`\sqrt{c_m} + \varepsilon \max_k c_k`          Tian et al. 2021, Eq. 18
``"directpred_code"``       :math:`\max(\sqrt{c_m/\max_k c_k} + \varepsilon, 10^{-4})`  luckmatters ``compute_w_corr`` (boost_scale)
``"directset"``             :math:`(c_m/\|c\|)^{\alpha} + \varepsilon`           Wang et al. 2021 DirectSet(α); DirectCopy is α = 1
==========================  ===================================================  ============================================

Sources: ``shared/theory/halvagal2023.md`` §1.2, ``tian2021.md`` §4.9 (flag 5: the paper and
code normalisations differ in scale, which matters for a Euclidean loss), and
``richemond_li_wang.md`` C.1. **Unconfirmed** (exposed as options): DirectSet's normalisation
``norm`` (``"max"``: spectral, the default as in richemond_li_wang.md C.2; ``"frobenius"``;
``"none"``: the pre-paper luckmatters DirectCopy).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from dynsim import _checks

KINDS = ("power", "directpred_paper", "directpred_code", "directset")
NORMS = ("max", "frobenius", "none")
DIRECTPRED_CODE_FLOOR = 1e-4  # the reference code's clamp


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class PredictorParams:
    r"""Traced parameters of the closed-form predictors.

    Attributes:
        power: exponent :math:`\alpha` of ``"power"`` and ``"directset"`` (``> 0``; ignored by DirectPred, which is 1/2).
        eps: :math:`\varepsilon >= 0`, the boost of small eigenvalues (DirectPred) or the ``+εI`` ridge (DirectSet).
    """

    power: jax.Array | float = 1.0
    eps: jax.Array | float = 0.0

    def validate(self) -> "PredictorParams":
        _checks.check_positive("PredictorParams.power", self.power)
        _checks.check_positive("PredictorParams.eps", self.eps, strict=False)
        return self


def predictor_eigenvalues(kind: str, c, params: PredictorParams, norm: str = "max"):
    """:math:`\\lambda_m` for correlation eigenvalues ``c`` (``(..., M)``, modes on the last axis)."""
    c = jnp.asarray(c)
    if kind == "power":
        return jnp.abs(c) ** params.power + params.eps
    cmax = jnp.max(c, axis=-1, keepdims=True)
    if kind == "directpred_paper":
        return jnp.sqrt(jnp.maximum(c, 0.0)) + params.eps * cmax
    if kind == "directpred_code":
        return jnp.maximum(jnp.sqrt(jnp.maximum(c, 0.0) / cmax) + params.eps, DIRECTPRED_CODE_FLOOR)
    if kind == "directset":
        if norm == "max":
            scale = cmax
        elif norm == "frobenius":
            scale = jnp.sqrt(jnp.sum(c * c, axis=-1, keepdims=True))
        else:
            scale = 1.0
        return (jnp.maximum(c, 0.0) / scale) ** params.power + params.eps
    raise ValueError(f"unknown closed-form predictor {kind!r}; choose one of {KINDS}")
