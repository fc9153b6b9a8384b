"""Reference integration with `scipy.integrate.solve_ivp`, used by the tests as an
independent check of the JAX backends. It runs on the host, one solve at a time."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
import scipy.integrate
from scipy.integrate import solve_ivp

from dynsim.solvers._solution import Solution, Status

SCIPY_METHODS = ("RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")


def scipy_solve(model, y0, args, t0, t1, ts, method="RK45", rtol=1e-10, atol=1e-12, event=None, max_steps=None):
    """Solve with `scipy.integrate.solve_ivp(method=...)`; returns a NumPy-valued [`Solution`][dynsim.solvers.Solution] (accepted
    steps counted by a subclass of the scipy method; scipy does not report rejected steps: `n_rejected = -1`)."""
    y0_flat, unravel = ravel_pytree(y0)
    rhs = jax.jit(lambda t, yf: ravel_pytree(model(t, unravel(yf), args))[0])
    fun = lambda t, y: np.asarray(rhs(t, jnp.asarray(y)))  # noqa: E731
    events = None
    if event is not None:
        cond = jax.jit(lambda t, yf: event(t, unravel(yf), args))

        def ev(t, y):
            return float(cond(t, jnp.asarray(y)))

        ev.terminal, ev.direction = True, -1
        events = [ev]
    ts = np.asarray(ts, float)
    accepted = [0]

    class Counted(getattr(scipy.integrate, method)):  # the chosen scipy method, counting accepted steps
        def step(self):
            message = super().step()
            accepted[0] += self.status != "failed"
            return message

    with np.errstate(all="ignore"):
        out = solve_ivp(fun, (float(t0), float(t1)), np.asarray(y0_flat, float), method=Counted,
                        t_eval=ts, rtol=rtol, atol=atol, events=events, dense_output=False)
    n = ts.shape[0]
    ys = np.full((n, y0_flat.shape[0]), np.nan)
    ys[: out.y.shape[1]] = out.y.T
    event_time = np.inf
    if out.status == 1:
        event_time = float(out.t_events[0][0])
        ys[ts > event_time] = out.y_events[0][0]
        status = Status.EVENT
    elif out.status == 0:
        status = Status.SUCCESS
    else:
        status = Status.FAILED
    if status != Status.FAILED and not np.all(np.isfinite(ys)):
        status = Status.NONFINITE
    ys_tree = jax.vmap(unravel)(jnp.asarray(ys, y0_flat.dtype))
    return Solution(ts=ts, ys=jax.tree.map(np.asarray, ys_tree), status=np.int32(status),
                    event_time=np.float64(event_time), n_steps=np.int32(accepted[0]), n_rejected=np.int32(-1),
                    n_rhs=np.int32(out.nfev))
