r"""Terminating events: stop a solve the first time a condition crosses zero.

An event is a callable ``cond(t, y, args) -> scalar``; the solve stops the
first time ``cond`` goes from ``> 0`` to ``<= 0``, at a time located by root
finding on the solver's dense interpolant (Newton on diffrax's interpolant for
the adaptive methods, bisection on the cubic Hermite interpolant for RK4,
scipy's own event location for the reference), never rounded to a step.

Events are static arguments of the jitted solve: use hashable callables
(module-level functions, or frozen dataclasses such as :class:`CollapseEvent`)
so that repeated solves reuse the compiled code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax.numpy as jnp


@dataclass(frozen=True)
class CollapseEvent:
    r"""The collapse time: the first :math:`t` with :math:`\min_j m_j(y(t)) \le \theta`.

    Attributes:
        observable: ``observable(y) -> (M,)`` per-mode strength, e.g.
            :meth:`dynsim.eigenmodes.TianModes.mode_strength` (:math:`s_j = w_j^2`).
        threshold: :math:`\theta > 0`, in the units of the observable.
    """

    observable: Callable
    threshold: float = 1e-6

    def __post_init__(self):
        if not (float(self.threshold) > 0):
            raise ValueError(f"CollapseEvent.threshold must be > 0, got {self.threshold}")

    def __call__(self, t, y, args):
        return jnp.min(self.observable(y)) - self.threshold
