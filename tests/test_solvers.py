"""Solver layer: agreement of every backend with scipy, RK4 order, events, failure reporting,
batching and the no-recompilation guard."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim.solvers import _api as api

SIGMA2 = 0.5
PARAMS = ds.TianParams(alpha_p=2.0, beta=0.2, eta=0.03)
DATA = ds.ModeData(lambda_s=jnp.array([1.5, 1.2, 2.0]), lambda_d=jnp.array([1.0, 0.9, 1.0]))
MODEL = ds.TianModes()
Y0 = ds.ModeState(w=jnp.array([0.6, 0.3, 0.9]), w_p=jnp.array([0.3, -0.2, 0.5]), w_a=jnp.array([0.05, 0.0, 0.1]))
T1 = 20.0


def _ref(saveat=11):
    return ds.solve(MODEL, Y0, (PARAMS, DATA), T1, saveat=saveat, method="scipy:DOP853", rtol=1e-12, atol=1e-14)


def _maxerr(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("method,kw,tol", [
    ("tsit5", dict(rtol=1e-11, atol=1e-13), 1e-8),
    ("dopri5", dict(rtol=1e-11, atol=1e-13), 1e-8),
    ("dopri8", dict(rtol=1e-11, atol=1e-13), 1e-9),
    pytest.param("kvaerno5", dict(rtol=1e-10, atol=1e-12), 1e-7, marks=pytest.mark.slow),
    ("rk45", dict(rtol=1e-11, atol=1e-13), 1e-8),
    ("rk4", dict(dt=0.005), 1e-9),
    ("scipy:RK45", dict(rtol=1e-11, atol=1e-13), 1e-8),
    ("scipy:Radau", dict(rtol=1e-11, atol=1e-13), 1e-7),
])
def test_every_backend_agrees_with_scipy_reference(method, kw, tol):
    ref = _ref()
    sol = ds.solve(MODEL, Y0, (PARAMS, DATA), T1, saveat=11, method=method, **kw)
    assert np.all(sol.ok)
    np.testing.assert_allclose(sol.ts, ref.ts, rtol=0, atol=1e-12)
    assert _maxerr(sol.ys, ref.ys) < tol


def test_rk4_is_fourth_order():
    ref = _ref(saveat=None)
    dts = [0.1, 0.05, 0.025, 0.0125]  # asymptotic range; errors stay far above the reference's 1e-12
    errs = [_maxerr(ds.solve(MODEL, Y0, (PARAMS, DATA), T1, method="rk4", dt=dt).final, ref.final) for dt in dts]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(np.abs(orders - 4.0) < 0.2), (errs, orders)


def test_final_only_and_count_and_array_saves():
    sol = ds.solve(MODEL, Y0, (PARAMS, DATA), T1)
    assert sol.ys.w.shape == (1, 3) and float(sol.ts[-1]) == T1
    ts = np.array([0.0, 1.5, 7.0, 20.0])
    sol = ds.solve(MODEL, Y0, (PARAMS, DATA), T1, saveat=ts)
    np.testing.assert_allclose(sol.ts, ts)
    np.testing.assert_allclose(sol.ys.w[0], Y0.w, rtol=0, atol=0)


# --- events -------------------------------------------------------------------------------
# No predictor, stop-gradient: w(t) = w0 exp(-(lambda_s - lambda_d + eta) t), so s = w^2 reaches
# theta at t* = ln(s0/theta) / (2 (lambda_s - lambda_d + eta)) exactly.
NOPRED = ds.TianModes(target="online", predictor="identity")


@pytest.mark.parametrize("method,kw,tol", [
    ("tsit5", dict(rtol=1e-11, atol=1e-13), 1e-8),
    ("dopri8", dict(rtol=1e-11, atol=1e-13), 1e-8),
    pytest.param("kvaerno5", dict(rtol=1e-10, atol=1e-12), 1e-6, marks=pytest.mark.slow),
    ("rk45", dict(rtol=1e-11, atol=1e-13), 1e-8),
    ("rk4", dict(dt=0.01), 1e-8),
    ("scipy:RK45", dict(rtol=1e-11, atol=1e-13), 1e-7),
])
def test_collapse_event_time_is_root_found(method, kw, tol):
    params = ds.TianParams(eta=0.1)
    data = ds.ModeData.isotropic(SIGMA2, n_modes=2)
    w0 = jnp.array([1.0, 2.0])
    y0 = NOPRED.initial_state(w0)
    theta = 1e-3
    rate = SIGMA2 + 0.1
    t_star = np.log(1.0 / theta) / (2 * rate)
    sol = ds.solve(NOPRED, y0, (params, data), 50.0, saveat=6, method=method,
                   event=NOPRED.collapse_event(theta), **kw)
    assert int(sol.status) == ds.Status.EVENT
    assert abs(float(sol.event_time) - t_star) < tol * t_star
    # saves after the event hold the event state: s_min = theta there
    after = np.asarray(sol.ts) > t_star
    assert after.any()
    np.testing.assert_allclose(np.asarray(sol.ys.w[after, 0]) ** 2, theta, rtol=1e-6)


def test_no_event_gives_inf_time_and_success():
    sol = ds.solve(NOPRED, NOPRED.initial_state(jnp.ones(2)), (ds.TianParams(), ds.ModeData.isotropic(0.1, 2)),
                   1.0, event=NOPRED.collapse_event(1e-3))
    assert int(sol.status) == ds.Status.SUCCESS and np.isinf(sol.event_time)


# --- failures are reported, never silent --------------------------------------------------
@pytest.mark.parametrize("method", ["tsit5", "rk45"])
def test_max_steps_is_reported_and_raised(method):
    with pytest.raises(ds.SolveError, match="MAX_STEPS"):
        ds.solve(MODEL, Y0, (PARAMS, DATA), T1, max_steps=3, method=method)
    sol = ds.solve(MODEL, Y0, (PARAMS, DATA), T1, max_steps=3, on_failure="flag")
    assert int(sol.status) == ds.Status.MAX_STEPS and not sol.ok
    with pytest.warns(RuntimeWarning, match="failed"):
        ds.solve(MODEL, Y0, (PARAMS, DATA), T1, max_steps=3, on_failure="warn")


def _blowup(t, y, args):  # dy/dt = y^2, y(0) = 1 blows up at t = 1
    return y**2


@pytest.mark.parametrize("method", ["tsit5", "rk45", "rk4"])
def test_blow_up_is_flagged(method):
    sol = ds.solve(_blowup, jnp.array([1.0]), (), 2.0, saveat=5, method=method, dt=0.01, on_failure="flag")
    assert int(sol.status) in (ds.Status.NONFINITE, ds.Status.MAX_STEPS, ds.Status.FAILED)
    with pytest.raises(ds.SolveError):
        ds.solve(_blowup, jnp.array([1.0]), (), 2.0, method=method, dt=0.01)


def _nan_after_half(t, y, args):  # a right-hand side that turns NaN at t = 0.5
    return jnp.where(t > 0.5, jnp.nan, -y)


@pytest.mark.parametrize("method", ["tsit5", "rk45", "rk4", "scipy:RK45"])
def test_nan_right_hand_side_is_flagged_promptly(method):
    sol = ds.solve(_nan_after_half, jnp.array([1.0, 2.0]), (), 2.0, saveat=5, method=method, dt=0.01,
                   on_failure="flag")
    assert not sol.ok
    assert int(sol.n_steps) < 10_000  # stopped, not spun to max_steps


def test_bad_solver_arguments_are_rejected():
    args = (PARAMS, DATA)
    with pytest.raises(ValueError, match="unknown method"):
        ds.solve(MODEL, Y0, args, T1, method="euler")
    with pytest.raises(ValueError, match="dt"):
        ds.solve(MODEL, Y0, args, T1, method="rk4")
    with pytest.raises(ValueError, match="t1 must be > t0"):
        ds.solve(MODEL, Y0, args, 0.0)
    with pytest.raises(ValueError, match="inside"):
        ds.solve(MODEL, Y0, args, T1, saveat=[0.0, 30.0])
    with pytest.raises(ValueError, match="rtol"):
        ds.solve(MODEL, Y0, args, T1, rtol=-1.0)
    with pytest.raises(ValueError, match="on_failure"):
        ds.solve(MODEL, Y0, args, T1, on_failure="ignore")
    with pytest.raises(ValueError, match="threshold"):
        ds.CollapseEvent(ds.TianModes.mode_strength, 0.0)


# --- batching and compilation ---------------------------------------------------------------
def test_solve_batch_equals_loop_of_solves():
    etas = jnp.array([0.0, 0.01, 0.05, 0.2])
    params = ds.TianParams(alpha_p=jnp.full(4, 2.0), beta=jnp.full(4, 0.2), eta=etas, tau=jnp.ones(4))
    batch = ds.solve_batch(MODEL, Y0, (params, DATA), T1, saveat=5, batch_args=(0, None), rtol=1e-10, atol=1e-12)
    assert batch.ys.w.shape == (4, 5, 3) and batch.status.shape == (4,)
    for i, eta in enumerate(etas):
        one = ds.solve(MODEL, Y0, (PARAMS.replace(eta=eta), DATA), T1, saveat=5, rtol=1e-10, atol=1e-12)
        assert _maxerr(jax.tree.map(lambda x: x[i], batch.ys), one.ys) < 1e-12


def test_solve_batch_partial_in_axes_and_batched_y0():
    y0 = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), Y0)
    spec = (ds.TianParams(alpha_p=None, beta=None, eta=0, tau=None), None)
    params = PARAMS.replace(eta=jnp.array([0.0, 0.1]))
    sol = ds.solve_batch(MODEL, y0, (params, DATA), T1, batch_y0=True, batch_args=spec)
    one = ds.solve(MODEL, jax.tree.map(lambda x: x[1], y0), (PARAMS.replace(eta=0.1), DATA), T1)
    assert _maxerr(jax.tree.map(lambda x: x[1], sol.final), one.final) < 1e-10


def test_rk45_matches_scipy_rk45_step_for_step_accuracy():
    """Same pair and controller as scipy's RK45: at equal tolerances both errors are comparable."""
    ref = _ref(saveat=None)
    for rtol in (1e-6, 1e-9):
        ours = ds.solve(MODEL, Y0, (PARAMS, DATA), T1, method="rk45", rtol=rtol, atol=rtol * 1e-3)
        theirs = ds.solve(MODEL, Y0, (PARAMS, DATA), T1, method="scipy:RK45", rtol=rtol, atol=rtol * 1e-3)
        e_ours, e_theirs = _maxerr(ours.final, ref.final), _maxerr(theirs.final, ref.final)
        assert e_ours < 10 * max(e_theirs, 1e-13) and e_ours < 100 * rtol


@pytest.mark.parametrize("method", ["rk45", pytest.param("tsit5", marks=pytest.mark.slow)])
def test_chunking_never_changes_results(method):
    """Per-problem step control: chunk sizes 7 (with padding) and 1 give the same steps and results up to
    the round-off of XLA's shape-dependent vectorisation (not bitwise)."""
    n = 23
    rng = np.random.default_rng(0)
    params = ds.TianParams(alpha_p=rng.uniform(0.5, 2, n), beta=rng.uniform(0.1, 1, n), eta=rng.uniform(0, 0.05, n),
                           tau=np.ones(n))
    sols = [ds.solve_batch(MODEL, Y0, (params, DATA), T1, saveat=3, batch_args=(0, None), method=method,
                           chunk_size=c, event=MODEL.collapse_event(1e-3)) for c in (7, 1)]
    for other in sols[1:]:
        assert _maxerr(sols[0].ys, other.ys) < 1e-13
        np.testing.assert_allclose(sols[0].event_time, other.event_time, rtol=1e-13)
        np.testing.assert_array_equal(sols[0].status, other.status)
        np.testing.assert_array_equal(sols[0].n_steps, other.n_steps)


def test_batch_size_mismatch_is_a_clear_error():
    params = ds.TianParams(alpha_p=jnp.ones(3), beta=jnp.ones(4), eta=jnp.zeros(3), tau=jnp.ones(3))
    with pytest.raises(ValueError, match="disagree on the batch size"):
        ds.solve_batch(MODEL, Y0, (params, DATA), T1, batch_args=(0, None))


@pytest.mark.parametrize("method", ["tsit5", "rk45", "rk4"])
def test_new_parameter_values_do_not_recompile(method):
    kw = dict(method=method, dt=0.1, saveat=4)
    ds.solve(MODEL, Y0, (PARAMS, DATA), T1, **kw)  # compile once
    n_single = api._solve_jit._cache_size()
    for eta, alpha in [(0.0, 1.0), (0.1, 3.0), (0.07, 0.5)]:
        y0 = jax.tree.map(lambda x: x * (1 + eta), Y0)
        ds.solve(MODEL, y0, (ds.TianParams(alpha_p=alpha, beta=0.3, eta=eta), DATA), T1, **kw)
    assert api._solve_jit._cache_size() == n_single

    batched = ds.TianParams(alpha_p=jnp.ones(8), beta=jnp.ones(8), eta=jnp.linspace(0, 0.1, 8), tau=jnp.ones(8))
    ds.solve_batch(MODEL, Y0, (batched, DATA), T1, batch_args=(0, None), **kw)
    n_batch = api._solve_batch_jit._cache_size()
    ds.solve_batch(MODEL, Y0, (batched.replace(eta=batched.eta * 2, alpha_p=batched.alpha_p * 3), DATA), T1,
                   batch_args=(0, None), **kw)
    assert api._solve_batch_jit._cache_size() == n_batch


def test_a_solve_nobody_differentiates_compiles_one_program_for_both_adjoints():
    """With concrete inputs the adjoint cannot matter: `adjoint="reverse"` and `"forward"` share one compiled
    program (diffrax's forward loop) and give the same values bit for bit. Under `jax.grad` the reverse adjoint is
    kept (the forward loop cannot be reverse-differentiated: JAX raises), and the derivative d final w / d w0 agrees
    with central differences to rtol 1e-6 (the solve's rtol 1e-10 puts the difference quotient's error near 1e-7)."""
    kw = dict(method="tsit5", saveat=3, rtol=1e-10, atol=1e-12)
    y0 = Y0._replace(w=Y0.w * 1.01)  # a shape and value no other test of this file compiles
    before = api._solve_jit._cache_size()
    sols = [ds.solve(MODEL, y0, (PARAMS, DATA), T1, adjoint=a, **kw) for a in ("reverse", "forward")]
    assert api._solve_jit._cache_size() == before + 1
    for a, b in zip(jax.tree.leaves(sols[0]), jax.tree.leaves(sols[1])):
        np.testing.assert_array_equal(a, b)

    def final_w0(w0):
        return ds.solve(MODEL, y0._replace(w=y0.w.at[0].set(w0)), (PARAMS, DATA), T1, **kw).final.w[0]

    g = jax.grad(final_w0)(y0.w[0])
    h = 1e-4
    fd = (final_w0(y0.w[0] + h) - final_w0(y0.w[0] - h)) / (2 * h)
    np.testing.assert_allclose(float(g), float(fd), rtol=1e-6)


@pytest.mark.parametrize("method", ["rk45", "rk4", "tsit5"])
def test_float32_states_stay_float32_with_x64_enabled(method):
    """A float32 state solves in float32 under dynsim's own loops (rk45, rk4) and diffrax's (tsit5) although the
    tests enable x64 (the solvers' constants must not promote the step), and agrees with the float64 solve to float32 accuracy (1e-4)."""
    m = ds.TianModes(target="fixed_tau")
    p = ds.TianParams(alpha_p=1.0, eta=0.05, tau=1.0)
    args = (p, ds.ModeData.isotropic(0.5))
    out = {}
    for dt in (jnp.float32, jnp.float64):
        y0 = m.initial_state(jnp.array([0.3, 1.0], dt), jnp.array([0.3, 1.0], dt), params=p)
        out[dt] = ds.solve(m, y0, args, 10.0, method=method, dt=0.05).final.w
    assert out[jnp.float32].dtype == jnp.float32
    np.testing.assert_allclose(out[jnp.float32], out[jnp.float64], rtol=1e-4)
