r"""Target branches: what the loss compares the prediction with, and how the stored target evolves.

The same component acts on a per-mode amplitude $w$ and on a weight matrix $W$ alike
(Tian et al. 2021, Eq. 4 and Assumption 1; SimSiam is the online target):

| component | target seen by the loss | evolution of the stored target |
|---|---|---|
| [`EMA`][dynsim.components.EMA] | the stored $W_a$ (BYOL) | $\dot W_a = \beta (W - W_a)$ (Eq. 4) |
| [`Online`][dynsim.components.Online] | $W$ itself (SimSiam) | $\dot W_a = \dot W$ (stays equal to W) |
| [`FixedTau`][dynsim.components.FixedTau] | $\tau W$ (Assumption 1, constant τ) | $\dot W_a = \tau \dot W$ (stays τW) |

Only [`Online`][dynsim.components.Online] can let the gradient through the target (`stop_gradient=False`, Tian et al.
2021, Theorem 2): for the others the target is not a function of the online weights.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp

from dynsim.components._base import AbstractComponent


class AbstractTarget(AbstractComponent):
    """A target branch. Subclasses define `in_loss`, `rate` and `initial`."""

    name: ClassVar[str] = ""
    through_target: ClassVar[bool] = False  #: whether the gradient may flow through this target
    stop_gradient: bool = eqx.field(default=True, static=True)

    def __check_init__(self):
        if not self.stop_gradient and not self.through_target:
            raise ValueError("stop_gradient=False is defined for the online target only (Tian et al. 2021, Thm. 2)")

    def in_loss(self, online, stored):
        """The target the loss sees, from the online weights and the stored target."""
        raise NotImplementedError

    def rate(self, online, stored, d_online):
        """Time derivative of the stored target."""
        raise NotImplementedError

    def step(self, online, stored, online_new, lr, after_step: bool = False):
        """The stored target after one discrete step of size `lr` (explicit Euler of `rate`)."""
        return stored + lr * self.rate(online, stored, (online_new - online) / lr)

    def initial(self, online, stored=None, *, copy: bool = False):
        """A consistent initial stored target (`copy`: the online weights instead of zero, for EMA)."""
        raise NotImplementedError


class EMA(AbstractTarget):
    r"""BYOL's exponential moving average, $\dot W_a = \beta(W - W_a)$; per step the decay is
    $1 - \mathrm{lr}\,\beta$ ([`dynsim.units`][dynsim.units]).

    Attributes:
        beta: $\beta \ge 0$, the EMA rate in 1/time (`0` freezes the target).
    """

    name: ClassVar[str] = "ema"
    beta: float = 1.0

    def check(self):
        self._positive("beta", strict=False)
        return self

    def in_loss(self, online, stored):
        return stored

    def rate(self, online, stored, d_online):
        return self.beta * (online - stored)

    def step(self, online, stored, online_new, lr, after_step: bool = False):
        """$W_a \\leftarrow W_a + \\mathrm{lr}\\,\\beta(W_\\mathrm{ref} - W_a)$, with $W_\\mathrm{ref}$ the
        pre-step online weights (Euler) or the updated ones (`after_step`, as BYOL code does)."""
        ref = online_new if after_step else online
        return stored + lr * self.beta * (ref - stored)

    def initial(self, online, stored=None, *, copy: bool = False):
        """`stored` if given, else a copy of the online weights (`copy`) or zero (Tian's $W_a(0) = 0$)."""
        online = jnp.asarray(online)
        if stored is not None:
            return jnp.asarray(stored, online.dtype)
        return online if copy else jnp.zeros_like(online)


class Online(AbstractTarget):
    """SimSiam: the target is the online network; `stop_gradient=False` lets the gradient through it."""

    name: ClassVar[str] = "online"
    through_target: ClassVar[bool] = True

    def in_loss(self, online, stored):
        return online

    def rate(self, online, stored, d_online):
        return d_online

    def step(self, online, stored, online_new, lr, after_step: bool = False):
        return online_new

    def initial(self, online, stored=None, *, copy: bool = False):
        return jnp.asarray(online)


class FixedTau(AbstractTarget):
    r"""A target held at a fixed ratio of the online weights, $W_a = \tau W$ (Tian et al. 2021,
    Assumption 1 with constant τ; τ = 1 is SimSiam with the stop-gradient).

    Attributes:
        tau: $\tau \ge 0$.
    """

    name: ClassVar[str] = "fixed_tau"
    tau: float = 1.0

    def check(self):
        self._positive("tau", strict=False)
        return self

    def in_loss(self, online, stored):
        return self.tau * online

    def rate(self, online, stored, d_online):
        return self.tau * d_online

    def step(self, online, stored, online_new, lr, after_step: bool = False):
        return self.tau * online_new

    def initial(self, online, stored=None, *, copy: bool = False):
        return self.tau * jnp.asarray(online)


TARGETS = {cls.name: cls for cls in (EMA, Online, FixedTau)}
