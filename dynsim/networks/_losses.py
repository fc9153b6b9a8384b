r"""Per-sample losses of the network simulations, with the stop-gradients where the papers put them.

The functions are those of the loss components ([`dynsim.components.Euclidean`][dynsim.components.Euclidean],
[`dynsim.components.Cosine`][dynsim.components.Cosine], each with `iso=True` for its IsoLoss form); this module names them by
the loss strings of [`SSLNet`][dynsim.networks.SSLNet].

Arguments are batches `z1` (online output), `p` (prediction $W_p z_1$) and `z2` (target
output), each `(B, n2)`; each function returns the per-sample loss `(B,)`. The caller applies
`stop_gradient` to `z2` (the target) and to closed-form predictors.

| `kind` | per-sample loss | source |
|---|---|---|
| `"euclidean"` | $\tfrac12\Vert p - z_2\Vert ^2$ | Tian et al. 2021 Eq. 1; Halvagal toy |
| `"cosine"` | $\tfrac12\Vert \hat p - \hat z_2\Vert ^2 = 1 - \cos(p, z_2)$ | BYOL's $2-2\cos$, halved |
| `"euclidean_iso"` | $\tfrac12\Vert z_1 - \mathrm{sg}(z_2 + z_1 - p)\Vert ^2$ | Halvagal et al. 2023 |
| `"cosine_iso"` | $-\frac{z_1\cdot\mathrm{sg}(z_2)}{\mathrm{sg}(\Vert p\Vert \Vert z_2\Vert )} + \tfrac12\mathrm{sg}\big(\frac{p\cdot z_2}{\Vert p\Vert ^3\Vert z_2\Vert }\big) z_1^\top W_p z_1$ | Halvagal et al. 2023 |

**Scale convention.** Every loss carries the ½ of Tian's Eq. 1, so the cosine loss is
$1-\cos$, half the BYOL $2-2\cos$, and has exactly the gradient of Halvagal's toy
$-\cos$ (Halvagal et al. 2023); with these scales the per-mode theory
([`SSLModes`][dynsim.eigenmodes.SSLModes]) and the networks share one time axis. An implementation with
$2-2\cos$ (or Euclidean without ½) runs at twice this speed: halve its learning rate to compare.

**IsoLoss** (Halvagal et al. 2023): the gradient with respect to $z_1$ equals the original loss's
gradient with respect to $p$ at $p = W_p z_1$, removing one factor $W_p^\top$ (the
values are not meaningful losses; only their gradients are used). `cosine_iso` needs $W_p$
(symmetric, a closed form) for its quadratic term; it is halved like `cosine`.
"""

from __future__ import annotations

from dynsim.components import LOSSES as _COMPONENTS
from dynsim.components import AbstractBatchLoss, cosine, cosine_iso, euclidean, euclidean_iso

#: the component losses by name, then `<name>_iso` for those with an IsoLoss form (not the batch losses)
LOSSES = tuple(_COMPONENTS) + tuple(f"{name}_iso" for name, cls in _COMPONENTS.items()
                                    if not issubclass(cls, AbstractBatchLoss))
LOSS_FUNCTIONS = {"euclidean": euclidean, "cosine": cosine, "euclidean_iso": euclidean_iso, "cosine_iso": cosine_iso}
