r"""The target branch, shared by the per-mode and matrix models (Tian et al. 2021).

The same three choices act on a scalar mode $w$ or a matrix $W$ alike:

| `target` | target used in the loss | evolution of the stored target |
|---|---|---|
| `"ema"` | the stored $W_a$ (BYOL) | $\dot W_a = \beta (W - W_a)$ (Eq. 4) |
| `"online"` | $W$ itself (SimSiam) | $\dot W_a = \dot W$ (stays equal to W) |
| `"fixed_tau"` | $\tau W$ (Assumption 1, const.) | $\dot W_a = \tau \dot W$ (stays τW) |

Without stop-gradient (Theorem 2) the target must be `"online"`. These functions name the target
components of [`dynsim.components`][dynsim.components] ([`EMA`][dynsim.components.EMA], [`Online`][dynsim.components.Online],
[`FixedTau`][dynsim.components.FixedTau]) by their option strings; the components define the rules.
"""

from __future__ import annotations

from dynsim import _checks
from dynsim import components as cp

TARGETS = tuple(cp.TARGETS)


def component(target: str, beta=1.0, tau=1.0, stop_gradient: bool = True) -> cp.AbstractTarget:
    """The target component named `target` with rate `beta` (EMA) or ratio `tau` (fixed τ); only the online
    target takes `stop_gradient=False`."""
    _checks.check_choice("target", target, TARGETS)
    if target == "online":
        return cp.Online(stop_gradient=stop_gradient)
    if not stop_gradient:
        raise ValueError("stop_gradient=False is defined for target='online' (W_a = W) only")
    return cp.EMA(beta=beta) if target == "ema" else cp.FixedTau(tau=tau)


def check_target_options(target: str, predictor: str, predictors, stop_gradient: bool) -> None:
    """Validate a model's static branch options, naming the bad one."""
    _checks.check_choice("target", target, TARGETS)
    _checks.check_choice("predictor", predictor, predictors)
    if not stop_gradient and target != "online":
        raise ValueError("stop_gradient=False is defined for target='online' (W_a = W) only")


def target_in_loss(target: str, online, stored, tau):
    """The target the loss sees: `stored` (ema), `online` or `tau * online`."""
    return component(target, tau=tau).in_loss(online, stored)


def target_rate(target: str, online, stored, d_online, beta, tau):
    """Time derivative of the stored target (table above)."""
    return component(target, beta=beta, tau=tau).rate(online, stored, d_online)


def initial_target(target: str, online, stored=None, tau=None):
    """Consistent initial target: `stored` or `0` for ema (the paper's $W_a(0) = 0$),
    `online` for SimSiam, `tau * online` for fixed τ (`tau` required)."""
    if target == "fixed_tau" and tau is None:
        raise ValueError("target='fixed_tau' needs params to set the target to tau * online")
    return component(target, tau=1.0 if tau is None else tau).initial(online, stored)
