r"""Terminating events: stop a solve the first time a condition crosses zero.

An event is a callable `cond(t, y, args) -> scalar`; the solve stops the
first time `cond` goes from `> 0` to `<= 0`, at a time located by root
finding on the solver's dense interpolant (Newton on diffrax's interpolant for
the adaptive methods, bisection on the cubic Hermite interpolant for RK4,
scipy's own event location for the reference), never rounded to a step.

The located time is differentiated by the implicit-function theorem
([`implicit_event_time`][dynsim.solvers.implicit_event_time]), never through the iterations that found it.

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


def implicit_event_time(g, t_event, state_at):
    r"""`t_event` (a root of $g(t, y(t)) = 0$ found by any iteration) carrying the derivative the implicit-function
    theorem gives. Along a parameter $\theta$, $G(\theta) = g(t_e, y(t_e; \theta); \theta) = 0$ gives

    $$
    \frac{dt_e}{d\theta} = -\frac{\partial_\theta g + \partial_y g\,\partial_\theta y(t_e)}
    {\partial_t g + \partial_y g\, f(t_e, y(t_e))} .
    $$

    Written as one Newton step from the held root, $t_e - (G - \mathrm{sg}\,G)/\mathrm{sg}\,\dot G$ ($\mathrm{sg}$:
    `stop_gradient`): its value is `t_event` exactly and its derivative (forward or reverse mode) is the formula
    above, whatever the root finder did. `state_at(t) -> (y, f)` is the solver's state and slope at `t`, differentiable
    in the parameters (a step from the bracket start). A crossing with $\dot G = 0$ (tangential) gets no derivative
    through the time."""
    t_event = jax.lax.stop_gradient(t_event)
    y, slope = state_at(t_event)
    value, rate = jax.jvp(g, (t_event, y), (jnp.ones_like(t_event), slope))
    rate = jax.lax.stop_gradient(rate)
    return t_event - (value - jax.lax.stop_gradient(value)) / jnp.where(rate == 0, 1.0, rate)
