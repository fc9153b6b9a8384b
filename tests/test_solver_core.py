"""The one solver core: defaults declared once, ``Solution`` counters that mean the same for every backend,
``on_failure`` validated and honoured by every entry point that can fail, and the discrete-iteration
primitive shared by the exact GD map, network training and Riemannian GD."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

import dynsim as ds
from dynsim import grassmann as gr
from dynsim.networks import NetParams, SSLNet, ViewData, train
from dynsim.solvers import DEFAULTS, ON_FAILURE, iterate, solver_config
from dynsim.sweeps._config import SOLVE_DEFAULTS


def _decay(t, y, args):  # dy/dt = -y (1 + y^2): smooth, non-stiff, no closed-form step count
    return -y * (1 + y**2)


Y0 = jnp.array([1.0, 0.5, -2.0])


def test_defaults_are_read_from_one_table():
    sol = ds.solve(_decay, Y0, (), 1.0)
    assert solver_config().method == DEFAULTS.method == "tsit5"
    assert solver_config().max_steps == DEFAULTS.max_steps
    assert SOLVE_DEFAULTS["method"] == DEFAULTS.batch_method and SOLVE_DEFAULTS["max_steps"] == DEFAULTS.max_steps
    assert DEFAULTS.tolerances(jnp.float64) == (1e-8, 1e-10) and DEFAULTS.tolerances(jnp.float32) == (1e-5, 1e-7)
    assert sol.ok and ON_FAILURE == ("raise", "warn", "flag")


def _scipy_accepted_steps(method, rtol, atol):
    """Accepted steps counted by stepping scipy's solver object by hand (an independent count)."""
    f = jax.jit(lambda t, y: _decay(t, y, ()))
    solver = getattr(scipy.integrate, method)(lambda t, y: np.asarray(f(t, jnp.asarray(y))), 0.0, np.asarray(Y0),
                                              2.0, rtol=rtol, atol=atol)
    n = 0
    while solver.status == "running":
        solver.step()
        n += 1
    return n, solver.nfev


@pytest.mark.parametrize("method", ["RK45", "DOP853"])
def test_scipy_reference_counts_accepted_steps(method):
    sol = ds.solve(_decay, Y0, (), 2.0, method=f"scipy:{method}", rtol=1e-8, atol=1e-10)
    n, nfev = _scipy_accepted_steps(method, 1e-8, 1e-10)
    assert int(sol.n_steps) == n and int(sol.n_rejected) == -1
    # DOP853's dense output (used for the save at t1) costs 3 extra evaluations per interpolated step
    assert int(sol.n_rhs) == nfev + (3 if method == "DOP853" else 0)


def test_rk45_counters_are_consistent():
    """Six right-hand sides per attempt plus two at the start; a tighter tolerance takes more accepted steps."""
    loose = ds.solve(_decay, Y0, (), 2.0, method="rk45", rtol=1e-4, atol=1e-6)
    tight = ds.solve(_decay, Y0, (), 2.0, method="rk45", rtol=1e-10, atol=1e-12)
    for sol in (loose, tight):
        assert int(sol.n_rhs) == 2 + 6 * (int(sol.n_steps) + int(sol.n_rejected)) and int(sol.n_rejected) >= 0
    assert int(tight.n_steps) > 4 * int(loose.n_steps)
    # the step-size control follows scipy's RK45 (same error norm and factors): comparable step counts
    n_scipy, _ = _scipy_accepted_steps("RK45", 1e-10, 1e-12)
    assert 0.5 < int(tight.n_steps) / n_scipy < 2.0


def test_rk4_and_diffrax_counters():
    rk4 = ds.solve(_decay, Y0, (), 2.0, saveat=5, method="rk4", dt=0.01)
    assert int(rk4.n_steps) == 5 * 50 and int(rk4.n_rejected) == 0 and int(rk4.n_rhs) == 4 * 5 * 50
    ts = ds.solve(_decay, Y0, (), 2.0, method="tsit5", rtol=1e-10, atol=1e-12)
    assert int(ts.n_rhs) == -1 and int(ts.n_steps) > 0 and int(ts.n_rejected) >= 0
    batch = ds.solve_batch(_decay, jnp.stack([Y0, 2 * Y0]), (), 2.0, batch_y0=True, batch_args=None, method="rk45")
    assert batch.n_steps.shape == batch.n_rejected.shape == batch.n_rhs.shape == (2,)


# --- on_failure everywhere ---------------------------------------------------------------------------------
def _grow(t, y, args):  # explicit Euler on dy/dt = y^3 from y = 10 overflows in a few steps at lr = 1
    return y**3


def test_gradient_descent_honours_on_failure():
    with pytest.raises(ds.SolveError, match="NONFINITE"):
        ds.gradient_descent(_grow, jnp.array([10.0]), (), 1.0, 8)
    with pytest.warns(RuntimeWarning, match="NONFINITE"):
        sol = ds.gradient_descent(_grow, jnp.array([10.0]), (), 1.0, 8, on_failure="warn")
    assert int(sol.status) == ds.Status.NONFINITE
    assert int(ds.gradient_descent(_grow, jnp.array([10.0]), (), 1.0, 8, on_failure="flag").status) == ds.Status.NONFINITE
    with pytest.raises(ValueError, match="on_failure"):
        ds.gradient_descent(_grow, jnp.array([10.0]), (), 1.0, 8, on_failure="return")


def test_network_training_honours_on_failure():
    """A predictor 10 I makes one GD step at lr = 1 multiply W by about -139: it overflows in 200 steps."""
    net = SSLNet(predictor="trainable", target="online")
    args = (NetParams(), ViewData.isotropic(3, 0.5))
    y0 = net.initial_state(jnp.eye(2, 3), 10.0 * jnp.eye(2))
    with pytest.raises(ds.SolveError, match="NONFINITE"):
        train(net, y0, args, 1.0, 200)
    with pytest.warns(RuntimeWarning, match="NONFINITE"):
        run = train(net, y0, args, 1.0, 200, on_failure="warn")
    assert int(run.status) == ds.Status.NONFINITE and int(run.n_steps) == 200 and int(run.n_rejected) == 0
    with pytest.raises(ValueError, match="on_failure"):
        train(net, y0, args, 1.0, 200, on_failure="return")


def test_riemannian_gd_validates_on_failure():
    A = jnp.diag(jnp.array([3.0, 2.0, 1.0]))
    W0 = jnp.eye(3, 2)
    with pytest.raises(ValueError, match="on_failure"):
        gr.riemannian_gd(A, W0, 0.1, 4, on_failure="ignore")
    sol = gr.riemannian_gd(A, W0, 0.1, 4, on_failure="warn")
    assert int(sol.n_steps) == int(sol.n_rhs) == 4 and int(sol.n_rejected) == 0


# --- the discrete primitive -------------------------------------------------------------------------------
def test_iterate_static_and_traced_step_counts_agree_and_differentiate():
    """y_{k+1} = a y_k + k: the static (scan) and traced (fori_loop) loops give the same saves, and reverse-mode
    autodiff through the scan gives d y_n / d a of the closed form y_n = a^n y_0 + sum_k k a^(n-1-k)."""
    step = lambda a: (lambda y, k: a * y + k)  # noqa: E731
    a, y0, n = 0.9, jnp.asarray(2.0), 12
    static = iterate(step(a), y0, 3, 4, 0.5)
    traced = jax.jit(lambda e: iterate(step(a), y0, 3, e, 0.5))(jnp.asarray(4, jnp.int32))
    np.testing.assert_array_equal(static.ys, traced.ys)
    np.testing.assert_allclose(static.ts, [0.0, 2.0, 4.0, 6.0], rtol=0, atol=0)

    def closed(a):
        return a**n * y0 + sum(k * a ** (n - 1 - k) for k in range(n))

    np.testing.assert_allclose(static.ys[-1], closed(a), rtol=1e-14)
    grad = jax.grad(lambda a: iterate(step(a), y0, 3, 4, 0.5).ys[-1])(a)
    np.testing.assert_allclose(grad, jax.grad(closed)(a), rtol=1e-13)


def test_rk45_starts_a_float32_state_at_rest():
    """A state exactly at rest (zero slope) gets the initial-step heuristic's 1e-6 floor, which is below the smallest
    step the loop accepts in float32 (16 ulp of t = 1.9e-6): the first step is now at least twice that, so the solve
    succeeds instead of stopping at once as a step underflow (found by a float32 boundary search)."""
    model = ds.TianModes(target="fixed_tau")
    params = ds.TianParams(1.0, 1.0, 0.0, 1.0)
    data = ds.ModeData(lambda_s=jnp.ones(1, jnp.float32), lambda_d=jnp.ones(1, jnp.float32))
    y0 = model.initial_state(jnp.ones(1, jnp.float32), jnp.ones(1, jnp.float32), params=params)  # r = 0: at rest
    sol = ds.solve(model, y0, (params, data), 100.0, method="rk45", on_failure="flag")
    assert int(sol.status) == ds.Status.SUCCESS and sol.ys.w.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(sol.ys.w), 1.0)


@pytest.mark.parametrize("dtype, rtol", [(jnp.float64, 1e-13), (jnp.float32, 1e-5)])
def test_rk45_stage_loop_and_unrolled_stages_agree(dtype, rtol):
    """The two forms of a Dormand-Prince step (module docstring of the rk45 solver: a loop over the stages for a
    large right-hand side, unrolled stages for a small one) take the same steps and, with an event, find the same
    crossing. They sum the stages in the same order, so they differ by round-off only: a few ulp per step, grown
    over ~30 steps to far below the tolerances asserted (1e-13 in float64, 1e-5 in float32)."""
    from dataclasses import replace

    from dynsim.solvers import integrate, save_times
    from dynsim.solvers._rk45 import LARGE_RHS, _count_eqns

    # the cosine loss on fixed nodes: a large right-hand side (few nodes, so that the unrolled form compiles quickly)
    model = ds.SSLModes(loss="cosine", expectation="nodes", n_nodes=16)
    data = ds.ModeData(lambda_s=jnp.asarray([1.1, 0.6], dtype), lambda_d=jnp.asarray([1.0, 0.5], dtype))
    args = (ds.TianParams(eta=0.1), data)  # weight decay: the weaker mode falls to the event's level near t = 4.4
    y0 = model.initial_state(jnp.asarray([0.4, 0.3], dtype))
    ts = jnp.asarray(save_times(0.0, 20.0, 41), dtype)
    cfg = solver_config("rk45", y0, rtol=1e-7, atol=1e-10)
    event = model.collapse_event(0.05)
    runs = {s: integrate(model, y0, args, 0.0, 20.0, ts, replace(cfg, rk45_stages=s), event)
            for s in ("loop", "unrolled")}
    assert int(runs["loop"].status) == int(runs["unrolled"].status)
    assert int(runs["loop"].n_steps) == int(runs["unrolled"].n_steps) > 10
    assert np.isfinite(float(runs["unrolled"].event_time))
    np.testing.assert_allclose(runs["loop"].ys.w, runs["unrolled"].ys.w, rtol=rtol, atol=0)
    np.testing.assert_allclose(runs["loop"].event_time, runs["unrolled"].event_time, rtol=rtol)
    # "auto" (the default) picks the loop for this model and unrolls a small right-hand side
    from jax.flatten_util import ravel_pytree

    flat, unravel = ravel_pytree(y0)
    size = _count_eqns(jax.make_jaxpr(lambda y: ravel_pytree(model(0.0, unravel(y), args))[0])(flat).jaxpr)
    small = _count_eqns(jax.make_jaxpr(_decay)(0.0, Y0, None).jaxpr)
    assert small <= LARGE_RHS < size
    with pytest.raises(ValueError, match="rk45_stages"):
        integrate(model, y0, args, 0.0, 20.0, ts, replace(cfg, rk45_stages="sometimes"))
