r"""Dormand–Prince 5(4) with per-solve adaptive steps, written as one lean `lax.while_loop`.

Why it exists beside diffrax: under `vmap` (the sweep case) diffrax's general step
machinery costs about 25 µs per configuration per step for the 64-mode Tian system on CPU,
ten times the arithmetic of the step itself; this loop carries only what an explicit
5(4) pair needs and is several times faster (`benchmarks/bench_modes.py`). Each batch
member keeps its own step size, so a result never depends on what else is in its batch.

Method (Dormand & Prince 1980; Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.5, Table 5.2):
the 7-stage FSAL pair with 5th-order solution and 4th-order embedded error estimate. Step
control as in scipy's `RK45`: error norm
$\|e\| = \mathrm{RMS}_i\, e_i / (\mathrm{atol} + \mathrm{rtol}\max(|y_i|, |\hat y_i|))$,
accept when $\|e\| \le 1$, new step $h\cdot\mathrm{clip}(0.9\|e\|^{-1/5}, 0.2, 10)$
(at most 1 after a rejection); initial step by Hairer's heuristic (*ibid.* §II.4). Steps are
shortened to land exactly on every save time, so saves carry no interpolation error.
Events: the crossing step is bracketed, the root found on the cubic Hermite interpolant
(FSAL supplies the end slope) as for RK4, then polished by three Newton iterations on true
Dormand–Prince steps from the bracket start.

A right-hand side with more than `LARGE_RHS` operations is evaluated by a loop over the stages (stage 7's input
is the solution, $a_{7j} = b_j$), so it is compiled once rather than seven times per step (cosine-loss mode models, measured: exact
expectation with an event 4.4 s to compile unrolled, 1.8 s looped; 4096 nodes 0.9 s and 0.5 s; the same run
time); a small one is unrolled, which runs faster per step (a batch of 256 Tian systems of 64 modes: 0.14 s
unrolled, 0.26 s looped). The two forms sum the stages in the same order and differ only by round-off (below 1e-15
relative, measured), from the compiler's different fusion of the two programs.

Derivatives (`jax.jvp`, `jax.jacfwd`; the `while_loop` has no reverse mode) are those of the scheme on its
own mesh: the step-size control is held constant (`stop_gradient`), so a tangent is integrated by the same
Dormand–Prince steps as the state, and an event time is differentiated by the implicit-function theorem at the
event ([`implicit_event_time`][dynsim.solvers.implicit_event_time]), not through the root finding.

The loop stops early, with a failure status, on a non-finite slope (`NONFINITE`) or a step below 16 ulp of `t`
(`FAILED`, step underflow).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.extend.core import jaxprs_in_params
from jax.flatten_util import ravel_pytree

from dynsim.solvers._events import implicit_event_time, locate_crossing
from dynsim.solvers._solution import Status

# Python floats (weakly typed): they take the state's dtype, so float32 states stay float32 with x64 enabled
_C = [0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0]
_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
]
_B = [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0]
_B_LOW = [5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40]
_E = [b - b_low for b, b_low in zip(_B, _B_LOW)]  # error weights on k1..k7
SAFETY, MIN_FACTOR, MAX_FACTOR = 0.9, 0.2, 10.0
_A_FULL = [row + [0.0] * (6 - len(row)) for row in _A] + [_B[:6]]  # (7, 6); row 6 = b (FSAL)
#: `SolverConfig.rk45_stages`: `"auto"` loops over the stages when the right-hand side has more than `LARGE_RHS`
#: operations (counted in its jaxpr, nested ones included), else unrolls them
STAGES = ("auto", "loop", "unrolled")
LARGE_RHS = 64


def _count_eqns(jaxpr) -> int:
    n = 0
    for eqn in jaxpr.eqns:
        n += 1
        for sub in jaxprs_in_params(eqn.params):
            n += _count_eqns(sub)
    return n


def _large(f, t, y) -> bool:
    return _count_eqns(jax.make_jaxpr(f)(t, y).jaxpr) > LARGE_RHS


def rk45_solve(model, y0, args, t0, t1, ts, cfg, event=None):
    """Integrate from `t0` to `t1` saving at `ts`; returns `(ys, status, event_time, (n_accepted, n_rejected,
    n_rhs))`: two right-hand sides for the start (slope and initial-step heuristic), six per step attempt, and
    24 more (four polishing steps) when an event was located."""
    y0f, unravel = ravel_pytree(y0)
    dtype = y0f.dtype
    t0, t1, ts = (jnp.asarray(x, dtype) for x in (t0, t1, ts))
    n_save = ts.shape[0]
    rtol, atol = jnp.asarray(cfg.rtol, dtype), jnp.asarray(cfg.atol, dtype)
    inf = jnp.asarray(jnp.inf, dtype)

    def f(t, y):
        return ravel_pytree(model(t, unravel(y), args))[0]

    def g(t, y):
        return jnp.asarray(event(t, unravel(y), args), dtype)

    def rms(x):
        return jnp.sqrt(jnp.mean(x * x))

    def initial_step(f0):
        scale = atol + rtol * jnp.abs(y0f)
        d0, d1 = rms(y0f / scale), rms(f0 / scale)
        h0 = jnp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / d1)
        h0 = jnp.minimum(h0, t1 - t0)
        d2 = rms((f(t0 + h0, y0f + h0 * f0) - f0) / scale) / h0
        h1 = jnp.where(jnp.maximum(d1, d2) <= 1e-15, jnp.maximum(1e-6, h0 * 1e-3),
                       (0.01 / jnp.maximum(d1, d2)) ** 0.2)
        # at least twice the smallest step the loop accepts (16 ulp of t): the heuristic's 1e-6 floor for a state at
        # rest is below that in float32, where the solve stopped at once as a step underflow
        return jnp.maximum(jnp.minimum(100 * h0, h1), 32 * jnp.finfo(dtype).eps * jnp.maximum(jnp.abs(t0), 1.0))

    stages = cfg.rk45_stages
    if stages not in STAGES:
        raise ValueError(f"rk45_stages must be one of {STAGES}, got {stages!r}")
    looped = stages == "loop" or (stages == "auto" and _large(f, t0, y0f))

    def stages_unrolled(t, y, k1, h):
        ks = [k1]
        for i in range(1, 6):
            yi = y + h * sum(a * k for a, k in zip(_A[i], ks) if a != 0.0)
            ks.append(f(t + _C[i] * h, yi))
        y1 = y + h * sum(b * k for b, k in zip(_B, ks) if b != 0.0)
        ks.append(f(t + h, y1))
        return y1, ks

    def stages_looped(t, y, k1, h):
        # stage i's input is y + h sum_j a_ij k_j, stage 7's (FSAL: a_7j = b_j) is the solution y1. The sum runs
        # over j in the same order as the unrolled form and the zero coefficients (a_ij, j >= i, and b_2) add exact
        # zeros; the two forms still differ by round-off, as the compiler fuses the two programs differently
        A = jnp.asarray(_A_FULL, dtype)
        C = jnp.asarray(_C + [1.0], dtype)
        K0 = jnp.zeros((7,) + y.shape, dtype).at[0].set(k1)

        def stage(i, carry):
            K, _ = carry
            acc = A[i, 0] * K[0]
            for j in range(1, 6):
                acc = acc + A[i, j] * K[j]
            yi = y + h * acc
            return K.at[i].set(f(t + C[i] * h, yi)), yi

        K, y1 = jax.lax.fori_loop(1, 7, stage, (K0, y))
        return y1, [K[j] for j in range(7)]

    def step(t, y, k1, h):
        y1, ks = (stages_looped if looped else stages_unrolled)(t, y, k1, h)
        k7 = ks[6]
        err = h * sum(e * k for e, k in zip(_E, ks) if e != 0.0)
        # the step-size control carries no derivative: derivatives are those of the scheme on its mesh
        norm = jax.lax.stop_gradient(rms(err / (atol + rtol * jnp.maximum(jnp.abs(y), jnp.abs(y1)))))
        return y1, k7, norm

    f0 = f(t0, y0f)
    out0 = jnp.full((n_save, y0f.shape[0]), jnp.nan, dtype)
    # saves at t0 are filled at once
    at_start = ts <= t0
    out0 = jnp.where(at_start[:, None], y0f[None], out0)
    idx0 = jnp.sum(at_start).astype(jnp.int32)
    bracket0 = (inf, jnp.zeros((), dtype), y0f, y0f, y0f, y0f)
    g0 = g(t0, y0f) if event is not None else jnp.zeros((), dtype)
    # state: t, y, f, h, next save, saves, accepted steps, iterations, g(t,y), event found, bracket
    state0 = (t0, y0f, f0, jax.lax.stop_gradient(initial_step(f0)), idx0, out0, jnp.int32(0), jnp.int32(0), g0,
              jnp.asarray(False), bracket0)

    tiny = 16 * jnp.finfo(dtype).eps

    def running(s):
        t, y, k1, h, _, _, _, iters, _, found, _ = s
        healthy = jnp.all(jnp.isfinite(k1)) & (h > tiny * jnp.maximum(jnp.abs(t), 1.0))  # no NaN slope, no underflow
        return (t < t1) & (iters < cfg.max_steps) & healthy & ~found

    def body(s):
        t, y, k1, h, idx, out, n_acc, iters, gy, found, bracket = s
        target = jnp.where(idx < n_save, ts[jnp.minimum(idx, n_save - 1)], t1)
        clamped = h >= target - t
        h_eff = jnp.where(clamped, target - t, h)
        y1, k7, norm = step(t, y, k1, h_eff)
        ok = (norm <= 1.0) & jnp.all(jnp.isfinite(y1))
        grow = jnp.where(norm == 0, MAX_FACTOR, jnp.clip(SAFETY * norm ** -0.2, MIN_FACTOR, MAX_FACTOR))
        factor = jnp.where(ok, grow, jnp.minimum(grow, 1.0))
        factor = jnp.where(jnp.isfinite(norm), factor, MIN_FACTOR)
        h_next = h_eff * factor
        h_next = jnp.where(ok & clamped, jnp.maximum(h_next, h), h_next)  # a save-time clamp is not a signal
        t_new = jnp.where(clamped, target, t + h_eff)
        if event is not None:
            g1 = g(t_new, y1)
            crossed = ok & (gy > 0) & (g1 <= 0)
            bracket = jax.tree.map(lambda a, b: jnp.where(crossed, a, b), (t, h_eff, y, y1, k1, k7), bracket)
            found = found | crossed
            gy = jnp.where(ok, g1, gy)
        saved = ok & clamped & (idx < n_save)
        out = out.at[jnp.where(saved, idx, n_save)].set(y1, mode="drop")
        # several save times may coincide: fill them all
        same = saved & (ts == target) & (jnp.arange(n_save) >= idx)
        out = jnp.where(same[:, None], y1[None], out)
        idx = jnp.where(saved, idx + jnp.sum(same).astype(jnp.int32), idx)
        return (jnp.where(ok, t_new, t), jnp.where(ok, y1, y), jnp.where(ok, k7, k1), h_next, idx, out,
                n_acc + ok.astype(jnp.int32), iters + 1, gy, found, bracket)

    t, y, k1, _, idx, out, n_acc, iters, _, found, bracket = jax.lax.while_loop(running, body, state0)
    reached = t >= t1
    status = jnp.where(reached, Status.SUCCESS,
                       jnp.where(~jnp.all(jnp.isfinite(k1)), Status.NONFINITE,
                                 jnp.where(iters >= cfg.max_steps, Status.MAX_STEPS, Status.FAILED)))
    event_time = inf
    if event is not None:
        tb, hb, yb0, yb1, fb0, fb1 = bracket
        t_ev, _ = locate_crossing(g, tb, hb, yb0, yb1, fb0, fb1)
        # polish with Newton on true RK steps from the bracket start: dg/dt = jvp(g, (1, f))
        hb_safe = jnp.where(found, hb, 1.0)
        tb_safe = jnp.where(found, tb, t0)
        t_ev = jnp.where(found, t_ev, t0 + 0.5)
        for _ in range(3):
            y_a, k_a, _ = step(tb_safe, yb0, fb0, t_ev - tb_safe)
            g_a, dg = jax.jvp(g, (t_ev, y_a), (jnp.ones((), dtype), k_a))
            t_ev = jnp.clip(t_ev - g_a / jnp.where(dg == 0, 1.0, dg), tb_safe, tb_safe + hb_safe)

        def state_at(te):
            y_a, k_a, _ = step(tb_safe, yb0, fb0, te - tb_safe)
            return y_a, f(te, y_a)

        t_ev = implicit_event_time(g, t_ev, state_at)
        y_ev, _, _ = step(tb_safe, yb0, fb0, t_ev - tb_safe)
        event_time = jnp.where(found, t_ev, inf)
        out = jnp.where(found & (ts > t_ev)[:, None], y_ev[None], out)
        status = jnp.where(found, Status.EVENT, status)
    good = (status == Status.SUCCESS) | (status == Status.EVENT)
    status = jnp.where(good & ~jnp.all(jnp.isfinite(out)), Status.NONFINITE, status).astype(jnp.int32)
    n_rhs = 2 + 6 * iters
    if event is not None:
        n_rhs = n_rhs + jnp.where(found, 24, 0)
    return jax.vmap(unravel)(out), status, event_time, (n_acc, iters - n_acc, n_rhs.astype(jnp.int32))
