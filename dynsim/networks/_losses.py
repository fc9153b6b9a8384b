r"""Per-sample losses of the network simulations, with the stop-gradients where the papers put them.

The functions are those of the loss components (:class:`dynsim.components.Euclidean`,
:class:`dynsim.components.Cosine`, each with ``iso=True`` for its IsoLoss form); this module names them by
the loss strings of :class:`~dynsim.networks.SSLNet`.

Arguments are batches ``z1`` (online output), ``p`` (prediction :math:`W_p z_1`) and ``z2`` (target
output), each ``(B, n2)``; each function returns the per-sample loss ``(B,)``. The caller applies
``stop_gradient`` to ``z2`` (the target) and to closed-form predictors.

==================  ==================================================================  ====================================
``kind``            per-sample loss                                                     source
==================  ==================================================================  ====================================
``"euclidean"``     :math:`\tfrac12\|p - z_2\|^2`                                        Tian et al. 2021 Eq. 1; Halvagal toy
``"cosine"``        :math:`\tfrac12\|\hat p - \hat z_2\|^2 = 1 - \cos(p, z_2)`             BYOL's :math:`2-2\cos`, halved
``"euclidean_iso"`` :math:`\tfrac12\|z_1 - \mathrm{sg}(z_2 + z_1 - p)\|^2`                 Halvagal et al. 2023
``"cosine_iso"``    :math:`-\frac{z_1\cdot\mathrm{sg}(z_2)}{\mathrm{sg}(\|p\|\|z_2\|)} + \tfrac12\mathrm{sg}\big(\frac{p\cdot z_2}{\|p\|^3\|z_2\|}\big) z_1^\top W_p z_1`   Halvagal et al. 2023
==================  ==================================================================  ====================================

**Scale convention.** Every loss carries the ½ of Tian's Eq. 1, so the cosine loss is
:math:`1-\cos`, half the BYOL :math:`2-2\cos`, and has exactly the gradient of Halvagal's toy
:math:`-\cos` (Halvagal et al. 2023); with these scales the per-mode theory
(:class:`~dynsim.eigenmodes.SSLModes`) and the networks share one time axis. An implementation with
:math:`2-2\cos` (or Euclidean without ½) runs at twice this speed: halve its learning rate to compare.

**IsoLoss** (Halvagal et al. 2023): the gradient with respect to :math:`z_1` equals the original loss's
gradient with respect to :math:`p` at :math:`p = W_p z_1`, removing one factor :math:`W_p^\top` (the
values are not meaningful losses; only their gradients are used). ``cosine_iso`` needs :math:`W_p`
(symmetric, a closed form) for its quadratic term; it is halved like ``cosine``.
"""

from __future__ import annotations

from dynsim.components import cosine, cosine_iso, euclidean, euclidean_iso

LOSSES = ("euclidean", "cosine", "euclidean_iso", "cosine_iso")
LOSS_FUNCTIONS = {"euclidean": euclidean, "cosine": cosine, "euclidean_iso": euclidean_iso, "cosine_iso": cosine_iso}
