r"""The joint second moments of two augmented views of a data set, exactly by enumeration or by sampling
(`docs/theory/views.md#augmentations`), and their eigenmodes.

For inputs $x$ uniform over a data set with second moment $M = \frac1N\sum_ix_ix_i^\top$ and mean $\mu$, and views
$x_1 = T_ax + \sigma_1\xi_1$, $x_2 = T'_bx + \sigma_2\xi_2$ with independent draws $a\sim\pi$, $b\sim\pi'$:

$$
S_{11} = \sum_a\pi_aT_aMT_a^\top + \sigma_1^2I,\qquad S_{12} = \bar TM\bar T'^\top,\qquad
S_{22} = \sum_b\pi'_bT'_bMT_b'^\top + \sigma_2^2I,\qquad \bar T = \sum_a\pi_aT_a,
$$

and the views' means are $\bar T\mu$ and $\bar T'\mu$.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from dynsim import _checks
from dynsim.data._augment import Augmentation
from dynsim.networks import ViewData
from dynsim.params import ModeData


@dataclass(frozen=True)
class ViewMoments:
    r"""Second moments $E[x_1x_1^\top]$, $E[x_1x_2^\top]$, $E[x_2x_2^\top]$ and means of two views.

    Attributes:
        S11, S12, S22: `(n, n)` each.
        mean1, mean2: `(n,)` the views' means.
        stderr: `None` when exact, else the standard errors `(se11, se12, se22)` of a sampled estimate.
    """

    S11: np.ndarray
    S12: np.ndarray
    S22: np.ndarray
    mean1: np.ndarray
    mean2: np.ndarray
    stderr: tuple | None = None

    @property
    def dim(self) -> int:
        return int(np.shape(self.S11)[-1])

    @property
    def cross(self) -> np.ndarray:
        r"""$\Gamma = \tfrac12(S_{12} + S_{12}^\top)$, the symmetrised cross-view moment."""
        return 0.5 * (self.S12 + self.S12.T)

    def centred(self) -> "ViewMoments":
        r"""The moments of the views with each view's mean removed: $S_{11} - m_1m_1^\top$, $S_{12} - m_1m_2^\top$,
        $S_{22} - m_2m_2^\top$ (the linear networks' views have mean zero)."""
        m1, m2 = self.mean1, self.mean2
        return ViewMoments(self.S11 - np.outer(m1, m1), self.S12 - np.outer(m1, m2), self.S22 - np.outer(m2, m2),
                           np.zeros_like(m1), np.zeros_like(m2), self.stderr)

    def project(self, A) -> "ViewMoments":
        """The moments of `A x` for a `(k, n)` matrix `A` (a projection on principal components, a whitening); the
        standard errors of a sampled estimate are propagated with its entries treated as independent."""
        A = np.asarray(A, float)
        se = None if self.stderr is None else tuple(np.sqrt((A**2) @ s**2 @ (A**2).T) for s in self.stderr)
        return ViewMoments(A @ self.S11 @ A.T, A @ self.S12 @ A.T, A @ self.S22 @ A.T, A @ self.mean1,
                           A @ self.mean2, se)

    def principal_components(self, k: int | None = None, whiten: bool = False, rtol: float = 1e-10):
        r"""`(k, n)` rows: the top-`k` eigenvectors of the views' mean second moment $\tfrac12(S_{11} + S_{22})$
        (directions with eigenvalue below `rtol` times the largest left out), divided by the square root of their
        eigenvalue when `whiten`. [`project`][dynsim.data.ViewMoments.project] with it."""
        S = 0.5 * (self.S11 + self.S22)
        ev, V = np.linalg.eigh(0.5 * (S + S.T))
        ev, V = ev[::-1], V[:, ::-1]
        keep = int(np.sum(ev > rtol * ev[0])) if k is None else min(_checks.check_count("k", k), self.dim)
        A = V[:, :keep].T
        return A / np.sqrt(ev[:keep])[:, None] if whiten else A

    def modes(self):
        r"""The eigenmodes: `(mode_data, basis, error)`. The basis diagonalises $\Gamma$ (descending); `mode_data`
        holds per mode $\ell_{11} = v^\top S_{11}v$, $\ell_{12} = v^\top\Gamma v$, $\ell_{22} = v^\top S_{22}v$
        ([`ModeData`][dynsim.params.ModeData]), exact when the moments commute. `error` is the relative size of what
        the basis leaves off the diagonals, $\max\Vert\mathrm{off}(V^\top SV)\Vert_F/\Vert S\Vert_F$ over
        $S_{11}, \Gamma, S_{22}$ (0 up to round-off when they commute); within an eigenspace of $\Gamma$ shared by
        several modes the basis also diagonalises $S_{11} + S_{22}$."""
        G = self.cross
        g, V = np.linalg.eigh(G)
        g, V = g[::-1], V[:, ::-1]
        scale = max(np.max(np.abs(g)), 1e-300)
        start = 0
        for end in range(1, len(g) + 1):  # rotate inside each (numerically) degenerate eigenspace of Gamma
            if end == len(g) or abs(g[end] - g[start]) > 1e-9 * scale:
                if end - start > 1:
                    B = V[:, start:end]
                    _, R = np.linalg.eigh(B.T @ (self.S11 + self.S22) @ B)
                    V[:, start:end] = B @ R[:, ::-1]
                start = end
        err = 0.0
        diags = []
        for S in (self.S11, G, self.S22):
            D = V.T @ S @ V
            off = D - np.diag(np.diag(D))
            err = max(err, float(np.linalg.norm(off) / max(np.linalg.norm(S), 1e-300)))
            diags.append(np.diag(D))
        data = ModeData(lambda_s=jnp.asarray(diags[0]), lambda_d=jnp.asarray(diags[1]),
                        lambda_2=jnp.asarray(diags[2]))
        return data, V, err

    def view_data(self, rtol: float = 1e-10):
        r"""The [`ViewData`][dynsim.networks.ViewData] with these second moments (Gaussian views: $\Sigma_x = S_{12}$,
        noises $S_{11} - S_{12}$ and $S_{22} - S_{12}$): exact for the losses of second moments, a Gaussian
        surrogate for the others. Needs a symmetric $S_{12}$ (equal pipelines give one), else `ValueError`."""
        S12 = self.S12
        if np.linalg.norm(S12 - S12.T) > rtol * max(np.linalg.norm(S12), 1e-300):
            raise ValueError("the cross-view moment S12 is not symmetric (the two views' pipelines differ): the "
                             "network's expected gradient reads a symmetric E[x1 x2^T]; train on samples instead")
        X = 0.5 * (S12 + S12.T)
        same = np.allclose(self.S11, self.S22, rtol=0, atol=rtol * max(np.max(np.abs(self.S11)), 1e-300))
        return ViewData(jnp.asarray(X), jnp.asarray(self.S11 - X),
                        target_noise_cov=None if same else jnp.asarray(self.S22 - X))


def _data_moments(images):
    X = np.asarray(images, float)
    if X.ndim < 2:
        raise ValueError(f"images must be an array (N, ...) of N inputs, got shape {X.shape}")
    X = X.reshape(X.shape[0], -1)
    _checks.check_finite("images", X)
    return X.T @ X / X.shape[0], X.mean(axis=0)


def exact_moments(images, view1: Augmentation, view2: Augmentation | None = None) -> ViewMoments:
    r"""The views' moments by enumeration of the augmentation families (module docstring). `images` `(N, ...)`: `N`
    inputs, flattened here (row-major, as the augmentations' operators index pixels); `view2` defaults to `view1`
    (the same pipeline for both views)."""
    view2 = view1 if view2 is None else view2
    M, mu = _data_moments(images)
    for name, v in (("view1", view1), ("view2", view2)):
        if v.dim != M.shape[0]:
            raise ValueError(f"{name} acts on dimension {v.dim}, the images have {M.shape[0]}")

    def same(v):
        TM = v.operators @ M  # (K, n, n)
        S = np.einsum("a,aij,akj->ik", v.probabilities, TM, v.operators)
        return S + v.noise * np.eye(M.shape[0])

    T1, T2 = view1.mean_operator, view2.mean_operator
    return ViewMoments(same(view1), T1 @ M @ T2.T, same(view2), T1 @ mu, T2 @ mu)


def sampled_moments(images, draw1, draw2=None, n_samples: int = 100_000, seed: int = 0, chunk: int = 4096):
    r"""The views' moments estimated from `n_samples` sampled pairs, with standard errors: for augmentations given
    as functions `draw(rng, x) -> views` (a `numpy.random.Generator` and a batch `(B, n)` of inputs drawn uniformly
    from `images`; `draw2` defaults to `draw1`, drawn independently). Returns a
    [`ViewMoments`][dynsim.data.ViewMoments] whose `stderr` holds each entry's standard error."""
    draw2 = draw1 if draw2 is None else draw2
    X = np.asarray(images, float)
    X = X.reshape(X.shape[0], -1)
    n_samples = _checks.check_count("n_samples", n_samples, 2)
    rng = np.random.default_rng(seed)
    n = X.shape[1]
    sums = {k: np.zeros((n, n)) for k in ("11", "12", "22")}
    squares = {k: np.zeros((n, n)) for k in ("11", "12", "22")}
    m1, m2 = np.zeros(n), np.zeros(n)
    done = 0
    while done < n_samples:
        b = min(chunk, n_samples - done)
        x = X[rng.integers(0, X.shape[0], b)]
        v1, v2 = np.asarray(draw1(rng, x), float), np.asarray(draw2(rng, x), float)
        for k, (a, c) in {"11": (v1, v1), "12": (v1, v2), "22": (v2, v2)}.items():
            sums[k] += a.T @ c
            squares[k] += (a**2).T @ (c**2)
        m1, m2 = m1 + v1.sum(0), m2 + v2.sum(0)
        done += b
    mean = {k: sums[k] / n_samples for k in sums}
    se = tuple(np.sqrt(np.maximum(squares[k] / n_samples - mean[k] ** 2, 0.0) / (n_samples - 1))
               for k in ("11", "12", "22"))
    return ViewMoments(mean["11"], mean["12"], mean["22"], m1 / n_samples, m2 / n_samples, se)

