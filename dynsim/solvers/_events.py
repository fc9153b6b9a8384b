r"""Terminating events: stop a solve the first time a condition crosses zero.

An event is a callable `cond(t, y, args) -> scalar`; the solve stops the
first time `cond` goes from `> 0` to `<= 0`, at a time located by root
finding on the solver's dense interpolant (Newton on diffrax's interpolant for
the adaptive methods, bisection on the cubic Hermite interpolant for RK4,
scipy's own event location for the reference), never rounded to a step.

Events are static arguments of the jitted solve: use hashable callables
(module-level functions, or frozen dataclasses such as [`CollapseEvent`][dynsim.solvers.CollapseEvent])
so that repeated solves reuse the compiled code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp

BISECTIONS = 64


@dataclass(frozen=True)
class CollapseEvent:
    r"""The collapse time: the first $t$ with $\min_j m_j(y(t)) \le \theta$.

    Attributes:
        observable: `observable(y) -> (M,)` per-mode strength, e.g.
            `dynsim.eigenmodes.TianModes.mode_strength` ($s_j = w_j^2$).
        threshold: $\theta > 0$, in the units of the observable.
    """

    observable: Callable
    threshold: float = 1e-6

    def __post_init__(self):
        if not (float(self.threshold) > 0):
            raise ValueError(f"CollapseEvent.threshold must be > 0, got {self.threshold}")

    def __call__(self, t, y, args):
        return jnp.min(self.observable(y)) - self.threshold


def hermite(theta, h, y0, y1, f0, f1):
    r"""Cubic Hermite interpolant of one step $[t, t+h]$ at $t + \theta h$, `theta in [0, 1]`,
    from the end values `y0, y1` and slopes `f0, f1` (local error $O(h^4)$)."""
    t2, t3 = theta * theta, theta * theta * theta
    return ((2 * t3 - 3 * t2 + 1) * y0 + (t3 - 2 * t2 + theta) * h * f0
            + (-2 * t3 + 3 * t2) * y1 + (t3 - t2) * h * f1)


def locate_crossing(g, t, h, y0, y1, f0, f1):
    """Root of `g(t', y(t'))` inside a step where `g` went from `> 0` to `<= 0`, by
    `BISECTIONS` bisections on the Hermite interpolant. Returns `(t_event, y_event)`."""
    dtype = jnp.result_type(y0)

    def bisect(_, lohi):
        lo, hi = lohi
        mid = (lo + hi) / 2
        below = g(t + mid * h, hermite(mid, h, y0, y1, f0, f1)) <= 0
        return jnp.where(below, lo, mid), jnp.where(below, mid, hi)

    _, theta = jax.lax.fori_loop(0, BISECTIONS, bisect, (jnp.zeros((), dtype), jnp.ones((), dtype)))
    return t + theta * h, hermite(theta, h, y0, y1, f0, f1)
