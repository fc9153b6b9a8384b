r"""Expectations over the two views: how an expected loss (and its gradient) is computed.

==========================  =====================================================================================
component                   expectation
==========================  =====================================================================================
:class:`Auto`               :class:`SecondMoments` for a loss that depends on the views' second moments only
                            (the Euclidean losses), :class:`GaussianNodes` otherwise
:class:`SecondMoments`      **exact** for losses that are homogeneous quadratic forms of the views: for
                            :math:`v = L\xi`, :math:`E[v^\top Av] = \sum_i (Le_i)^\top A(Le_i)`, so the columns of a
                            square root of the joint view covariance, weight 1, carry the expectation exactly
:class:`GaussianNodes`      a fixed scrambled-Sobol Gaussian node set (common random numbers: the expected
                            gradient is a smooth function of the weights, so adaptive steps work); error
                            :math:`O(K^{-1})` to :math:`O(K^{-1/2})` in the node count :math:`K`
:class:`MeanField`          the cosine loss at eigenmode level with the norms replaced by their RMS values
                            (Halvagal et al. 2023, §2.2): **approximate**, right fixed points, transients off by
                            10-30 %
==========================  =====================================================================================

At eigenmode level mode :math:`m` sees a pair :math:`(u_1, u_2)` with :math:`E[u_1^2] = E[u_2^2] = \lambda_s`,
:math:`E[u_1u_2] = \lambda_d` (:class:`~dynsim.params.ModeData`); :meth:`AbstractExpectation.mode_nodes` gives
nodes of that law, shape ``(K, M)`` each, and weights ``(K,)``.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from dynsim.components._base import AbstractComponent


@functools.lru_cache(maxsize=32)
def gaussian_nodes(n_nodes: int, n_modes: int, seed: int) -> np.ndarray:
    """Fixed standard-normal nodes, shape ``(2, n_nodes, n_modes)``: scrambled Sobol points
    (scipy.stats.qmc) mapped through the normal quantile; consecutive blocks of a power-of-two
    size are themselves balanced Sobol sets (used by error estimates)."""
    from scipy.stats import norm, qmc

    u = qmc.Sobol(d=2 * n_modes, scramble=True, seed=seed).random(n_nodes)
    u = np.clip(u, 1e-12, 1 - 1e-12)
    x = norm.ppf(u)
    return np.stack([x[:, :n_modes], x[:, n_modes:]])


class AbstractExpectation(AbstractComponent):
    """How expectations over the views are taken (module table)."""

    name: ClassVar[str] = ""

    def resolve(self, loss) -> "AbstractExpectation":
        """The concrete expectation used with ``loss`` (``Auto`` chooses; the others are themselves)."""
        return self

    def work_factor(self, loss) -> int:
        """Elements one right-hand side touches per state element (sizes batch chunks on CPU)."""
        return 1

    def mode_nodes(self, data, n_modes: int, dtype):
        """``(u1, u2, weights)`` of the per-mode view law."""
        raise NotImplementedError

    def network_nodes(self, data):
        """``(x1, x2, weights)``: the deterministic batch whose weighted loss is the expected loss."""
        raise NotImplementedError


class SecondMoments(AbstractExpectation):
    """Exact for losses quadratic in the views (module table)."""

    name: ClassVar[str] = "second_moments"

    def mode_nodes(self, data, n_modes: int, dtype):
        """``3M`` nodes: :math:`u_1 = u_2 = \\sqrt{\\lambda_d}e_m` (data) and :math:`\\sqrt{\\lambda_s-\\lambda_d}e_m` in
        one view at a time (augmentation), weight 1."""
        eye = jnp.eye(n_modes, dtype=dtype)
        ld = jnp.broadcast_to(jnp.asarray(data.lambda_d, dtype), (n_modes,))
        noise = jnp.sqrt(jnp.maximum(jnp.broadcast_to(jnp.asarray(data.lambda_s, dtype), (n_modes,)) - ld, 0.0))
        sig, nse, zero = eye * jnp.sqrt(ld), eye * noise, jnp.zeros_like(eye)
        u1 = jnp.concatenate([sig, nse, zero])
        u2 = jnp.concatenate([sig, zero, nse])
        return u1, u2, jnp.ones(3 * n_modes, dtype)

    def network_nodes(self, data):
        return data.quadratic_nodes()


class GaussianNodes(AbstractExpectation):
    """A fixed quasi-Monte-Carlo node set of ``n_nodes`` (a power of two) points from seed ``seed``."""

    name: ClassVar[str] = "gaussian_nodes"
    n_nodes: int = eqx.field(default=4096, static=True)
    seed: int = eqx.field(default=0, static=True)

    def __check_init__(self):
        n = int(self.n_nodes)
        if n < 2 or n & (n - 1):
            raise ValueError(f"n_nodes must be a power of two >= 2, got {self.n_nodes}")

    def work_factor(self, loss) -> int:
        return int(self.n_nodes)

    def standard_nodes(self, n_modes: int, dtype):
        """The standard-normal pair ``(xi1, xi2)``, shape ``(2, K, M)``."""
        return jnp.asarray(gaussian_nodes(int(self.n_nodes), n_modes, int(self.seed)), dtype)

    def mode_nodes(self, data, n_modes: int, dtype):
        """:math:`u_1 = a\\xi_1 + b\\xi_2`, :math:`u_2 = b\\xi_1 + a\\xi_2` with :math:`a^2+b^2 = \\lambda_s`,
        :math:`2ab = \\lambda_d`; weights :math:`1/K`."""
        xi = self.standard_nodes(n_modes, dtype)
        ls, ld = data.lambda_s, data.lambda_d
        a = (jnp.sqrt(ls + ld) + jnp.sqrt(ls - ld)) / 2
        b = (jnp.sqrt(ls + ld) - jnp.sqrt(ls - ld)) / 2
        u1, u2 = a * xi[0] + b * xi[1], b * xi[0] + a * xi[1]
        return u1, u2, jnp.full(u1.shape[0], 1.0 / u1.shape[0], dtype)

    def network_nodes(self, data):
        return data.gaussian_nodes(self.n_nodes, self.seed)


class MeanField(AbstractExpectation):
    """Halvagal et al. (2023) §2.2's RMS-norm approximation of the cosine loss (eigenmode level only)."""

    name: ClassVar[str] = "mean_field"


class Auto(AbstractExpectation):
    """:class:`SecondMoments` for second-moment losses, else :class:`GaussianNodes` with these settings."""

    name: ClassVar[str] = "auto"
    n_nodes: int = eqx.field(default=4096, static=True)
    seed: int = eqx.field(default=0, static=True)

    def resolve(self, loss) -> AbstractExpectation:
        return SecondMoments() if loss.quadratic else GaussianNodes(self.n_nodes, self.seed)

    def work_factor(self, loss) -> int:
        return self.resolve(loss).work_factor(loss)


EXPECTATIONS = {cls.name: cls for cls in (Auto, SecondMoments, GaussianNodes, MeanField)}
