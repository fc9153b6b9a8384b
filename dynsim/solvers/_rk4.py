r"""Classical fixed-step fourth-order Runge–Kutta, written as nested `lax.scan`.

For $\dot y = f(t, y)$ and step $h$:

$$
k_1 = f(t, y),\; k_2 = f(t+\tfrac h2, y+\tfrac h2 k_1),\;
k_3 = f(t+\tfrac h2, y+\tfrac h2 k_2),\; k_4 = f(t+h, y+h k_3),\\
y_{n+1} = y_n + \tfrac h6 (k_1 + 2k_2 + 2k_3 + k_4),
$$

global error $O(h^4)$ (Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.1;
order checked in `tests/test_solvers.py`). Each interval between two save
times is split into `substeps` equal steps, so every save time is hit exactly.

Events: the carry keeps the first step whose end has `cond <= 0` while its
start had `cond > 0`; after the scan the crossing is located by bisection on
the cubic Hermite interpolant of that step ($O(h^4)$, like the method),
and saves after it hold the interpolated event state. Derivatives (forward and reverse mode through the
`lax.scan`) are those of the scheme; the event time's comes from the implicit-function theorem on the
interpolant ([`implicit_event_time`][dynsim.solvers.implicit_event_time]).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from dynsim.solvers._events import hermite, implicit_event_time, locate_crossing
from dynsim.solvers._solution import Status


def rk4_solve(model, y0, args, t0, ts, substeps: int, event=None):
    """Integrate `model` with RK4 from `t0` through the save times `ts`.

    Returns `(ys, status, event_time, (n_accepted, n_rejected, n_rhs))` with `ys` a PyTree whose
    leaves have a leading time axis of length `len(ts)`.
    """
    y0_flat, unravel = ravel_pytree(y0)
    dtype = y0_flat.dtype
    t0 = jnp.asarray(t0, dtype)
    ts = jnp.asarray(ts, dtype)

    def f(t, yf):
        return ravel_pytree(model(t, unravel(yf), args))[0]

    def g(t, yf):
        return jnp.asarray(event(t, unravel(yf), args), dtype)

    def rk4_step(t, y, h):
        k1 = f(t, y)
        k2 = f(t + h / 2, y + (h / 2) * k1)
        k3 = f(t + h / 2, y + (h / 2) * k2)
        k4 = f(t + h, y + h * k3)
        return y + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4), k1

    inf = jnp.asarray(jnp.inf, dtype)
    # bracket = (t_start, h, y_start, y_end, f_start) of the first crossing step
    bracket0 = (inf, jnp.zeros((), dtype), y0_flat, y0_flat, y0_flat)

    def substep(carry, h):
        t, y, done, bracket = carry
        y1, k1 = rk4_step(t, y, h)
        if event is not None:
            crossed = (~done) & (g(t, y) > 0) & (g(t + h, y1) <= 0)
            bracket = jax.tree.map(lambda new, old: jnp.where(crossed, new, old), (t, h, y, y1, k1), bracket)
            done = done | crossed
            y1 = jnp.where(done, y, y1)  # hold the state once the event is bracketed
        return (t + h, y1, done, bracket), None

    def interval(carry, t_next):
        t = carry[0]
        h = (t_next - t) / substeps
        carry, _ = jax.lax.scan(substep, carry, jnp.broadcast_to(h, (substeps,)))
        carry = (t_next,) + carry[1:]  # remove round-off accumulated in t
        return carry, carry[1]

    carry0 = (t0, y0_flat, jnp.asarray(False), bracket0)
    (_, _, done, bracket), ys = jax.lax.scan(interval, carry0, ts)

    status = jnp.asarray(Status.SUCCESS, jnp.int32)
    event_time = inf
    if event is not None:
        tb, hb, yb0, yb1, fb0 = bracket
        fb1 = f(tb + hb, yb1)
        t_ev, _ = locate_crossing(g, tb, hb, yb0, yb1, fb0, fb1)
        hb_safe = jnp.where(done, hb, 1.0)

        def state_at(te):
            y_te = hermite((te - tb) / hb_safe, hb, yb0, yb1, fb0, fb1)
            return y_te, f(te, y_te)

        t_ev = implicit_event_time(g, jnp.where(done, t_ev, t0), state_at)
        y_ev = hermite((t_ev - tb) / hb_safe, hb, yb0, yb1, fb0, fb1)
        event_time = jnp.where(done, t_ev, inf)
        ys = jnp.where(done & (ts > t_ev)[:, None], y_ev[None, :], ys)
        status = jnp.where(done, Status.EVENT, status).astype(jnp.int32)

    finite = jnp.all(jnp.isfinite(ys))
    status = jnp.where(finite, status, Status.NONFINITE).astype(jnp.int32)
    n_steps = jnp.asarray(substeps * ts.shape[0], jnp.int32)
    n_rhs = 4 * n_steps + (0 if event is None else 1)  # + the end slope of the bracketing step
    return jax.vmap(unravel)(ys), status, event_time, (n_steps, jnp.zeros((), jnp.int32), n_rhs)
