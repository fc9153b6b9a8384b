r"""Parameter objects: PyTrees whose floats are traced leaves.

Every field of these frozen dataclasses is a PyTree *leaf*, so a jitted solve
sees them as traced arrays: a sweep over values never recompiles, and
`jax.vmap` batches over a leading axis of any field. All rates are in
**ODE units** (per unit of gradient-flow time `t`); [`dynsim.units`][dynsim.units]
converts from discrete-training settings (learning rate, EMA decay per step,
PyTorch `weight_decay`).

Construction does not validate (JAX rebuilds these objects with tracers and
`in_axes` placeholders); call `validate` or let [`dynsim.solve`][dynsim.solvers.solve]
do it, which raises `ValueError` naming the bad parameter.

Sources: Tian, Chen & Ganguli (2021), Lemma 1 and Eqs. 11-13.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks

VIEWS = ("same", "clean_online", "per_view")  #: which view carries the augmentation noise (`docs/theory/views.md`)


def view_noises(views: str, sigma2, sigma2_target=None):
    """`(online, target)` noise variances of the view law `views` (`VIEWS`): `same`: `sigma2` in both
    views; `clean_online`: `sigma2` in the target view only (Halvagal et al.'s toy); `per_view`: `sigma2`
    online and `sigma2_target` in the target view (required then, ignored otherwise)."""
    if views == "same":
        return sigma2, sigma2
    if views == "clean_online":
        return 0.0 * sigma2, sigma2
    if views == "per_view":
        if sigma2_target is None:
            raise ValueError("views='per_view' needs sigma2_target, the target view's noise variance")
        return sigma2, sigma2_target
    raise ValueError(f"views must be one of {', '.join(VIEWS)}, got {views!r}")


def _pytree_dataclass(cls):
    """Frozen dataclass registered with JAX, every field a data leaf."""
    cls = dataclass(frozen=True)(cls)
    return jax.tree_util.register_dataclass(cls)


@_pytree_dataclass
class TianParams:
    r"""Hyper-parameters of the BYOL / SimSiam gradient flow (Tian et al. 2021, Lemma 1).

    Attributes:
        alpha_p: $\alpha_p$, predictor learning rate divided by the online
            learning rate (dimensionless, `> 0`).
        beta: $\beta$, EMA rate of the target, $\dot W_a = \beta (W - W_a)$
            (1/time, `>= 0`; `0` freezes the target).
        eta: $\eta$, weight decay on `W` and, unless `eta_p` is set, on `W_p` (1/time, `>= 0`).
        tau: $\tau$, the fixed target ratio $W_a = \tau W$ used only by
            the fixed-τ variants (dimensionless, `>= 0`; `1` is SimSiam).
        eta_p: $\eta_p$, weight decay on `W_p` (1/time, `>= 0`); `None` (default): $\eta$, as in
            Tian et al. (2021)'s Lemma 1. A PyTorch parameter group at the predictor's learning rate decays at
            $\alpha_p\eta$ (`dynsim.units.DiscreteSettings.to_ode`).
    """

    alpha_p: jax.Array | float = 1.0
    beta: jax.Array | float = 1.0
    eta: jax.Array | float = 0.0
    tau: jax.Array | float = 1.0
    eta_p: jax.Array | float | None = None

    @property
    def predictor_decay(self):
        r"""$\eta_p$: `eta_p`, or `eta` when it is unset."""
        return self.eta if self.eta_p is None else self.eta_p

    def validate(self) -> "TianParams":
        _checks.check_positive("TianParams.alpha_p", self.alpha_p)
        _checks.check_positive("TianParams.beta", self.beta, strict=False)
        _checks.check_positive("TianParams.eta", self.eta, strict=False)
        _checks.check_positive("TianParams.tau", self.tau, strict=False)
        if self.eta_p is not None:
            _checks.check_positive("TianParams.eta_p", self.eta_p, strict=False)
        return self

    def replace(self, **changes) -> "TianParams":
        return replace(self, **changes)


@_pytree_dataclass
class ModeData:
    r"""Per-mode second moments of the two views of commuting data (Tian et al. 2021, App. D.4).

    Mode `j` sees a pair $(u_1, u_2)$ (online view, target view) along a common eigenvector of the
    views' moments $E[x_1x_1^\top]$, $E[x_1x_2^\top]$, $E[x_2x_2^\top]$, with per-mode moments
    $(\ell_{11}, \ell_{12}, \ell_{22})$ = (`l11`, `l12`, `l22`):

    Attributes:
        lambda_s: $\ell_{11} = E[u_1^2]$, the online view's second moment (the eigenvalue of $X + X'$
            when both views carry the same noise), shape `()` or `(M,)`.
        lambda_d: $\ell_{12} = E[u_1u_2]$, the cross-view moment (the eigenvalue of $X$).
        lambda_2: $\ell_{22} = E[u_2^2]$, the target view's second moment; `None` (default): equal to
            `lambda_s` (both views alike, Tian et al.'s and dynsim's symmetric-noise model).

    Presets: `isotropic` (`lambda_s = 1 + sigma2`, `lambda_d = 1`, Tian's Assumption 2),
    `views` (a different isotropic noise per view) and `clean_online` (online view clean, target view
    noised: the update rule of Halvagal et al.'s toy). Which moments a model reads is its loss's business: with
    the stop-gradient the Euclidean drives read $\ell_{11}, \ell_{12}$ only, without it also
    $\ell_{22}$; the cosine losses read all three (`docs/theory/views.md`).
    Requires $\ell_{12} \ge 0$, $\ell_{11} > 0$ and a PSD pair; with `lambda_2 = None` also
    `lambda_s >= lambda_d` (the augmentation covariance $X'$ is PSD).
    """

    lambda_s: jax.Array | float = 1.0
    lambda_d: jax.Array | float = 1.0
    lambda_2: jax.Array | float | None = None

    @classmethod
    def isotropic(cls, sigma2: float | jax.Array = 0.0, n_modes: int | None = None) -> "ModeData":
        """`X = I`, `X' = sigma2 I` in both views (Assumption 2); `n_modes` broadcasts to shape `(M,)`."""
        _checks.check_positive("sigma2", sigma2, strict=False)
        lam_s = 1.0 + jnp.asarray(sigma2)
        lam_d = jnp.ones_like(lam_s)
        if n_modes is not None:
            _checks.check_count("n_modes", n_modes)
            lam_s = jnp.broadcast_to(lam_s, (n_modes,))
            lam_d = jnp.broadcast_to(lam_d, (n_modes,))
        return cls(lambda_s=lam_s, lambda_d=lam_d)

    @classmethod
    def views(cls, sigma2_online: float | jax.Array = 0.0, sigma2_target: float | jax.Array = 0.0,
              n_modes: int | None = None) -> "ModeData":
        r"""`X = I` with independent isotropic noise of variance `sigma2_online` in the online view and
        `sigma2_target` in the target view: $(\ell_{11}, \ell_{12}, \ell_{22}) = (1 + \sigma_1^2, 1, 1 + \sigma_2^2)$."""
        _checks.check_positive("sigma2_online", sigma2_online, strict=False)
        _checks.check_positive("sigma2_target", sigma2_target, strict=False)
        l11, l22 = 1.0 + jnp.asarray(sigma2_online), 1.0 + jnp.asarray(sigma2_target)
        l11, l22 = jnp.broadcast_arrays(l11, l22)
        if n_modes is not None:
            _checks.check_count("n_modes", n_modes)
            l11, l22 = jnp.broadcast_to(l11, (n_modes,)), jnp.broadcast_to(l22, (n_modes,))
        return cls(lambda_s=l11, lambda_d=jnp.ones_like(l11), lambda_2=l22)

    @classmethod
    def clean_online(cls, sigma2: float | jax.Array = 0.0, n_modes: int | None = None) -> "ModeData":
        r"""The online view clean, the target view $x + \sigma\xi$ (Halvagal et al.'s toy update):
        $(\ell_{11}, \ell_{12}, \ell_{22}) = (1, 1, 1 + \sigma^2)$."""
        return cls.views(0.0, sigma2, n_modes)

    @property
    def l11(self):
        """$E[u_1^2]$ (`lambda_s`)."""
        return self.lambda_s

    @property
    def l12(self):
        """$E[u_1u_2]$ (`lambda_d`)."""
        return self.lambda_d

    @property
    def l22(self):
        """$E[u_2^2]$ (`lambda_2`, or `lambda_s` when both views are alike)."""
        return self.lambda_s if self.lambda_2 is None else self.lambda_2

    @property
    def symmetric(self) -> bool:
        """Whether both views have the same law (`lambda_2` unset)."""
        return self.lambda_2 is None

    @property
    def sigma2(self):
        r"""Per-mode augmentation variance of the online view relative to the data, $\lambda_s/\lambda_d - 1$."""
        return jnp.asarray(self.lambda_s) / jnp.asarray(self.lambda_d) - 1.0

    def validate(self) -> "ModeData":
        _checks.check_positive("ModeData.lambda_d", self.lambda_d, strict=False)
        _checks.check_positive("ModeData.lambda_s", self.lambda_s)
        if self.lambda_2 is not None:
            _checks.check_positive("ModeData.lambda_2", self.lambda_2)
            if all(_checks.is_concrete(v) for v in (self.lambda_s, self.lambda_d, self.lambda_2)):
                l11, l12, l22 = np.broadcast_arrays(*(np.asarray(v, float) for v in (self.l11, self.l12, self.l22)))
                if np.any(l12 * l12 > l11 * l22 * (1 + 1e-12)):
                    raise ValueError("ModeData: the views' moments must form a PSD pair, lambda_d^2 <= lambda_s * "
                                     "lambda_2 (a cross-view moment cannot exceed both same-view moments)")
            return self
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
    r"""Second moments of the data for the full matrix flow (Tian et al. 2021).

    Attributes:
        X: $X = E_x[\bar x \bar x^\top]$, the augmentation-averaged data
            second moment (`E[x_1 x_2^T]`), symmetric PSD, shape `(n1, n1)`.
        Xp: $X' = E_x[\mathrm{Cov}(x'|x)]$, the augmentation covariance,
            symmetric PSD, shape `(n1, n1)`.
    """

    X: jax.Array
    Xp: jax.Array

    @classmethod
    def isotropic(cls, n1: int, sigma2: float | jax.Array = 0.0) -> "MomentData":
        """Assumption 2: `X = I`, `X' = sigma2 I`."""
        _checks.check_positive("sigma2", sigma2, strict=False)
        eye = jnp.eye(n1)
        return cls(X=eye, Xp=jnp.asarray(sigma2) * eye)

    @classmethod
    def commuting(cls, basis, lambda_s, lambda_d) -> "MomentData":
        r"""`X = V diag(lambda_d) V^T`, `X + X' = V diag(lambda_s) V^T` for orthonormal `V`."""
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
