r"""Views of a data set for the network simulations: SGD on actual augmented samples, and the expected gradient from
their exact second moments (`docs/theory/views.md#augmentations`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from dynsim.data._augment import Augmentation
from dynsim.data._moments import ViewMoments, exact_moments
from dynsim.networks import ViewData


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class AugmentedViews(ViewData):
    r"""Two augmented views of a finite data set, as network data ([`dynsim.networks.train`][dynsim.networks.train],
    [`flow`][dynsim.networks.flow]).

    A minibatch is drawn from the data itself: `B` inputs uniformly (with replacement), an operator of each view's
    family for each, the views' isotropic noise, each view's mean removed and the optional projection applied. The
    expected gradient (flow, GD) uses the views' exact second moments (the inherited `ViewData` fields: $\Sigma_x =
    S_{12}$, noises $S_{11} - S_{12}$, $S_{22} - S_{12}$), so it is exact for the losses of second moments (Euclidean,
    Barlow Twins, spectral contrastive, VICReg) and the Gaussian-moment surrogate for the cosine loss. Build it with
    [`from_images`][dynsim.data.AugmentedViews.from_images].

    Attributes:
        views1, views2: `(K, N, k)` every augmented input, centred and projected, per operator of each view's family.
        probs1, probs2: `(K,)` the operators' probabilities.
        noise1, noise2: `(k, n)` factors $L$ of each view's noise covariance $LL^\top$ after the projection.
    """

    views1: jax.Array | None = None
    views2: jax.Array | None = None
    probs1: jax.Array | None = None
    probs2: jax.Array | None = None
    noise1: jax.Array | None = None
    noise2: jax.Array | None = None
    noisy: bool = field(default=False, metadata={"static": True})  #: whether either view adds noise

    @classmethod
    def from_images(cls, images, view1: Augmentation, view2: Augmentation | None = None, projection=None,
                    moments: ViewMoments | None = None) -> "AugmentedViews":
        """From `images` `(N, ...)` (flattened here), each view's augmentation family (`view2` defaults to `view1`)
        and an optional `(k, n)` `projection` applied after centring (e.g.
        [`ViewMoments.principal_components`][dynsim.data.ViewMoments.principal_components]); `moments`: the
        views' [`exact_moments`][dynsim.data.exact_moments] if already computed. The expected-gradient path needs a
        symmetric cross-view moment ([`ViewMoments.view_data`][dynsim.data.ViewMoments.view_data])."""
        view2 = view1 if view2 is None else view2
        X = np.asarray(images, float).reshape(np.shape(images)[0], -1)
        m = exact_moments(X, view1, view2) if moments is None else moments
        A = np.eye(X.shape[1]) if projection is None else np.asarray(projection, float)
        gauss = m.centred().project(A).view_data()

        def stack(v, mean):
            return jnp.asarray(np.einsum("kn,anm,bm->abk", A, v.operators, X) - (A @ mean))

        def noise(v):
            return jnp.asarray(np.sqrt(v.noise) * A)  # A @ (sqrt(noise) I), the noise's factor after projection

        return cls(gauss.data_cov, gauss.noise_cov, None, gauss.target_noise_cov, stack(view1, m.mean1),
                   stack(view2, m.mean2), jnp.asarray(view1.probabilities), jnp.asarray(view2.probabilities),
                   noise(view1), noise(view2), bool(view1.noise or view2.noise))

    @property
    def gaussian(self) -> bool:
        return False

    @property
    def n_points(self) -> int:
        return int(np.shape(self.views1)[1])

    def sample(self, key, batch: int, draw_dtype=None):
        """A minibatch `(x1, x2, weights)` of actual augmented pairs (class docstring)."""
        ki, ka, kb, k1, k2 = jax.random.split(key, 5)
        dtype = jnp.asarray(self.views1).dtype
        i = jax.random.randint(ki, (batch,), 0, self.n_points)
        a = jax.random.choice(ka, self.probs1.shape[0], (batch,), p=self.probs1)
        b = jax.random.choice(kb, self.probs2.shape[0], (batch,), p=self.probs2)
        draw = dtype if draw_dtype is None else draw_dtype
        n_in = self.noise1.shape[1]
        x1 = self.views1[a, i] + jax.random.normal(k1, (batch, n_in), draw).astype(dtype) @ self.noise1.T
        x2 = self.views2[b, i] + jax.random.normal(k2, (batch, n_in), draw).astype(dtype) @ self.noise2.T
        return x1, x2, jnp.full((batch,), 1.0 / batch, dtype)

    def empirical_nodes(self):
        r"""Every input with every pair of operators, `(x1, x2, weights)` with weights $\pi_a\pi'_b/N$: the expectation
        over the data's own law of views ([`Empirical`][dynsim.components.Empirical]), exact for any loss. Needs views
        without noise (noise makes the law continuous)."""
        if self.noisy:
            raise ValueError("the empirical expectation enumerates the views: it needs augmentations without noise")
        K1, N, k = np.shape(self.views1)
        K2 = np.shape(self.views2)[0]
        x1 = jnp.broadcast_to(self.views1[:, None], (K1, K2, N, k)).reshape(-1, k)
        x2 = jnp.broadcast_to(self.views2[None], (K1, K2, N, k)).reshape(-1, k)
        w = (self.probs1[:, None, None] * self.probs2[None, :, None] * jnp.full((1, 1, N), 1.0 / N)).reshape(-1)
        return x1, x2, w

    def finite(self, key, n_points: int):
        raise ValueError("AugmentedViews is already a finite data set")

    def moment_batch(self, key, batch: int, L=None, draw_dtype=None):
        raise ValueError("AugmentedViews draws actual samples, not Gaussian moments: use sgd_sampling='samples'")
