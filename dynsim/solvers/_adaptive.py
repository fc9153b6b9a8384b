"""Adaptive solves through diffrax (Kidger 2021): explicit Tsit5 / Dopri5 / Dopri8
with a PID step-size controller, and the L-stable implicit Kvaerno5 for stiff systems.

diffrax is used with `throw=False`; its result codes become [`Status`][dynsim.solvers.Status]
values, and non-finite saved states are flagged as `NONFINITE`. Derivatives: `SolverConfig.adjoint` picks
diffrax's checkpointed reverse mode (`"reverse"`, for `jax.grad`) or its forward mode (`"forward"`, for
`jax.jvp` / `jax.jacfwd`); event times are differentiated by diffrax through its root finder's implicit function.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import optimistix as optx

from dynsim.solvers._solution import Status

ADAPTIVE_METHODS = {
    "tsit5": diffrax.Tsit5,
    "dopri5": diffrax.Dopri5,
    "dopri8": diffrax.Dopri8,
    "kvaerno5": diffrax.Kvaerno5,  # stiff (implicit, L-stable)
}


def adaptive_solve(model, y0, args, t0, t1, ts, cfg, event=None):
    """Integrate `model` from `t0` to `t1` saving at `ts` (`ts[-1] <= t1`).

    Returns `(ys, status, event_time, (n_accepted, n_rejected, n_rhs))` like
    `dynsim.solvers.rk4.rk4_solve`; diffrax does not count right-hand sides (`n_rhs = -1`).
    """
    term = diffrax.ODETerm(lambda t, y, a: model(t, y, a))
    solver = ADAPTIVE_METHODS[cfg.method]()
    # a step below 16 ulp of the time span means the solve is stuck (e.g. a NaN slope): stop, report
    dtmin = 16 * jnp.finfo(jnp.result_type(t1)).eps * jnp.maximum(jnp.maximum(jnp.abs(t0), jnp.abs(t1)), 1.0)
    controller = diffrax.PIDController(rtol=cfg.rtol, atol=cfg.atol, dtmin=dtmin, force_dtmin=False)
    if cfg.step_to_saves:  # land steps on the save times: no dense-interpolation error at saves
        controller = diffrax.ClipStepSizeController(controller, step_ts=ts)
    saveat = diffrax.SaveAt(ts=ts, t1=True)
    ev = None
    if event is not None:
        ev = diffrax.Event(
            cond_fn=lambda t, y, args, **kw: event(t, y, args),
            root_finder=optx.Newton(rtol=cfg.rtol, atol=cfg.atol),
            direction=False,  # trigger on a falling edge, > 0 to <= 0
        )
    adjoint = diffrax.ForwardMode() if cfg.adjoint == "forward" else diffrax.RecursiveCheckpointAdjoint()
    sol = diffrax.diffeqsolve(
        term, solver, t0, t1, dt0=cfg.dt0, y0=y0, args=args, saveat=saveat,
        stepsize_controller=controller, max_steps=cfg.max_steps, throw=False, event=ev, adjoint=adjoint,
    )
    r = sol.result
    status = jnp.where(
        r == diffrax.RESULTS.successful, Status.SUCCESS,
        jnp.where(
            r == diffrax.RESULTS.event_occurred, Status.EVENT,
            jnp.where(r == diffrax.RESULTS.max_steps_reached, Status.MAX_STEPS, Status.FAILED),
        ),
    ).astype(jnp.int32)
    # the t1 save sits right after the last reached save time (diffrax compacts it after an event)
    i_end = jnp.sum(jnp.isfinite(sol.ts)) - 1
    t_end = sol.ts[i_end]
    y_end = jax.tree.map(lambda y: y[i_end], sol.ys)
    n = ts.shape[0]
    event_time = jnp.where(status == Status.EVENT, t_end, jnp.inf)
    # saves after a terminating event are filled with inf by diffrax: hold the event state
    after = ts > event_time

    def held(y, ye):
        y = y[:n]
        return jnp.where(after.reshape((n,) + (1,) * (y.ndim - 1)), ye[None], y)

    ys = jax.tree.map(held, sol.ys, y_end)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(y)) for y in jax.tree.leaves(ys)]))
    good = (status == Status.SUCCESS) | (status == Status.EVENT)
    status = jnp.where(good & ~finite, Status.NONFINITE, status).astype(jnp.int32)
    stats = (sol.stats["num_accepted_steps"], sol.stats["num_rejected_steps"], jnp.asarray(-1, jnp.int32))
    return ys, status, event_time, tuple(jnp.asarray(x, jnp.int32) for x in stats)
