r"""Bardes, Ponce & LeCun (2022), VICReg in a linear network: the per-mode flow and its end state
(`docs/theory/bardes2022.md`).

With the views' second moments sharing eigenvectors (per mode $\ell_{11}, \ell_{12}, \ell_{22}$) and
$W = U\,\mathrm{diag}(s_j)V^\top$ aligned with them, each branch's embedding second moment is diagonal, so the
covariance term and its gradient vanish and the modes decouple ([modes](../theory/bardes2022.md#modes)):

$$
\dot s = -(2\lambda\Delta + \eta)\,s + \frac{\mu}{d}\sum_{v=1,2}\frac{\ell_{vv}\,s}{\sigma_v}\,
h_\tau'(\gamma - \sigma_v),\qquad \sigma_v = \sqrt{\ell_{vv}s^2 + \epsilon},\quad
\Delta = \ell_{11} - 2\ell_{12} + \ell_{22},
$$

for the loss weights $\lambda$ (invariance), $\mu$ (variance), the hinge's target $\gamma$, its $\epsilon$ and
smoothing $\tau$ (with $h_\tau'(x) = \mathrm{clip}(x/\tau, 0, 1)$, the step function for $\tau = 0$), weight decay
$\eta$ and embedding dimension $d$. $\dot s/s$ decreases in $s$, so each mode has one end state: the $s$ where
$\dot s/s$ changes sign, $0$ if it is negative from the start.
"""

from __future__ import annotations

import numpy as np


def _hinge_slope(x, smoothing):
    x = np.asarray(x, float)
    if smoothing > 0:
        return np.clip(x / smoothing, 0.0, 1.0)
    return (x > 0).astype(float)


def mode_rate(s, l11, l12, l22, *, dim, invariance=25.0, variance=25.0, gamma=1.0, eps=1e-4, smoothing=0.0,
              eta=0.0):
    r"""$\dot s_j$ of the aligned flow (module docstring), for strengths `s` and per-mode moments broadcasting
    together; `dim` is the embedding dimension $d$."""
    s, l11, l12, l22 = (np.asarray(a, float) for a in (s, l11, l12, l22))
    delta = l11 - 2.0 * l12 + l22
    rate = -(2.0 * invariance * delta + eta) * s
    for lv in (l11, l22):
        sigma = np.sqrt(lv * s * s + eps)
        rate = rate + variance / dim * lv * s / sigma * _hinge_slope(gamma - sigma, smoothing)
    return rate


def end_std(l, l12, *, dim, invariance=25.0, variance=25.0, gamma=1.0, smoothing=0.0, eta=0.0):
    r"""The end standard deviation $\sigma^*$ of each embedding dimension for views with equal second moments
    ($\ell_{11} = \ell_{22} = \ell$) ([end state](../theory/bardes2022.md#end-state)): with
    $\sigma_A = 2\mu\ell/(d(2\lambda\Delta + \eta))$, $\sigma^* = \sigma_A$ where $\sigma_A \le \gamma - \tau$,
    else $\gamma\sigma_A/(\sigma_A + \tau)$ (on the hinge's rounded kink; $\gamma$ for $\tau = 0$). The mode
    survives when $\sigma^* > \sqrt\epsilon$, with $s^{*2} = (\sigma^{*2} - \epsilon)/\ell$."""
    l, l12 = np.asarray(l, float), np.asarray(l12, float)
    g = 2.0 * invariance * (2.0 * l - 2.0 * l12) + eta
    with np.errstate(divide="ignore"):
        sigma_a = np.where(g > 0, 2.0 * variance * l / (dim * np.where(g > 0, g, 1.0)), np.inf)
    kink = gamma if smoothing == 0 else gamma * sigma_a / (sigma_a + smoothing)
    kink = np.where(np.isinf(sigma_a), gamma, kink)
    return np.where(sigma_a <= gamma - smoothing, sigma_a, kink)


def end_strengths(l11, l12, l22, *, dim, invariance=25.0, variance=25.0, gamma=1.0, eps=1e-4, smoothing=0.0,
                  eta=0.0, iterations=200):
    r"""The end strength $s_j^*$ of each mode for any per-mode moments: where $\dot s/s$ changes sign, found by
    bisection on $s > 0$ (for $\tau = 0$ this is the hinge's kink when the flow slides along it); $0$ for a mode
    whose $\dot s/s$ is negative from the start."""
    l11, l12, l22 = np.broadcast_arrays(*(np.asarray(a, float) for a in (l11, l12, l22)))
    kw = dict(dim=dim, invariance=invariance, variance=variance, gamma=gamma, eps=eps, smoothing=smoothing, eta=eta)
    lo = np.zeros(l11.shape)
    hi = np.full(l11.shape, np.sqrt(gamma**2 / np.minimum(l11, l22)))  # both hinges are off beyond this
    tiny = np.full(l11.shape, 1e-300)

    def per_s(s):
        return mode_rate(s, l11, l12, l22, **kw) / s

    alive = per_s(tiny) > 0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        grow = per_s(mid) > 0
        lo, hi = np.where(grow, mid, lo), np.where(grow, hi, mid)
    return np.where(alive, 0.5 * (lo + hi), 0.0)


def threshold_weight_decay(l, l12, *, dim, invariance=25.0, variance=25.0, eps=1e-4):
    r"""The weight decay above which a mode with equal view moments $\ell$ dies: where $\sigma_A = \sqrt\epsilon$,
    $\eta_c = 2\mu\ell/(d\sqrt\epsilon) - 2\lambda\Delta$ (for $\sqrt\epsilon < \gamma - \tau$)."""
    l, l12 = np.asarray(l, float), np.asarray(l12, float)
    return 2.0 * variance * l / (dim * np.sqrt(eps)) - 2.0 * invariance * (2.0 * l - 2.0 * l12)
