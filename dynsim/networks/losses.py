r"""Per-sample losses of the network simulations, with the stop-gradients where the papers put them.

Arguments are batches ``z1`` (online output), ``p`` (prediction :math:`W_p z_1`) and ``z2`` (target
output), each ``(B, n2)``; each function returns the per-sample loss ``(B,)``. The caller applies
``stop_gradient`` to ``z2`` (the target) and to closed-form predictors.

==================  ==================================================================  ====================================
``kind``            per-sample loss                                                     source
==================  ==================================================================  ====================================
``"euclidean"``     :math:`\tfrac12\|p - z_2\|^2`                                        Tian et al. 2021 Eq. 1; Halvagal toy
``"cosine"``        :math:`\tfrac12\|\hat p - \hat z_2\|^2 = 1 - \cos(p, z_2)`             BYOL's :math:`2-2\cos`, halved
``"euclidean_iso"`` :math:`\tfrac12\|z_1 - \mathrm{sg}(z_2 + z_1 - p)\|^2`                 Halvagal et al. 2023, §3
``"cosine_iso"``    :math:`-\frac{z_1\cdot\mathrm{sg}(z_2)}{\mathrm{sg}(\|p\|\|z_2\|)} + \tfrac12\mathrm{sg}\big(\frac{p\cdot z_2}{\|p\|^3\|z_2\|}\big) z_1^\top W_p z_1`   Halvagal et al. 2023, §3
==================  ==================================================================  ====================================

**Scale convention.** Every loss carries the ½ of Tian's Eq. 1, so the cosine loss is
:math:`1-\cos`, half the BYOL :math:`2-2\cos`, and has exactly the gradient of Halvagal's toy
:math:`-\cos` (halvagal2023.md §1.4); with these scales the per-mode theory
(:class:`~dynsim.eigenmodes.SSLModes`) and the networks share one time axis. An implementation with
:math:`2-2\cos` (or Euclidean without ½) runs at twice this speed: halve its learning rate to compare.

**IsoLoss** (halvagal2023.md §3): the gradient with respect to :math:`z_1` equals the original loss's
gradient with respect to :math:`p` at :math:`p = W_p z_1`, removing one factor :math:`W_p^\top` (the
values are not meaningful losses; only their gradients are used). ``cosine_iso`` needs :math:`W_p`
(symmetric, a closed form) for its quadratic term; it is halved like ``cosine``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

LOSSES = ("euclidean", "cosine", "euclidean_iso", "cosine_iso")


def _norm(x):
    return jnp.sqrt(jnp.sum(x * x, axis=-1))


def euclidean(z1, p, z2, W_p=None):
    r""":math:`\tfrac12\|p - z_2\|^2` per sample (Tian et al. 2021, Eq. 1)."""
    return 0.5 * jnp.sum((p - z2) ** 2, axis=-1)


def cosine(z1, p, z2, W_p=None):
    r""":math:`1 - \cos(p, z_2)` per sample (BYOL's :math:`2 - 2\cos`, halved; module docstring)."""
    return 1.0 - jnp.sum(p * z2, axis=-1) / (_norm(p) * _norm(z2))


def euclidean_iso(z1, p, z2, W_p=None):
    r"""Euclidean IsoLoss :math:`\tfrac12\|z_1 - \mathrm{sg}(z_2 + z_1 - p)\|^2` (Halvagal et al. 2023, §3)."""
    return 0.5 * jnp.sum((z1 - lax.stop_gradient(z2 + z1 - p)) ** 2, axis=-1)


def cosine_iso(z1, p, z2, W_p):
    r"""Cosine IsoLoss (Halvagal et al. 2023, §3; the formula in the module table); needs a symmetric ``W_p``."""
    sg = lax.stop_gradient
    n_p, n_z = sg(_norm(p)), sg(_norm(z2))
    coef = sg(jnp.sum(p * z2, axis=-1) / (n_p**3 * n_z))
    quad = jnp.sum(z1 * (z1 @ sg(W_p).T), axis=-1)
    return -jnp.sum(z1 * sg(z2), axis=-1) / (n_p * n_z) + 0.5 * coef * quad


LOSS_FUNCTIONS = {"euclidean": euclidean, "cosine": cosine, "euclidean_iso": euclidean_iso, "cosine_iso": cosine_iso}
