r"""One entry point for every ODE in dynsim: [`solve`][dynsim.solvers.solve] and [`solve_batch`][dynsim.solvers.solve_batch].

A *model* is a callable `model(t, y, args) -> dy/dt` on a PyTree state `y`, optionally
with `model.validate(y0, args)`: a PyTree such as [`dynsim.Modes`][dynsim.models.Modes] or [`dynsim.Network`][dynsim.models.Network]
whose float leaves are traced parameters (the rest is static structure), or any hashable callable
(the presets of [`dynsim.eigenmodes`][dynsim.eigenmodes] and [`dynsim.networks`][dynsim.networks]). `args` is a PyTree (e.g. a
[`ModeData`][dynsim.params.ModeData], or `(TianParams, ModeData)`) whose leaves are traced too, so new
values never trigger a recompilation.

**Methods**

|  |  |
|---|---|
| `"tsit5"` | adaptive explicit 5(4), diffrax, PID controller (default of one solve) |
| `"dopri5"` | adaptive explicit 5(4), diffrax |
| `"dopri8"` | adaptive explicit 8(5,3), diffrax |
| `"kvaerno5"` | adaptive implicit (stiff), diffrax |
| `"rk45"` | adaptive Dormand–Prince 5(4), dynsim's lean loop: fastest for batches of small non-stiff systems (default of sweeps); steps land on saves |
| `"rk4"` | classical RK4, fixed step `dt` (`lax.scan`) |
| `"scipy:M"` | reference `scipy.integrate.solve_ivp(method=M)`, M in RK45, RK23, DOP853, Radau, BDF, LSODA (host, not jittable) |

Defaults (method, tolerances by precision, step budget, `on_failure`) are declared once in
`dynsim.solvers.defaults`. Every backend fills the same [`Solution`][dynsim.solvers.Solution] fields: `n_steps`
(accepted steps), `n_rejected` and `n_rhs` (`-1` where a backend does not report them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks
from dynsim._pytree import join_parameters, split_parameters
from dynsim.solvers._adaptive import ADAPTIVE_METHODS, adaptive_solve
from dynsim.solvers._reference import SCIPY_METHODS, scipy_solve
from dynsim.solvers._rk4 import rk4_solve
from dynsim.solvers._rk45 import rk45_solve
from dynsim.solvers._defaults import ADJOINTS, DEFAULTS
from dynsim.solvers._solution import Solution, check_on_failure, handle_failure

METHODS = tuple(ADAPTIVE_METHODS) + ("rk45", "rk4") + tuple(f"scipy:{m}" for m in SCIPY_METHODS)


@dataclass(frozen=True)
class SolverConfig:
    """Static (compile-time) solver settings. Tolerances are relative/absolute per component."""

    method: str = DEFAULTS.method
    rtol: float = DEFAULTS.rtol64
    atol: float = DEFAULTS.atol64
    max_steps: int = DEFAULTS.max_steps
    dt0: float | None = None
    substeps: int = 1  # RK4 steps per save interval
    step_to_saves: bool = False  # adaptive: force steps to land on the save times
    adjoint: str = DEFAULTS.adjoint  # diffrax methods: "reverse" (jax.grad) or "forward" (jax.jvp)
    rk45_stages: str = "auto"  # rk45: "loop" (the right-hand side compiled once), "unrolled" (seven times), "auto"


def _primal(cfg: SolverConfig, *inputs) -> SolverConfig:
    """`cfg` with diffrax's plain forward loop (`adjoint="forward"`) when no input is traced.

    A solve whose model floats, state, arguments and times are all concrete numbers is differentiated by nobody, so
    the adjoint cannot matter; both adjoints run the same steps and give the same values, bit for bit. The forward
    loop lacks the checkpointing that reverse mode needs, so it traces and lowers in a third to a half less time (a
    Dopri8 or Tsit5 solve of ten modes: 0.25-0.28 s instead of 0.37-0.57 s, then about 0.5 s of XLA compilation
    either way). Under `jax.grad` / `jax.jacfwd` an input is a tracer and the requested adjoint is kept."""
    if cfg.method not in ADAPTIVE_METHODS or cfg.adjoint == "forward":
        return cfg
    if all(_checks.is_concrete(x) for x in jax.tree.leaves(inputs)):
        return replace(cfg, adjoint="forward")
    return cfg


def _state_dtype(y0):
    leaves = [jnp.asarray(x) for x in jax.tree.leaves(y0)]
    if not leaves:
        raise ValueError("y0 has no array leaves")
    dt = jnp.result_type(*leaves)
    if not jnp.issubdtype(dt, jnp.floating):
        dt = jnp.result_type(float)
    return dt


def save_times(t0, t1, saveat) -> np.ndarray:
    """Save times from `saveat`: `None` -> `[t1]`; int `n` -> `n` evenly spaced
    points from `t0` to `t1`; array -> those times (nondecreasing, inside `[t0, t1]`)."""
    _checks.check_finite("t0", t0)
    _checks.check_finite("t1", t1)
    if not float(t1) > float(t0):
        raise ValueError(f"t1 must be > t0, got t0={t0}, t1={t1}")
    if saveat is None:
        return np.array([float(t1)])
    if isinstance(saveat, (int, np.integer)):
        if saveat < 1:
            raise ValueError(f"saveat as a count must be >= 1, got {saveat}")
        return np.linspace(float(t0), float(t1), int(saveat)) if saveat > 1 else np.array([float(t1)])
    ts = np.asarray(saveat, float).ravel()
    if ts.size == 0 or not np.all(np.isfinite(ts)):
        raise ValueError("saveat times must be a non-empty array of finite numbers")
    if np.any(np.diff(ts) < 0) or ts[0] < float(t0) or ts[-1] > float(t1):
        raise ValueError(f"saveat times must be nondecreasing and inside [t0, t1] = [{t0}, {t1}]")
    return ts


def _config(method, y0, rtol, atol, max_steps, dt, t0, ts, dt0, step_to_saves=False,
            adjoint=DEFAULTS.adjoint) -> SolverConfig:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if adjoint not in ADJOINTS:
        raise ValueError(f"unknown adjoint {adjoint!r}; choose one of {', '.join(ADJOINTS)}")
    rtol, atol = DEFAULTS.tolerances(_state_dtype(y0), rtol, atol)
    _checks.check_positive("rtol", rtol)
    _checks.check_positive("atol", atol)
    _checks.check_count("max_steps", max_steps)
    if dt0 is not None:
        _checks.check_positive("dt0", dt0)
    substeps = 1
    if method == "rk4":
        if dt is None:
            raise ValueError("method 'rk4' needs a step size dt")
        _checks.check_positive("dt", dt)
        widest = float(np.max(np.diff(np.concatenate([[float(t0)], ts]))))
        substeps = max(1, math.ceil(widest / float(dt) - 1e-9))
    return SolverConfig(method=method, rtol=float(rtol), atol=float(atol), max_steps=int(max_steps),
                        dt0=None if dt0 is None else float(dt0), substeps=substeps,
                        step_to_saves=bool(step_to_saves), adjoint=adjoint)


def _core(model, y0, args, t0, t1, ts, cfg: SolverConfig, event):
    dtype = _state_dtype(y0)
    y0 = jax.tree.map(lambda x: jnp.asarray(x, dtype), y0)
    t0, t1, ts = (jnp.asarray(x, dtype) for x in (t0, t1, ts))
    if cfg.method == "rk4":
        ys, status, t_ev, n = rk4_solve(model, y0, args, t0, ts, cfg.substeps, event)
    elif cfg.method == "rk45":
        ys, status, t_ev, n = rk45_solve(model, y0, args, t0, t1, ts, cfg, event)
    else:
        ys, status, t_ev, n = adaptive_solve(model, y0, args, t0, t1, ts, cfg, event)
    n_steps, n_rejected, n_rhs = n
    return Solution(ts=ts, ys=ys, status=status, event_time=t_ev.astype(dtype), n_steps=n_steps,
                    n_rejected=n_rejected, n_rhs=n_rhs)


@partial(jax.jit, static_argnames=("structure", "cfg", "event"))
def _solve_jit(parameters, structure, y0, args, t0, t1, ts, cfg, event):
    """One jitted solve: the model's float leaves (`parameters`) are traced, its structure is static."""
    return _core(join_parameters(parameters, structure), y0, args, t0, t1, ts, cfg, event)


def integrate(model, y0, args, t0, t1, ts, cfg: SolverConfig, event=None) -> Solution:
    """The traceable core of [`solve`][dynsim.solvers.solve], for use *inside* `jit` / `vmap` (e.g. sweeps): no
    validation, no host work. `ts` is an array of save times, `cfg` a [`SolverConfig`][dynsim.solvers.SolverConfig] (from
    [`solver_config`][dynsim.solvers.solver_config]), JAX methods only. Returns a [`Solution`][dynsim.solvers.Solution] with `status` flagged, never raised."""
    return _core(model, y0, args, t0, t1, ts, cfg, event)


def solver_config(method=DEFAULTS.method, y0=None, rtol=None, atol=None, max_steps=DEFAULTS.max_steps, dt=None, t0=0.0,
                  ts=(1.0,), dt0=None, step_to_saves=False, adjoint=DEFAULTS.adjoint) -> SolverConfig:
    """The static [`SolverConfig`][dynsim.solvers.SolverConfig] [`solve`][dynsim.solvers.solve] would use (tolerances default by `y0`'s dtype; the
    defaults are those of `dynsim.solvers.defaults`, as for [`solve`][dynsim.solvers.solve])."""
    if method.startswith("scipy:"):
        raise ValueError("integrate() runs the JAX methods only")
    y0 = jnp.zeros(()) if y0 is None else y0
    return _config(method, y0, rtol, atol, max_steps, dt, t0, np.asarray(ts, float), dt0, step_to_saves, adjoint)


def _leaf_axes(tree, axes):
    """Per-leaf batch axis (0 or -1 for unbatched) of `tree` given a `vmap`-style prefix `axes`."""
    def expand(ax, sub):
        if ax is not None and ax != 0:
            raise ValueError(f"batch axes must be 0 (batched along the leading axis) or None, got {ax!r}")
        return jax.tree.map(lambda _: -1 if ax is None else 0, sub)

    full = jax.tree.map(expand, axes, tree, is_leaf=lambda x: x is None)
    return jax.tree.leaves(full)


def batch_size(y0, args, in_axes) -> int:
    """Size of the batch axis, checked to agree across every batched leaf."""
    sizes = set()
    for what, part, axes in zip(("y0", "args"), (y0, args), in_axes):
        for leaf, ax in zip(jax.tree.leaves(part), _leaf_axes(part, axes)):
            if ax == 0:
                if np.ndim(leaf) == 0:
                    raise ValueError(f"a batched leaf of {what} is a scalar (no batch axis): batch only leaves with a "
                                     f"leading batch axis (batch_y0 / batch_args, e.g. batch_args=None for shared args)")
                sizes.add(int(np.shape(leaf)[0]))
    if not sizes:
        raise ValueError("solve_batch needs at least one batched input (batch_y0=True or batch_args)")
    if len(sizes) > 1:
        raise ValueError(f"batched inputs disagree on the batch size: {sorted(sizes)}")
    return sizes.pop()


@partial(jax.jit, static_argnames=("structure", "cfg", "event", "in_axes", "chunk"))
def _solve_batch_jit(parameters, structure, y0, args, t0, t1, ts, cfg, event, in_axes, chunk):
    """vmap over chunks of `chunk` problems, `lax.map` over the chunks (padded by repeating
    the last problem). Every problem keeps its own step control, so chunking never changes results."""
    model = join_parameters(parameters, structure)
    parts = (y0, args)
    leaves, treedef = jax.tree.flatten(parts)
    axes = _leaf_axes(y0, in_axes[0]) + _leaf_axes(args, in_axes[1])
    batched = [i for i, ax in enumerate(axes) if ax == 0]
    B = leaves[batched[0]].shape[0]
    n_chunks = -(-B // chunk)
    pad = n_chunks * chunk - B

    def to_chunks(x):
        x = jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]) if pad else x
        return x.reshape((n_chunks, chunk) + x.shape[1:])

    def solve_one(batched_leaves):
        full = list(leaves)
        for i, leaf in zip(batched, batched_leaves):
            full[i] = leaf
        y, a = jax.tree.unflatten(treedef, full)
        return _core(model, y, a, t0, t1, ts, cfg, event)

    sol = jax.lax.map(jax.vmap(solve_one), [to_chunks(leaves[i]) for i in batched])
    sol = jax.tree.map(lambda x: x.reshape((n_chunks * chunk,) + x.shape[2:])[:B], sol)
    return Solution(ts=sol.ts, ys=sol.ys, status=sol.status, event_time=sol.event_time,
                    n_steps=sol.n_steps, n_rejected=sol.n_rejected, n_rhs=sol.n_rhs, time_axis=1)


def default_chunk_size(batch: int, model=None, y0=None, *, state_size: int | None = None) -> int:
    """Problems per `vmap` chunk. On CPU the chunk's working set should stay in cache: with
    `work` = state size x `model.rhs_work_factor` (elements one right-hand side touches per
    problem; 1 unless the model says otherwise, e.g. the node count of a sampled expectation),
    the chunk is `clip(8192 // work, 1, 16)` (measured: 16 is best for the 64-mode Tian system,
    1 for the cosine expectation on 4096 nodes; `benchmarks/bench_modes.py`). Accelerators take
    the whole batch. `state_size` gives the state size directly (sweeps) instead of `y0`."""
    if jax.default_backend() != "cpu":
        return min(batch, 65536)
    if state_size is not None:
        size = int(state_size)
    else:
        size = sum(int(np.size(x)) for x in jax.tree.leaves(y0)) if y0 is not None else 1
    work = max(1, size * int(getattr(model, "rhs_work_factor", 1)))
    return max(1, min(batch, 16, 8192 // work))


def _validate_args(args):
    for node in jax.tree.leaves(args, is_leaf=lambda x: hasattr(x, "validate")):
        if hasattr(node, "validate"):
            node.validate()


def solve(model, y0, args, t1, *, t0=0.0, saveat=None, method=DEFAULTS.method, rtol=None, atol=None,
          max_steps=DEFAULTS.max_steps, dt=None, dt0=None, step_to_saves=False, event=None,
          on_failure=DEFAULTS.on_failure, adjoint=DEFAULTS.adjoint) -> Solution:
    r"""Integrate $\dot y = \mathrm{model}(t, y, \mathrm{args})$ from `t0` to `t1`.

    Args:
        model: hashable callable `model(t, y, args)`; `model.validate(y0, args)` is called if present.
        y0: initial state (PyTree of arrays).
        args: parameter PyTree; nodes with a `validate()` method are validated.
        t1: end time (ODE units).
        t0: start time.
        saveat: `None` (final state only), an int count of evenly spaced times, or an array of times.
        method: see the module table.
        rtol: relative tolerance of the adaptive and reference methods; default `1e-8` in float64 and `1e-5`
            in float32.
        atol: absolute tolerance; default `1e-10` in float64 and `1e-7` in float32.
        max_steps: step budget of the adaptive methods.
        dt: step of `"rk4"` (each save interval gets `ceil(interval/dt)` equal steps).
        dt0: initial step of the adaptive methods (`None`: chosen automatically).
        step_to_saves: adaptive methods only: make steps land on the save times, so saved values
            carry the solver's step error only, not the (lower-order) dense-interpolation error.
        event: terminating event `cond(t, y, args)`, e.g. [`CollapseEvent`][dynsim.solvers.CollapseEvent].
        on_failure: `"raise"` ([`SolveError`][dynsim.solvers.SolveError]), `"warn"` or `"flag"` (inspect `Solution.status`).
            Under a JAX transformation (`jax.jacfwd`, `jax.grad`, `jit`) the status is not concrete and is
            returned unchecked: read `Solution.status`.
        adjoint: how the diffrax methods are differentiated, `"reverse"` (`jax.grad`) or `"forward"`
            (`jax.jvp`, `jax.jacfwd`); `rk45` is differentiated in forward mode and `rk4` in both whatever it says.

    Returns:
        [`Solution`][dynsim.solvers.Solution] with `ts` of shape `(T,)` and `ys` leaves of shape `(T, ...)`.

    Derivatives of the solution with respect to `y0`, `args` and the model's float leaves are those of the
    discrete scheme (the step-size control is held fixed); event times are differentiated by the
    implicit-function theorem at the event. See `docs/guide/sensitivities.md`.
    """
    check_on_failure(on_failure)
    _validate_args(args)
    if hasattr(model, "validate"):
        model.validate(y0, args)
    ts = save_times(t0, t1, saveat)
    cfg = _config(method, y0, rtol, atol, max_steps, dt, t0, ts, dt0, step_to_saves, adjoint)
    _check_event(event, y0, args, t0)
    if method.startswith("scipy:"):
        sol = scipy_solve(model, y0, args, t0, t1, ts, method=method.split(":", 1)[1],
                          rtol=cfg.rtol, atol=cfg.atol, event=event)
    else:
        parameters, structure = split_parameters(model)
        cfg = _primal(cfg, parameters, y0, args, t0, t1)
        sol = _solve_jit(parameters, structure, y0, args, t0, t1, ts, cfg, event)
    return handle_failure(sol, on_failure)


def _check_event(event, y0, args, t0) -> None:
    """Evaluate `event` once at the start (shapes only): an event written for another kind of state (a mode
    event on a matrix model) fails here with a `ValueError` naming both, not inside the solver."""
    if event is None:
        return
    try:
        jax.eval_shape(lambda y: event(jnp.asarray(t0, float), y, args), y0)
    except (AttributeError, TypeError, IndexError) as e:
        raise ValueError(f"event {type(event).__name__} does not apply to a {type(y0).__name__} state "
                         f"({type(e).__name__}: {e})") from None


def solve_batch(model, y0, args, t1, *, batch_y0=False, batch_args=0, t0=0.0, saveat=None, method=DEFAULTS.method,
                rtol=None, atol=None, max_steps=DEFAULTS.max_steps, dt=None, dt0=None, step_to_saves=False,
                event=None, chunk_size=None, on_failure=DEFAULTS.on_failure, adjoint=DEFAULTS.adjoint) -> Solution:
    """Solve a batch of problems in one jitted `vmap` call (same save times for all).

    `batch_y0`: `False` (shared initial state) or `True` (leading batch axis on every leaf).
    `batch_args`: `vmap` `in_axes` for `args` (`0`: every leaf batched; a PyTree prefix
    of ints/`None` to batch some leaves only, e.g. `(TianParams(0, None, 0, None), None)`).
    `chunk_size`: problems per `vmap` chunk (`None`: [`default_chunk_size`][dynsim.solvers.default_chunk_size]); chunks run
    one after another (`lax.map`) and never change the results. Other arguments as in [`solve`][dynsim.solvers.solve]. Returns a [`Solution`][dynsim.solvers.Solution] whose leaves have shape
    `(B, T, ...)` and `status` of shape `(B,)`.
    """
    check_on_failure(on_failure)
    if isinstance(method, str) and method.startswith("scipy:"):
        raise ValueError("solve_batch runs the JAX methods; loop over solve(..., method='scipy:...') instead")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    _validate_args(args)
    in_axes = (0 if batch_y0 else None, batch_args)
    if batch_size(y0, args, in_axes) == 0:
        raise ValueError("solve_batch got an empty batch (batch axis of length 0): give at least one problem")
    first_y0 = jax.tree.map(lambda x: x[0], y0) if batch_y0 else y0
    first_args = jax.tree.map(lambda ax, a: a if ax is None else jax.tree.map(lambda x: x[0], a),
                              batch_args, args, is_leaf=lambda x: x is None) if batch_args is not None else args
    if hasattr(model, "validate"):
        model.validate(first_y0, first_args)
    ts = save_times(t0, t1, saveat)
    cfg = _config(method, first_y0, rtol, atol, max_steps, dt, t0, ts, dt0, step_to_saves, adjoint)
    B = batch_size(y0, args, in_axes)
    chunk = default_chunk_size(B, model, first_y0) if chunk_size is None else int(chunk_size)
    if chunk < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    _check_event(event, first_y0, first_args, t0)
    parameters, structure = split_parameters(model)
    cfg = _primal(cfg, parameters, y0, args, t0, t1)
    sol = _solve_batch_jit(parameters, structure, y0, args, t0, t1, ts, cfg, event, in_axes, min(chunk, B))
    return handle_failure(sol, on_failure)
