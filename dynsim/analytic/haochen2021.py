r"""HaoChen et al. (2021), the spectral contrastive loss in a linear network: the per-mode closed form
(`docs/theory/haochen2021.md`).

For $z = Wx$, the symmetrised cross-view moment $\Gamma$ and the views' mean second moment
$S = \tfrac12E[x_1x_1^\top + x_2x_2^\top]$ sharing eigenvectors, with per-mode values $\gamma_j = \ell_{12,j}$ and
$m_j = \tfrac12(\ell_{11,j} + \ell_{22,j})$, the loss $-2\,\mathrm{tr}(W\Gamma W^\top) + \Vert WSW^\top\Vert_F^2$ of an
aligned $W$ is $\sum_j(-2\gamma_js_j^2 + m_j^2s_j^4)$ ([modes](../theory/haochen2021.md#modes)), so the strengths
$c_j = s_j^2$ are logistic,

$$
\dot c_j = 8\gamma_jc_j\Big(1 - \frac{m_j^2}{\gamma_j}c_j\Big),\qquad
c_j(t) = \frac{K_j}{1 + (K_j/c_j(0) - 1)\,e^{-8\gamma_jt}},\qquad K_j = \frac{\gamma_j}{m_j^2},
$$

learned in the order of $\gamma_j$ at step times $\ln(K_j/c_j(0) - 1)/(8\gamma_j)$ (where $c_j = K_j/2$).
"""

from __future__ import annotations

import numpy as np


def capacities(gamma, m):
    r"""The end strengths $K_j = \gamma_j/m_j^2$ (modes with $\gamma_j > 0$)."""
    return np.asarray(gamma, float) / np.asarray(m, float) ** 2


def strengths(c0, gamma, m, t):
    r"""$c_j(t)$ from $c_j(0)$ (module docstring); `(T, d)` for `(T,)` times."""
    c0, gamma = np.asarray(c0, float), np.asarray(gamma, float)
    K = capacities(gamma, m)
    t = np.asarray(t, float)[..., None]
    return K / (1.0 + (K / c0 - 1.0) * np.exp(-8.0 * gamma * t))


def step_times(c0, gamma, m):
    r"""The times at which each $c_j$ reaches half its end value $K_j$."""
    return np.log(capacities(gamma, m) / np.asarray(c0, float) - 1.0) / (8.0 * np.asarray(gamma, float))
