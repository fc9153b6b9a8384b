r"""Data and augmentation model of the network simulations, and the quadrature that turns it into
expected gradients.

Inputs $x \sim \mathcal N(0, \Sigma_x)$ (or uniform on a fixed finite dataset of `N` points),
two views $x_i = x + n_i$ with independent $n_1 \sim \mathcal N(0, \Sigma_n)$ (online view) and
$n_2 \sim \mathcal N(0, \Sigma_{n,2})$ (target view; $\Sigma_{n,2} = \Sigma_n$ unless set)
(Tian et al. 2021 "a concrete sampler"; Halvagal et al. 2023). Hence

$$
E[x_1x_1^\top] = \Sigma_x + \Sigma_n = X + X',\qquad E[x_1x_2^\top] = \Sigma_x = X,\qquad
E[x_2x_2^\top] = \Sigma_x + \Sigma_{n,2}
$$

([`MomentData`][dynsim.params.MomentData]), with $\Sigma_x$ the empirical second moment
$\tfrac1N\sum x x^\top$ for a finite dataset.

A *batch* is `(x1, x2, weights)` with shapes `(B, n1), (B, n1), (B,)`; a loss is the weighted
sum of per-sample losses. Three kinds of batch feed the same gradient code:

* `ViewData.sample`: a random minibatch, weights `1/B` (SGD);
* `ViewData.quadratic_nodes`: **exact** expectation of any loss that is a homogeneous
  quadratic form of $v = (x_1, x_2)$ (the Euclidean losses): for $v = L\xi$,
  $E[v^\top A v] = \sum_i (Le_i)^\top A (Le_i)$, so the columns of a square root of
  the joint covariance with weight 1 give the expectation (and its gradient) exactly (`3 n_1` nodes:
  the data and each view's noise);
* `ViewData.view_moments`: the joint second moments, from which the cosine losses' expectation over
  Gaussian views is computed exactly ([`GaussianExact`][dynsim.components.GaussianExact], no batch);
* `ViewData.gaussian_nodes`: a fixed scrambled-Sobol Gaussian node set (common random
  numbers, so the expected gradient is a smooth function of the weights) for other non-quadratic
  losses and finite datasets; the error falls like $K^{-1}$ to $K^{-1/2}$ in the node count `K`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks
from dynsim.components import gaussian_nodes as _std_nodes
from dynsim.params import MomentData


@jax.custom_jvp
def _sqrt_psd(S):
    r"""Square-root factor $L = U\,\mathrm{diag}(\sqrt{s})$ with $LL^\top = S$ (eigh, negative round-off clipped).

    Its derivative is that of $L = RU$ with $R = U\sqrt{s}\,U^\top$ the symmetric square root and the eigenbasis $U$
    held: $R\,\dot R + \dot R R = \dot S$ gives $(U^\top\dot RU)_{ij} = (U^\top\dot SU)_{ij}/(\sqrt{s_i} + \sqrt{s_j})$ (0 where
    both vanish), so $\frac{d}{d\theta}(LL^\top) = \dot S$ exactly, and it stays finite where eigenvalues coincide
    (isotropic noise), where the eigenvectors, and eigh's derivative, are not defined."""
    s, U = jnp.linalg.eigh((S + S.T) / 2)
    return U * jnp.sqrt(jnp.maximum(s, 0.0))


@_sqrt_psd.defjvp
def _sqrt_psd_jvp(primals, tangents):
    (S,), (dS,) = primals, tangents
    s, U = jnp.linalg.eigh((S + S.T) / 2)
    r = jnp.sqrt(jnp.maximum(s, 0.0))
    denom = r[:, None] + r[None, :]
    dS_u = U.T @ ((dS + dS.T) / 2) @ U
    dR_u = jnp.where(denom > 0, dS_u / jnp.where(denom > 0, denom, 1.0), 0.0)
    return U * r, U @ dR_u  # dL = dR U = U (U^T dR U)


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class ViewData:
    r"""Gaussian data with additive Gaussian augmentation (traced leaves).

    Attributes:
        data_cov: $\Sigma_x$, shape `(n1, n1)`, symmetric PSD.
        noise_cov: $\Sigma_n$, the online view's noise, shape `(n1, n1)`, symmetric PSD (`σ² I` by default).
        points: `None` for fresh $\mathcal N(0,\Sigma_x)$ inputs every step, or a fixed dataset,
            shape `(N, n1)` (`finite`).
        target_noise_cov: $\Sigma_{n,2}$, the target view's noise; `None` (default): the same as
            `noise_cov` (`clean_online`: a clean online view and a noisy target view).
    """

    data_cov: jax.Array
    noise_cov: jax.Array
    points: jax.Array | None = None
    target_noise_cov: jax.Array | None = None

    @classmethod
    def isotropic(cls, n1: int, sigma2=0.0) -> "ViewData":
        """$\\Sigma_x = I$, $\\Sigma_n = \\sigma^2 I$ (Tian's Assumption 2; Halvagal's toy with σ = 0.1)."""
        _checks.check_positive("sigma2", sigma2, strict=False)
        eye = jnp.eye(int(n1))
        return cls(eye, jnp.asarray(sigma2) * eye)

    @classmethod
    def views(cls, n1: int, sigma2_online=0.0, sigma2_target=0.0) -> "ViewData":
        r"""$\Sigma_x = I$ with independent isotropic noise of variance `sigma2_online` in the online view and
        `sigma2_target` in the target view: $E[x_1x_1^\top] = (1+\sigma_1^2)I$, $E[x_1x_2^\top] = I$,
        $E[x_2x_2^\top] = (1+\sigma_2^2)I$ (`target_noise_cov` set even when the two are equal)."""
        _checks.check_positive("sigma2_online", sigma2_online, strict=False)
        _checks.check_positive("sigma2_target", sigma2_target, strict=False)
        eye = jnp.eye(int(n1))
        return cls(eye, jnp.asarray(sigma2_online) * eye, target_noise_cov=jnp.asarray(sigma2_target) * eye)

    @classmethod
    def clean_online(cls, n1: int, sigma2=0.0) -> "ViewData":
        r"""$\Sigma_x = I$, the online view clean and the target view $x + \sigma\xi$ (the update rule of
        Halvagal et al.'s toy): $E[x_1x_1^\top] = E[x_1x_2^\top] = I$, $E[x_2x_2^\top] = (1+\sigma^2)I$."""
        return cls.views(n1, 0.0, sigma2)

    @property
    def gaussian(self) -> bool:
        """Whether a minibatch is Gaussian, so SGD may draw its second moments instead of its samples (a subclass
        that draws actual data says `False`)."""
        return True

    @property
    def symmetric(self) -> bool:
        """Whether both views carry the same noise law (`target_noise_cov` unset)."""
        return self.target_noise_cov is None

    @property
    def target_noise(self):
        r"""$\Sigma_{n,2}$: `target_noise_cov`, or `noise_cov` when both views are alike."""
        return jnp.asarray(self.noise_cov if self.target_noise_cov is None else self.target_noise_cov)

    def noise_factors(self):
        """Square-root factors `(L1, L2)` of the online and the target view's noise covariances (`L2 is L1` when
        both views are alike)."""
        L1 = _sqrt_psd(jnp.asarray(self.noise_cov))
        return L1, (L1 if self.symmetric else _sqrt_psd(self.target_noise))

    @classmethod
    def from_moments(cls, moments: MomentData) -> "ViewData":
        """Gaussian views with $\\Sigma_x = X$, $\\Sigma_n = X'$."""
        return cls(jnp.asarray(moments.X), jnp.asarray(moments.Xp))

    def finite(self, key, n_points: int) -> "ViewData":
        """Draw a fixed dataset of `n_points` inputs from $\\mathcal N(0, \\Sigma_x)$ with `key`."""
        if int(n_points) < 1:
            raise ValueError(f"n_points must be >= 1, got {n_points}")
        xi = jax.random.normal(key, (int(n_points), self.n1), jnp.asarray(self.data_cov).dtype)
        return ViewData(self.data_cov, self.noise_cov, xi @ _sqrt_psd(jnp.asarray(self.data_cov)).T,
                        self.target_noise_cov)

    @property
    def n1(self) -> int:
        return int(np.shape(self.data_cov)[-1])

    @property
    def input_moment(self):
        """$X = E[x_1 x_2^\\top]$: $\\Sigma_x$, or the dataset's empirical second moment."""
        if self.points is None:
            return jnp.asarray(self.data_cov)
        P = jnp.asarray(self.points)
        return P.T @ P / P.shape[0]

    def view_moments(self):
        r"""The views' joint second moments $(E[x_1x_1^\top], E[x_1x_2^\top], E[x_2x_2^\top]) =
        (X + \Sigma_n, X, X + \Sigma_{n,2})$."""
        X = self.input_moment
        return X + jnp.asarray(self.noise_cov), X, X + self.target_noise

    def moments(self) -> MomentData:
        """[`MomentData`][dynsim.params.MomentData] `(X, X')` of these views (for the matrix ODE of Lemma 1, which
        assumes both views alike)."""
        if not self.symmetric:
            raise ValueError("MomentData (X, X') describes views with the same noise; these views differ "
                             "(target_noise_cov): use ViewData.view_moments()")
        return MomentData(X=self.input_moment, Xp=jnp.asarray(self.noise_cov))

    # --- batches -----------------------------------------------------------------------------
    def sample(self, key, batch: int, draw_dtype=None):
        r"""A random minibatch `(x1, x2, weights)`.

        Gaussian inputs use $a = x + (n_1+n_2)/2 \sim \mathcal N(0, \Sigma_x + \Sigma_n/2)$ and
        $d = (n_1-n_2)/2 \sim \mathcal N(0, \Sigma_n/2)$, independent, $x_{1,2} = a \pm d$: the
        same joint law with two thirds of the random numbers. A finite dataset is sampled without
        replacement within the batch (the whole dataset, in order, when `batch == N`) plus fresh
        noise. `draw_dtype` is the dtype of the standard normals (default: the data's), cast after.
        """
        kx, k1, k2 = jax.random.split(key, 3)
        dtype = jnp.asarray(self.noise_cov).dtype
        draw = dtype if draw_dtype is None else draw_dtype

        def normal(k, L):
            return jax.random.normal(k, (batch, self.n1), draw).astype(dtype) @ L.T

        if self.points is None and self.symmetric:
            a = normal(kx, _sqrt_psd(jnp.asarray(self.data_cov) + jnp.asarray(self.noise_cov) / 2))
            d = normal(k1, _sqrt_psd(jnp.asarray(self.noise_cov) / 2))
            return a + d, a - d, jnp.full((batch,), 1.0 / batch, dtype)
        if self.points is None:
            x = normal(kx, _sqrt_psd(jnp.asarray(self.data_cov)))
        else:
            P = jnp.asarray(self.points)
            x = P if batch == P.shape[0] else P[jax.random.choice(kx, P.shape[0], (batch,), replace=False)]
        L1, L2 = self.noise_factors()
        return x + normal(k1, L1), x + normal(k2, L2), jnp.full((batch,), 1.0 / batch, dtype)

    def joint_factor(self):
        r"""`L` (`(2 n1, 2 n1)`) with $LL^\top = \begin{pmatrix}X+X' & X\\ X & X+X'\end{pmatrix}$, the covariance of $(x_1, x_2)$."""
        X = jnp.asarray(self.data_cov)
        return _sqrt_psd(jnp.block([[X + jnp.asarray(self.noise_cov), X], [X, X + self.target_noise]]))

    def moment_batch(self, key, batch: int, L=None, draw_dtype=None):
        r"""A minibatch *by its second moments*, for losses that are quadratic forms of $(x_1, x_2)$.

        For Gaussian views the scatter $\sum_b v_bv_b^\top$ of `batch` samples
        $v = (x_1, x_2)$ is Wishart(`batch`, $LL^\top$). Bartlett's decomposition draws it as
        $LAA^\top L^\top$ (`A` lower triangular, $A_{ii} = \sqrt{\chi^2_{B-i+1}}$, $A_{ij}\sim\mathcal N(0,1)$),
        so the `2 n1` columns of $LA/\sqrt{B}$ with weight 1 carry exactly the batch's moments:
        the same law of every quadratic-loss gradient step with $O(n_1^2)$ instead of
        $O(Bn_1)$ random numbers. Needs `batch >= 2 n1` and fresh Gaussian inputs (no dataset).
        """
        p = 2 * self.n1
        if batch < p or self.points is not None:
            raise ValueError(f"moment sampling needs fresh Gaussian inputs and batch >= 2 n1 = {p}")
        dtype = jnp.asarray(self.noise_cov).dtype
        draw = dtype if draw_dtype is None else draw_dtype
        L = self.joint_factor() if L is None else L
        kz, kc = jax.random.split(key)
        Z = jnp.tril(jax.random.normal(kz, (p, p), draw).astype(dtype), -1)
        chi2 = 2.0 * jax.random.gamma(kc, (batch - jnp.arange(p, dtype=dtype)) / 2, (p,), dtype)
        A = Z + jnp.diag(jnp.sqrt(chi2))
        V = (L @ A / jnp.sqrt(jnp.asarray(batch, dtype))).T  # rows: nodes (x1, x2)
        return V[:, : self.n1], V[:, self.n1:], jnp.ones(p, dtype)

    def quadratic_nodes(self):
        r"""Exact nodes for homogeneous quadratic losses (module docstring): `3 n1` nodes with weight 1
        from the joint covariance $\begin{pmatrix}X+X' & X\\ X & X+X'\end{pmatrix}$; for a finite
        dataset the `N` points $(x, x)$ with weight $1/N$ plus the noise nodes."""
        Ln, L2 = self.noise_factors()
        zero = jnp.zeros_like(Ln)
        noise = (jnp.concatenate([Ln.T, zero]), jnp.concatenate([zero, L2.T]))  # (2 n1, n1) each
        if self.points is None:
            Lx = _sqrt_psd(jnp.asarray(self.data_cov))
            x1 = jnp.concatenate([Lx.T, noise[0]])
            x2 = jnp.concatenate([Lx.T, noise[1]])
            return x1, x2, jnp.ones(x1.shape[0], x1.dtype)
        P = jnp.asarray(self.points)
        w = jnp.concatenate([jnp.full((P.shape[0],), 1.0 / P.shape[0], P.dtype), jnp.ones(2 * self.n1, P.dtype)])
        return jnp.concatenate([P, noise[0]]), jnp.concatenate([P, noise[1]]), w

    def gaussian_nodes(self, n_nodes: int, seed: int = 0):
        """Fixed quasi-Monte-Carlo nodes of the two views (weights `1/K`). With a finite dataset, each
        point gets `max(1, n_nodes // N)` noise nodes (a product rule)."""
        dtype = jnp.asarray(self.noise_cov).dtype
        Ln, L2 = self.noise_factors()
        if self.points is None:
            half = (3 * self.n1 + 1) // 2  # _std_nodes gives 2*half Sobol dimensions
            xi = jnp.asarray(_std_nodes(int(n_nodes), half, int(seed)), dtype)
            xi = jnp.concatenate([xi[0], xi[1]], axis=-1)  # (K, >= 3 n1): x, n1, n2
            x = xi[:, : self.n1] @ _sqrt_psd(jnp.asarray(self.data_cov)).T
            x1 = x + xi[:, self.n1: 2 * self.n1] @ Ln.T
            x2 = x + xi[:, 2 * self.n1: 3 * self.n1] @ L2.T
            return x1, x2, jnp.full((x1.shape[0],), 1.0 / x1.shape[0], dtype)
        P = jnp.asarray(self.points)
        N, k = P.shape[0], max(1, int(n_nodes) // P.shape[0])
        k = 1 << (k.bit_length() - 1)  # a power of two for the Sobol set
        xi = jnp.asarray(_std_nodes(k, self.n1, int(seed)), dtype)  # (2, k, n1)
        x1 = (P[:, None, :] + (xi[0] @ Ln.T)[None]).reshape(N * k, self.n1)
        x2 = (P[:, None, :] + (xi[1] @ L2.T)[None]).reshape(N * k, self.n1)
        return x1, x2, jnp.full((N * k,), 1.0 / (N * k), dtype)

    def validate(self) -> "ViewData":
        _checks.check_psd("ViewData.data_cov", self.data_cov)
        _checks.check_psd("ViewData.noise_cov", self.noise_cov)
        _checks.check_shape("ViewData.noise_cov", self.noise_cov, np.shape(self.data_cov))
        if self.target_noise_cov is not None:
            _checks.check_psd("ViewData.target_noise_cov", self.target_noise_cov)
            _checks.check_shape("ViewData.target_noise_cov", self.target_noise_cov, np.shape(self.data_cov))
        if self.points is not None:
            if np.ndim(self.points) != 2 or np.shape(self.points)[1] != self.n1:
                raise ValueError(f"ViewData.points must have shape (N, {self.n1}), got {np.shape(self.points)}")
            _checks.check_finite("ViewData.points", self.points)
        return self
