r"""Augmentations as finite families of linear maps of the input (`docs/theory/views.md#augmentations`).

A view of an input $x$ is $T_ax + \sigma\xi$: one operator $T_a$ of a finite family, drawn with probability
$\pi_a$, and optional isotropic Gaussian noise of variance $\sigma^2$. Translations with zero padding, masks and
their compositions are such families, so the views' second moments are finite sums
([`exact_moments`][dynsim.data.exact_moments]) and a sample is one table look-up.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from dynsim import _checks


@dataclass(frozen=True)
class Augmentation:
    r"""A finite family of linear maps with probabilities, plus isotropic noise.

    Attributes:
        operators: `(K, n, n)` the maps $T_a$ acting on flattened inputs of dimension `n`.
        probabilities: `(K,)` the $\pi_a$, non-negative and summing to 1.
        noise: $\sigma^2 \ge 0$, the variance of the isotropic Gaussian noise added after the map.
        names: a label per operator (for plots and errors).
    """

    operators: np.ndarray
    probabilities: np.ndarray
    noise: float = 0.0
    names: tuple = ()

    def __post_init__(self):
        T = np.asarray(self.operators, float)
        p = np.asarray(self.probabilities, float)
        if T.ndim != 3 or T.shape[1] != T.shape[2]:
            raise ValueError(f"Augmentation.operators must have shape (K, n, n), got {T.shape}")
        if p.shape != (T.shape[0],):
            raise ValueError(f"Augmentation.probabilities must have shape ({T.shape[0]},), got {p.shape}")
        if np.any(p < 0) or not np.isclose(p.sum(), 1.0, rtol=0, atol=1e-12):
            raise ValueError(f"Augmentation.probabilities must be >= 0 and sum to 1, got sum {p.sum()!r}")
        _checks.check_positive("Augmentation.noise", self.noise, strict=False)
        object.__setattr__(self, "operators", T)
        object.__setattr__(self, "probabilities", p)
        if not self.names:
            object.__setattr__(self, "names", tuple(str(a) for a in range(T.shape[0])))

    @property
    def dim(self) -> int:
        return int(self.operators.shape[-1])

    @property
    def mean_operator(self) -> np.ndarray:
        r"""$\bar T = \sum_a\pi_aT_a$."""
        return np.einsum("a,aij->ij", self.probabilities, self.operators)

    @classmethod
    def identity(cls, n: int, noise: float = 0.0) -> "Augmentation":
        """The input itself (plus `noise`)."""
        return cls(np.eye(int(n))[None], np.ones(1), noise, ("identity",))

    @classmethod
    def translations(cls, shape, max_shift: int = 1, noise: float = 0.0) -> "Augmentation":
        r"""Every shift $(d_y, d_x)$ with $|d_y|, |d_x| \le$ `max_shift` of `shape = (h, w)` images, zero padding,
        all equally likely (the identity included: $(2\,\mathrm{max\_shift} + 1)^2$ operators)."""
        h, w = (int(v) for v in shape)
        m = _checks.check_count("max_shift", max_shift, 0)
        ops, names = [], []
        for dy, dx in itertools.product(range(-m, m + 1), repeat=2):
            T = np.zeros((h * w, h * w))
            for y, x in itertools.product(range(h), range(w)):
                ys, xs = y - dy, x - dx  # the output pixel (y, x) reads the input pixel (y - dy, x - dx)
                if 0 <= ys < h and 0 <= xs < w:
                    T[y * w + x, ys * w + xs] = 1.0
            ops.append(T)
            names.append(f"shift({dy:+d},{dx:+d})")
        return cls(np.array(ops), np.full(len(ops), 1.0 / len(ops)), noise, tuple(names))

    @classmethod
    def masks(cls, shape, block: int = 4, keep_one: float = 0.0, noise: float = 0.0) -> "Augmentation":
        r"""Zero one `block` x `block` tile of `shape = (h, w)` images (each tile equally likely); with probability
        `keep_one` the image is left whole."""
        h, w = (int(v) for v in shape)
        b = _checks.check_count("block", block, 1)
        if h % b or w % b:
            raise ValueError(f"block {b} must divide the image shape {(h, w)}")
        _checks.check_in_range("keep_one", keep_one, 0.0, 1.0)
        ops, names = [], []
        for ty, tx in itertools.product(range(h // b), range(w // b)):
            keep = np.ones((h, w))
            keep[ty * b:(ty + 1) * b, tx * b:(tx + 1) * b] = 0.0
            ops.append(np.diag(keep.ravel()))
            names.append(f"mask({ty},{tx})")
        p = np.full(len(ops), (1.0 - keep_one) / len(ops))
        if keep_one > 0:
            ops.append(np.eye(h * w))
            names.append("identity")
            p = np.append(p, keep_one)
        return cls(np.array(ops), p, noise, tuple(names))

    def then(self, other: "Augmentation") -> "Augmentation":
        r"""This family followed by `other`: the operators $T'_bT_a$ with probabilities $\pi_a\pi'_b$ (noise: this
        family's noise passes through `other`'s maps, so only a zero noise here is allowed), plus `other`'s noise."""
        if self.noise:
            raise ValueError("compose noise last: the first family of `then` must have noise 0")
        if other.dim != self.dim:
            raise ValueError(f"the families act on dimensions {self.dim} and {other.dim}")
        T = np.einsum("bij,ajk->abik", other.operators, self.operators).reshape(-1, self.dim, self.dim)
        p = np.outer(self.probabilities, other.probabilities).ravel()
        names = tuple(f"{a}>{b}" for a in self.names for b in other.names)
        return Augmentation(T, p, other.noise, names)

    def with_noise(self, noise: float) -> "Augmentation":
        """The same family with isotropic noise of variance `noise` added after the map."""
        return Augmentation(self.operators, self.probabilities, noise, self.names)

    def apply(self, images, index, rng=None):
        """The views $T_{a_b}x_b$ of `images` `(B, n)` for operator indices `index` `(B,)`, plus the family's noise
        drawn from `rng` (a `numpy.random.Generator`; without one, no noise is added)."""
        views = np.einsum("bij,bj->bi", self.operators[np.asarray(index)], np.asarray(images, float))
        if self.noise and rng is not None:
            views = views + np.sqrt(self.noise) * rng.standard_normal(views.shape)
        return views
