r"""Expectations over the two views: how an expected loss (and its gradient) is computed.

| component | expectation |
|---|---|
| [`Auto`][dynsim.components.Auto] | [`SecondMoments`][dynsim.components.SecondMoments] for a loss that depends on the views' second moments only (the Euclidean losses); [`GaussianExact`][dynsim.components.GaussianExact] for a loss with a two-radius form (the cosine losses) on Gaussian views; [`GaussianNodes`][dynsim.components.GaussianNodes] otherwise |
| [`SecondMoments`][dynsim.components.SecondMoments] | **exact** for losses that are homogeneous quadratic forms of the views: for $v = L\xi$, $E[v^\top Av] = \sum_i (Le_i)^\top A(Le_i)$, so the columns of a square root of the joint view covariance, weight 1, carry the expectation exactly |
| [`GaussianNodes`][dynsim.components.GaussianNodes] | a fixed scrambled-Sobol Gaussian node set (common random numbers: the expected gradient is a smooth function of the weights, so adaptive steps work); error $O(K^{-1})$ to $O(K^{-1/2})$ in the node count $K$ |
| [`GaussianExact`][dynsim.components.GaussianExact] | **exact** for Gaussian views and losses with a two-radius form (the cosine losses, at eigenmode and network level): $1/\Vert p\Vert$ and $1/\Vert z\Vert$ become Gaussian tilts and the expectation a smooth 2-D integral over the tilts, evaluated by a double-exponential rule to round-off ([`radial_rule`][dynsim.components.radial_rule]; error estimate from the rule at half the nodes) |
| [`Empirical`][dynsim.components.Empirical] | **exact** for any loss on data whose views are a finite set of pairs: every pair with its probability (`data.empirical_nodes()`; [`dynsim.data.AugmentedViews`][dynsim.data.AugmentedViews]: every input with every pair of augmentations), network level only |
| [`MeanField`][dynsim.components.MeanField] | the cosine loss at eigenmode level with the norms replaced by their RMS values (Halvagal et al. 2023): **approximate**, right fixed points, transients off by 10-30 % |

At eigenmode level mode $m$ sees a pair $(u_1, u_2)$ with $E[u_1^2] = \ell_{11}$,
$E[u_1u_2] = \ell_{12}$, $E[u_2^2] = \ell_{22}$ ([`ModeData`][dynsim.params.ModeData]; both views alike:
$\ell_{11} = \ell_{22} = \lambda_s$, $\ell_{12} = \lambda_d$); `AbstractExpectation.mode_nodes` gives
nodes of that law, shape `(K, M)` each, and weights `(K,)`.
"""

from __future__ import annotations

import functools
import warnings
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from dynsim.components._base import AbstractComponent


@functools.lru_cache(maxsize=32)
def gaussian_nodes(n_nodes: int, n_modes: int, seed: int) -> np.ndarray:
    """Fixed standard-normal nodes, shape `(2, n_nodes, n_modes)`: scrambled Sobol points
    (scipy.stats.qmc) mapped through the normal quantile; consecutive blocks of a power-of-two
    size are themselves balanced Sobol sets (used by error estimates)."""
    from scipy.stats import norm, qmc

    u = qmc.Sobol(d=2 * n_modes, scramble=True, seed=seed).random(n_nodes)
    u = np.clip(u, 1e-12, 1 - 1e-12)
    x = norm.ppf(u)
    return np.stack([x[:, :n_modes], x[:, n_modes:]])


def radial_rule(n_half: int, step: float):
    r"""Nodes and weights of $\int_0^\infty \sigma^{-1/2}g(\sigma)\,d\sigma = 2\int_0^\infty g(x^2)\,dx
    \approx \sum_k w_k\,g(\sigma_k)$: the exp-sinh rule $x_k = \exp(\tfrac\pi2\sinh kh)$,
    $w_k = \pi h\cosh(kh)\,x_k$, $k = -n, \dots, n$ (`n_half`, `step` h). For an integrand
    analytic in $\log\sigma$ on the strip $|\mathrm{Im}\log\sigma| < \pi/2$ with algebraic decay
    at both ends, as the two-radius integrands are, the error falls like $e^{-c/h}$. Returns NumPy
    arrays `(sigma, weights)`, shape `(2n+1,)`."""
    k = np.arange(-n_half, n_half + 1) * step
    x = np.exp(np.pi / 2 * np.sinh(k))
    return x * x, np.pi * step * np.cosh(k) * x


class ExactViews(NamedTuple):
    r"""The network-level input of [`GaussianExact`][dynsim.components.GaussianExact]: the views' second moments
    $E[x_1x_1^\top], E[x_1x_2^\top], E[x_2x_2^\top]$ and the radial rule `(sigma, weights)`."""

    S11: jax.Array
    S12: jax.Array
    S22: jax.Array
    sigma: jax.Array
    weights: jax.Array

    def swapped(self) -> "ExactViews":
        """The same views in the other order (for a loss averaged over both orders)."""
        return ExactViews(self.S22, self.S12.T, self.S11, self.sigma, self.weights)


class AbstractExpectation(AbstractComponent):
    """How expectations over the views are taken (module table)."""

    name: ClassVar[str] = ""

    def resolve(self, loss, modes: bool = False, gaussian: bool = True) -> "AbstractExpectation":
        """The concrete expectation used with `loss` (`Auto` chooses; `modes`: at eigenmode level;
        `gaussian`: the views are Gaussian, not a finite dataset; the others are themselves)."""
        return self

    def work_factor(self, loss) -> int:
        """Elements one right-hand side touches per state element (sizes batch chunks on CPU)."""
        return 1

    def mode_nodes(self, data, n_modes: int, dtype):
        """`(u1, u2, weights)` of the per-mode view law."""
        raise NotImplementedError

    def network_nodes(self, data):
        """What the network's expected loss is computed from: `(x1, x2, weights)`, a deterministic batch whose
        weighted loss is the expected loss, or ([`GaussianExact`][dynsim.components.GaussianExact]) the views' moments [`ExactViews`][dynsim.components.ExactViews]."""
        raise NotImplementedError


class SecondMoments(AbstractExpectation):
    """Exact for losses quadratic in the views (module table)."""

    name: ClassVar[str] = "second_moments"

    def mode_nodes(self, data, n_modes: int, dtype):
        """`3M` nodes: $u_1 = u_2 = \\sqrt{\\lambda_d}e_m$ (data) and $\\sqrt{\\lambda_s-\\lambda_d}e_m$ in
        one view at a time (augmentation), weight 1. Views that differ: `2M` nodes, the columns of each mode's
        2x2 Cholesky factor of $((\\ell_{11}, \\ell_{12}), (\\ell_{12}, \\ell_{22}))$."""
        eye = jnp.eye(n_modes, dtype=dtype)
        if not data.symmetric:
            l11, l12, l22 = (jnp.broadcast_to(jnp.asarray(v, dtype), (n_modes,)) for v in (data.l11, data.l12, data.l22))
            a = jnp.sqrt(l11)
            b = l12 / a
            c = jnp.sqrt(jnp.maximum(l22 - b * b, 0.0))
            u1 = jnp.concatenate([eye * a, jnp.zeros_like(eye)])
            u2 = jnp.concatenate([eye * b, eye * c])
            return u1, u2, jnp.ones(2 * n_modes, dtype)
        ld = jnp.broadcast_to(jnp.asarray(data.lambda_d, dtype), (n_modes,))
        noise = jnp.sqrt(jnp.maximum(jnp.broadcast_to(jnp.asarray(data.lambda_s, dtype), (n_modes,)) - ld, 0.0))
        sig, nse, zero = eye * jnp.sqrt(ld), eye * noise, jnp.zeros_like(eye)
        u1 = jnp.concatenate([sig, nse, zero])
        u2 = jnp.concatenate([sig, zero, nse])
        return u1, u2, jnp.ones(3 * n_modes, dtype)

    def network_nodes(self, data):
        return data.quadratic_nodes()


class GaussianNodes(AbstractExpectation):
    """A fixed quasi-Monte-Carlo node set of `n_nodes` (a power of two) points from seed `seed`."""

    name: ClassVar[str] = "gaussian_nodes"
    n_nodes: int = eqx.field(default=4096, static=True)
    seed: int = eqx.field(default=0, static=True)

    #: an estimated error above this fraction of the quantity estimated warns (`warn_if_inaccurate`)
    warn_fraction: ClassVar[float] = 0.01

    def __check_init__(self):
        n = int(self.n_nodes)
        if n < 2 or n & (n - 1):
            raise ValueError(f"n_nodes must be a power of two >= 2, got {self.n_nodes}")

    def warn_if_inaccurate(self, error: float, scale: float, error_name: str, scale_name: str) -> None:
        """Warn when the estimated `error` exceeds `warn_fraction` of `scale` (the models call it with
        their block estimates at the start of a run)."""
        if scale > 0 and error > self.warn_fraction * scale:
            warnings.warn(f"the {self.n_nodes}-node expectation's estimated {error_name} is {error / scale:.1%} of the "
                          f"{scale_name} at the start (above {self.warn_fraction:.0%}): use GaussianExact "
                          "(expectation='exact') for Gaussian views, or more nodes", stacklevel=4)

    def work_factor(self, loss) -> int:
        return int(self.n_nodes)

    def standard_nodes(self, n_modes: int, dtype):
        """The standard-normal pair `(xi1, xi2)`, shape `(2, K, M)`."""
        return jnp.asarray(gaussian_nodes(int(self.n_nodes), n_modes, int(self.seed)), dtype)

    def mode_nodes(self, data, n_modes: int, dtype):
        """$u_1 = a\\xi_1 + b\\xi_2$, $u_2 = b\\xi_1 + a\\xi_2$ with $a^2+b^2 = \\lambda_s$,
        $2ab = \\lambda_d$ (views that differ: the symmetric square root of each mode's 2x2 moment matrix);
        weights $1/K$."""
        xi = self.standard_nodes(n_modes, dtype)
        if not data.symmetric:  # the symmetric square root of each mode's 2x2 moment matrix
            l11, l12, l22 = data.l11, data.l12, data.l22
            root = jnp.sqrt(jnp.maximum(l11 * l22 - l12 * l12, 0.0))
            scale = jnp.sqrt(l11 + l22 + 2 * root)
            a, b, c = (l11 + root) / scale, l12 / scale, (l22 + root) / scale
            u1, u2 = a * xi[0] + b * xi[1], b * xi[0] + c * xi[1]
            return u1, u2, jnp.full(u1.shape[0], 1.0 / u1.shape[0], dtype)
        ls, ld = data.lambda_s, data.lambda_d
        a = (jnp.sqrt(ls + ld) + jnp.sqrt(ls - ld)) / 2
        b = (jnp.sqrt(ls + ld) - jnp.sqrt(ls - ld)) / 2
        u1, u2 = a * xi[0] + b * xi[1], b * xi[0] + a * xi[1]
        return u1, u2, jnp.full(u1.shape[0], 1.0 / u1.shape[0], dtype)

    def network_nodes(self, data):
        return data.gaussian_nodes(self.n_nodes, self.seed)


class GaussianExact(AbstractExpectation):
    r"""Exact Gaussian expectation of a loss with a two-radius form (the cosine losses), at eigenmode level
    ([`mode_cosine_expectation`][dynsim.components.mode_cosine_expectation]) and at network level
    ([`network_cosine_expectation`][dynsim.components.network_cosine_expectation]; Gaussian views only, not a finite dataset).

    The rule ([`radial_rule`][dynsim.components.radial_rule]) has `2 n_half + 1` nodes per radius and range $|kh| \le$ `reach`; the
    default is `n_half = 38`, `reach = 3.8` (step 0.1) in float64 (drives within $10^{-12}$ of an
    adaptive reference for random covariances up to M = 32, $3\cdot10^{-10}$ when one mode carries 97 %
    of the variance) and `n_half = 12`, `reach = 3` in float32 (keeps $\sigma_k^2$ finite). The
    derivation and the error checks are in `docs/theory/cosine_expectation.md`."""

    name: ClassVar[str] = "gaussian_exact"
    n_half: int | None = eqx.field(default=None, static=True)
    reach: float | None = eqx.field(default=None, static=True)

    def __check_init__(self):
        if self.n_half is not None and (int(self.n_half) < 2 or int(self.n_half) % 2):
            raise ValueError(f"n_half must be an even integer >= 2 (the error estimate halves it), got {self.n_half}")
        if self.reach is not None and not 1.0 <= float(self.reach) <= 6.0:
            raise ValueError(f"reach must be in [1, 6] (the exp-sinh range; larger overflows), got {self.reach}")

    def settings(self, dtype) -> tuple[int, float]:
        """`(n_half, step)` for states of `dtype`."""
        f32 = jnp.finfo(dtype).bits <= 32
        n = int(self.n_half) if self.n_half is not None else (12 if f32 else 38)
        reach = float(self.reach) if self.reach is not None else (3.0 if f32 else 3.8)
        return n, reach / n

    def rule(self, dtype, coarse: bool = False):
        """`(sigma, weights)` as arrays of `dtype`; `coarse`: every other node with twice the weight, the rule
        at step 2h whose difference from the full rule estimates the error."""
        n, h = self.settings(dtype)
        sigma, weights = radial_rule(n // 2, 2 * h) if coarse else radial_rule(n, h)
        return jnp.asarray(sigma, dtype), jnp.asarray(weights, dtype)

    def work_factor(self, loss) -> int:
        n, _ = self.settings(jnp.float64)
        return (2 * n + 1) ** 2

    def mode_nodes(self, data, n_modes: int, dtype):
        raise ValueError("GaussianExact has no nodes: it applies to losses with a two-radius form (the cosine "
                         "losses); use GaussianNodes for other losses")

    def network_nodes(self, data, coarse: bool = False):
        """[`ExactViews`][dynsim.components.ExactViews]: the views' joint second moments and the radial rule in the data's dtype
        (`coarse`: the rule at step 2h, for the error estimate)."""
        if data.points is not None:
            raise ValueError("GaussianExact needs Gaussian views; a finite dataset (ViewData.points) is not "
                             "Gaussian: use GaussianNodes (or Auto, which does)")
        S11, S12, S22 = data.view_moments()
        sigma, weights = self.rule(jnp.result_type(S11), coarse)
        return ExactViews(S11, S12, S22, sigma, weights)


class Empirical(AbstractExpectation):
    """Every pair of a finite data set's views with its probability: the expectation over the data's own law, exact
    for any loss (network level; the data provide `empirical_nodes()`)."""

    name: ClassVar[str] = "empirical"

    def mode_nodes(self, data, n_modes: int, dtype):
        raise ValueError("the empirical expectation is over a data set's views: network level only")

    def network_nodes(self, data):
        if not hasattr(data, "empirical_nodes"):
            raise ValueError(f"the empirical expectation needs views given as a finite set of pairs "
                             f"(dynsim.data.AugmentedViews), not {type(data).__name__}")
        return data.empirical_nodes()


class MeanField(AbstractExpectation):
    """Halvagal et al. (2023)'s RMS-norm approximation of the cosine loss (eigenmode level only)."""

    name: ClassVar[str] = "mean_field"


class Auto(AbstractExpectation):
    """[`SecondMoments`][dynsim.components.SecondMoments] for second-moment losses; [`GaussianExact`][dynsim.components.GaussianExact] for losses with a two-radius form
    on Gaussian views; else (other losses, a network on a finite dataset) [`GaussianNodes`][dynsim.components.GaussianNodes] with these
    settings."""

    name: ClassVar[str] = "auto"
    n_nodes: int = eqx.field(default=4096, static=True)
    seed: int = eqx.field(default=0, static=True)

    def resolve(self, loss, modes: bool = False, gaussian: bool = True) -> AbstractExpectation:
        if loss.quadratic:
            return SecondMoments()
        if loss.gaussian_exact and (modes or gaussian):
            return GaussianExact()
        return GaussianNodes(self.n_nodes, self.seed)

    def work_factor(self, loss) -> int:
        return self.resolve(loss).work_factor(loss)


EXPECTATIONS = {cls.name: cls for cls in (Auto, SecondMoments, GaussianNodes, GaussianExact, Empirical, MeanField)}
