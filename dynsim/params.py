r"""Parameter objects: PyTrees whose floats are traced leaves.

Every field of these frozen dataclasses is a PyTree *leaf*, so a jitted solve
sees them as traced arrays: a sweep over values never recompiles, and
``jax.vmap`` batches over a leading axis of any field. All rates are in
**ODE units** (per unit of gradient-flow time ``t``); :mod:`dynsim.units`
converts from discrete-training settings (learning rate, EMA decay per step,
PyTorch ``weight_decay``).

Construction does not validate (JAX rebuilds these objects with tracers and
``in_axes`` placeholders); call :meth:`validate` or let :func:`dynsim.solve`
do it, which raises ``ValueError`` naming the bad parameter.

Sources: Tian, Chen & Ganguli (2021), Lemma 1 and Eqs. 11-13.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks


def _pytree_dataclass(cls):
    """Frozen dataclass registered with JAX, every field a data leaf."""
    cls = dataclass(frozen=True)(cls)
    return jax.tree_util.register_dataclass(cls)


@_pytree_dataclass
class TianParams:
    r"""Hyper-parameters of the BYOL / SimSiam gradient flow (Tian et al. 2021, Lemma 1).

    Attributes:
        alpha_p: :math:`\alpha_p`, predictor learning rate divided by the online
            learning rate (dimensionless, ``> 0``).
        beta: :math:`\beta`, EMA rate of the target, :math:`\dot W_a = \beta (W - W_a)`
            (1/time, ``>= 0``; ``0`` freezes the target).
        eta: :math:`\eta`, weight decay on both ``W`` and ``W_p`` (1/time, ``>= 0``).
        tau: :math:`\tau`, the fixed target ratio :math:`W_a = \tau W` used only by
            the fixed-τ variants (dimensionless, ``>= 0``; ``1`` is SimSiam).
    """

    alpha_p: jax.Array | float = 1.0
    beta: jax.Array | float = 1.0
    eta: jax.Array | float = 0.0
    tau: jax.Array | float = 1.0

    def validate(self) -> "TianParams":
        _checks.check_positive("TianParams.alpha_p", self.alpha_p)
        _checks.check_positive("TianParams.beta", self.beta, strict=False)
        _checks.check_positive("TianParams.eta", self.eta, strict=False)
        _checks.check_positive("TianParams.tau", self.tau, strict=False)
        return self

    def replace(self, **changes) -> "TianParams":
        return replace(self, **changes)


@_pytree_dataclass
class ModeData:
    r"""Per-mode second moments of commuting data (Tian et al. 2021, App. D.4).

    For mode ``j`` along a common eigenvector of :math:`\Sigma^s = X + X'` and
    :math:`\Sigma^d = X`:

    Attributes:
        lambda_s: eigenvalue of :math:`X + X'` (same-view second moment), shape ``()`` or ``(M,)``.
        lambda_d: eigenvalue of :math:`X` (cross-view second moment), shape ``()`` or ``(M,)``.

    The isotropic model of Assumption 2 is ``lambda_s = 1 + sigma2``, ``lambda_d = 1``.
    Requires ``lambda_d >= 0`` and ``lambda_s >= lambda_d`` (the augmentation
    covariance :math:`X'` is PSD).
    """

    lambda_s: jax.Array | float = 1.0
    lambda_d: jax.Array | float = 1.0

    @classmethod
    def isotropic(cls, sigma2: float | jax.Array = 0.0, n_modes: int | None = None) -> "ModeData":
        """``X = I``, ``X' = sigma2 I`` (Assumption 2); ``n_modes`` broadcasts to shape ``(M,)``."""
        _checks.check_positive("sigma2", sigma2, strict=False)
        lam_s = 1.0 + jnp.asarray(sigma2)
        lam_d = jnp.ones_like(lam_s)
        if n_modes is not None:
            lam_s = jnp.broadcast_to(lam_s, (n_modes,))
            lam_d = jnp.broadcast_to(lam_d, (n_modes,))
        return cls(lambda_s=lam_s, lambda_d=lam_d)

    @property
    def sigma2(self):
        r"""Per-mode augmentation variance relative to the data, :math:`\lambda_s/\lambda_d - 1`."""
        return jnp.asarray(self.lambda_s) / jnp.asarray(self.lambda_d) - 1.0

    def validate(self) -> "ModeData":
        _checks.check_positive("ModeData.lambda_d", self.lambda_d, strict=False)
        _checks.check_positive("ModeData.lambda_s", self.lambda_s)
        if _checks.is_concrete(self.lambda_s) and _checks.is_concrete(self.lambda_d):
            ls, ld = np.broadcast_arrays(np.asarray(self.lambda_s, float), np.asarray(self.lambda_d, float))
            if np.any(ls < ld * (1 - 1e-12)):
                raise ValueError(
                    "ModeData.lambda_s must be >= ModeData.lambda_d (the augmentation covariance "
                    "X' = Sigma^s - Sigma^d must be PSD)"
                )
        return self


@_pytree_dataclass
class MomentData:
    r"""Second moments of the data for the full matrix flow (Tian et al. 2021, §1).

    Attributes:
        X: :math:`X = E_x[\bar x \bar x^\top]`, the augmentation-averaged data
            second moment (``E[x_1 x_2^T]``), symmetric PSD, shape ``(n1, n1)``.
        Xp: :math:`X' = E_x[\mathrm{Cov}(x'|x)]`, the augmentation covariance,
            symmetric PSD, shape ``(n1, n1)``.
    """

    X: jax.Array
    Xp: jax.Array

    @classmethod
    def isotropic(cls, n1: int, sigma2: float | jax.Array = 0.0) -> "MomentData":
        """Assumption 2: ``X = I``, ``X' = sigma2 I``."""
        _checks.check_positive("sigma2", sigma2, strict=False)
        eye = jnp.eye(n1)
        return cls(X=eye, Xp=jnp.asarray(sigma2) * eye)

    @classmethod
    def commuting(cls, basis, lambda_s, lambda_d) -> "MomentData":
        r"""``X = V diag(lambda_d) V^T``, ``X + X' = V diag(lambda_s) V^T`` for orthonormal ``V``."""
        V = jnp.asarray(basis)
        ls, ld = jnp.asarray(lambda_s), jnp.asarray(lambda_d)
        ModeData(ls, ld).validate()
        return cls(X=(V * ld) @ V.T, Xp=(V * (ls - ld)) @ V.T)

    @property
    def n1(self) -> int:
        return int(np.shape(self.X)[-1])

    def validate(self) -> "MomentData":
        _checks.check_psd("MomentData.X", self.X)
        _checks.check_psd("MomentData.Xp", self.Xp)
        _checks.check_shape("MomentData.Xp", self.Xp, np.shape(self.X))
        return self
