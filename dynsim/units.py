r"""The one place where discrete-training settings become ODE units.

Gradient flow time `t` counts learning-rate-weighted steps: after `k` SGD
steps at online learning rate `lr`, $t = \mathrm{lr}\cdot k$
(Tian et al. 2021 after Lemma 1).

| discrete setting (per step) | ODE parameter | conversion |
|---|---|---|
| online learning rate `lr` | time per step | $\Delta t = \mathrm{lr}$ |
| predictor learning rate `lr_p` | $\alpha_p$ (dimensionless) | $\alpha_p = \mathrm{lr_p}/\mathrm{lr}$ |
| EMA decay $\gamma_a$ per step | $\beta$ (1/time) | $\beta = (1-\gamma_a)/\mathrm{lr}$ |
| PyTorch `weight_decay=wd` | $\eta$ (1/time) | $\eta = \mathrm{wd}$ (each step shrinks by `lr*wd`) |
| per-step shrink $\bar\eta$ | $\eta$ (1/time) | $\eta = \bar\eta/\mathrm{lr}$ (the paper's $\bar\eta = \alpha\eta$) |

The two weight-decay readings differ by a factor `lr`: the paper's experiments pass `wd` to PyTorch, so the default
reading is [`eta_from_weight_decay`][dynsim.units.eta_from_weight_decay]. SGD momentum is ignored by the
theory (with momentum `m` the effective step is about `lr/(1-m)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dynsim import _checks
from dynsim.params import TianParams


def ode_time(steps, lr):
    """Gradient-flow time reached after `steps` steps at learning rate `lr`: `t = lr * steps`."""
    _checks.check_positive("lr", lr)
    return lr * steps


def beta_from_ema_decay(ema_decay, lr):
    r"""EMA rate $\beta = (1-\gamma_a)/\mathrm{lr}$ for target update `W_a <- g W_a + (1-g) W`."""
    _checks.check_in_range("ema_decay", ema_decay, 0.0, 1.0)
    _checks.check_positive("lr", lr)
    return (1.0 - ema_decay) / lr


def ema_decay_from_beta(beta, lr):
    r"""Per-step EMA decay $\gamma_a = 1 - \mathrm{lr}\,\beta$ (inverse of [`beta_from_ema_decay`][dynsim.units.beta_from_ema_decay])."""
    _checks.check_positive("beta", beta, strict=False)
    _checks.check_positive("lr", lr)
    g = 1.0 - lr * beta
    _checks.check_in_range("ema_decay (1 - lr*beta)", g, 0.0, 1.0)
    return g


def eta_from_weight_decay(weight_decay):
    r"""ODE weight decay from PyTorch-style `weight_decay` (step shrink `lr*wd`): $\eta = \mathrm{wd}$."""
    _checks.check_positive("weight_decay", weight_decay, strict=False)
    return weight_decay


def eta_from_step_shrink(step_shrink, lr):
    r"""ODE weight decay from a per-step shrink factor $\bar\eta$: $\eta = \bar\eta/\mathrm{lr}$."""
    _checks.check_positive("step_shrink", step_shrink, strict=False)
    _checks.check_positive("lr", lr)
    return step_shrink / lr


def alpha_p_from_lrs(lr_predictor, lr):
    r"""$\alpha_p = \mathrm{lr_p}/\mathrm{lr}$, the relative predictor learning rate."""
    _checks.check_positive("lr_predictor", lr_predictor)
    _checks.check_positive("lr", lr)
    return lr_predictor / lr


@dataclass(frozen=True)
class DiscreteSettings:
    """Settings of a discrete training run, as a practitioner writes them.

    Attributes:
        lr: online learning rate (per step).
        lr_predictor: predictor learning rate; `None` means equal to `lr`.
        ema_decay: target EMA decay per step, `W_a <- ema_decay W_a + (1-ema_decay) W`.
        weight_decay: PyTorch-style `weight_decay` (each step shrinks by `lr*weight_decay`).
    """

    lr: float
    lr_predictor: float | None = None
    ema_decay: float = 0.0
    weight_decay: float = 0.0

    def to_ode(self, tau: float = 1.0) -> TianParams:
        r"""The [`TianParams`][dynsim.params.TianParams] in ODE units for these settings. The predictor is its own
        PyTorch parameter group at `lr_predictor`: each step shrinks it by `lr_predictor * weight_decay`, which
        in ODE time ($t = \mathrm{lr}\cdot k$) is the decay $\eta_p = \alpha_p\eta$ (`eta_p`)."""
        lr_p = self.lr if self.lr_predictor is None else self.lr_predictor
        alpha_p = alpha_p_from_lrs(lr_p, self.lr)
        eta = eta_from_weight_decay(self.weight_decay)
        return TianParams(
            alpha_p=alpha_p,
            beta=beta_from_ema_decay(self.ema_decay, self.lr),
            eta=eta,
            tau=tau,
            eta_p=alpha_p * eta,
        ).validate()

    def time(self, steps):
        """Gradient-flow time after `steps` steps."""
        return ode_time(steps, self.lr)
