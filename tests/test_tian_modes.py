"""Per-mode Tian et al. (2021) system against the paper's closed forms (oracles)."""

import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim.analytic import tian2021 as th

# reference solves: dynsim's rk45 loop lands its steps on the saves and compiles in a third of a diffrax
# solve's time (docs/performance.md#the-test-suite)
TIGHT = dict(method="rk45", rtol=1e-12, atol=1e-14)


def test_invariant_parabola_eq14():
    """alpha_p=2, sigma2=0.5, eta=0.03, beta=0.2, (p,s,tau)(0)=(0.3,0.4,0.05); EMA target."""
    model = ds.TianModes(target="ema")
    params = ds.TianParams(alpha_p=2.0, beta=0.2, eta=0.03)
    y0 = model.from_pst(jnp.array([0.3]), jnp.array([0.4]), 0.05)
    sol = ds.solve(model, y0, (params, ds.ModeData.isotropic(0.5)), 100.0, saveat=401, **TIGHT)
    p, s, _ = model.to_pst(sol.ys)
    c = th.invariant_c(0.3, 0.4, 2.0)
    resid = np.abs(s - th.parabola_s(p, sol.ts[:, None], c, 2.0, 0.03))
    assert np.max(resid) < 1e-9


def test_w_form_matches_paper_pst_form_eqs_11_to_13():
    """The (w, w_p, w_a) form and Eqs. 11-13 integrated in (p, s, tau) agree (independent RHS)."""
    params = ds.TianParams(alpha_p=1.3, beta=0.4, eta=0.02)
    data = ds.ModeData(lambda_s=jnp.array([1.5, 1.1, 2.5]), lambda_d=jnp.array([1.0, 0.8, 1.2]))
    p0, s0, tau0 = jnp.array([0.2, 0.5, -0.1]), jnp.array([0.3, 0.05, 0.6]), jnp.array([0.0, 0.3, 0.1])
    m = ds.TianModes()
    a = ds.solve(m, m.from_pst(p0, s0, tau0), (params, data), 30.0, saveat=31, **TIGHT)
    b = ds.solve(ds.TianPST(), ds.PSTState(p0, s0, tau0), (params, data), 30.0, saveat=31, **TIGHT)
    for x, y in zip(m.to_pst(a.ys), b.ys):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-11)


def test_eta0_limits():
    """alpha_p=1.5, sigma2=0.5, tau=1, p0=0.05, s0=0.2 -> p=0.666667, s=0.494630 (the eta = 0 limit,
    docs/theory/tian2021.md#eta-zero: p = tau/(1+sigma2) = 2/3, s = 0.2 + (4/9 - 0.0025)/1.5)."""
    params = ds.TianParams(alpha_p=1.5, eta=0.0, tau=1.0)
    lim = th.eta0_limit(0.05, 0.2, 1.5, 1.0, 1.5)
    assert bool(lim.guaranteed)
    assert abs(float(lim.p_inf) - 0.666667) < 5e-7 and abs(float(lim.s_inf) - 0.494630) < 5e-7
    for model in (ds.TianModes(target="fixed_tau"), ds.TianModes(target="online")):
        y0 = model.initial_state(jnp.sqrt(jnp.array([0.2])), jnp.array([0.05]), params=params)
        sol = ds.solve(model, y0, (params, ds.ModeData.isotropic(0.5)), 200.0, **TIGHT)
        p, s, _ = model.to_pst(sol.final)
        assert abs(float(p[0]) - 0.666667) < 1e-6 and abs(float(s[0]) - 0.494630) < 1e-6
        np.testing.assert_allclose([p[0], s[0]], [lim.p_inf, lim.s_inf], rtol=1e-9)


def test_fixed_points_threshold_and_basin_on_parabola():
    """sigma2=0.5, eta=0.05, tau=1, alpha_p=1: p*- = 0.05445, p*+ = 0.61222, eta_c = 1/6 (Eq. 16,
    docs/theory/tian2021.md#eq-16: p*+- = (1 +- sqrt(0.7))/3, s* = p*+^2 = 0.374813);
    starts on the parabola below p*- collapse, above it converge to (p*+, p*+^2)."""
    fp = th.parabola_fixed_points(1.0, 0.05, 1.5)
    assert bool(fp.exists)
    assert abs(float(fp.p_minus) - 0.05445) < 5e-6 and abs(float(fp.p_plus) - 0.61222) < 5e-6
    assert abs(float(th.collapse_threshold_eta(1.0, 1.5)) - 1 / 6) < 1e-15
    np.testing.assert_allclose(th.parabola_rate(jnp.array([fp.p_minus, fp.p_plus]), 1.0, 0.05, 1.5), 0, atol=1e-15)
    assert not bool(th.parabola_fixed_points(1.0, 0.2, 1.5).exists)

    model = ds.TianModes(target="fixed_tau")
    params = ds.TianParams(alpha_p=1.0, eta=0.05, tau=1.0)
    p0 = jnp.array([0.9 * fp.p_minus, 1.1 * fp.p_minus, 0.3, 1.0])
    y0 = model.initial_state(p0, p0, params=params)  # w = p: on the parabola s = p^2/alpha_p
    sol = ds.solve(model, y0, (params, ds.ModeData.isotropic(0.5)), 1500.0, **TIGHT)
    p, s, _ = model.to_pst(sol.final)
    assert abs(float(p[0])) < 1e-12 and float(s[0]) < 1e-20
    np.testing.assert_allclose(p[1:], 0.612220, atol=1e-6)
    np.testing.assert_allclose(s[1:], 0.374813, atol=1e-6)
    np.testing.assert_allclose(p[1:], fp.p_plus, rtol=1e-9)


def test_above_threshold_everything_collapses_obs5():
    """Obs. 5: eta > tau^2/(4(1+sigma2)) leaves only p = 0; every start reaches s < 1e-6."""
    model = ds.TianModes(target="fixed_tau")
    eta = 1.05 * float(th.collapse_threshold_eta(1.0, 1.5))
    params = ds.TianParams(alpha_p=1.0, eta=eta, tau=1.0)
    p0 = jnp.array([0.1, 0.5, 1.0, 2.0])
    y0 = model.initial_state(jnp.array([0.2, 1.0, 1.5, 3.0]), p0, params=params)
    sol = ds.solve(model, y0, (params, ds.ModeData.isotropic(0.5)), 3000.0, **TIGHT)
    assert np.all(model.mode_strength(sol.final) < 1e-6)


def test_ema_closed_form_eq15():
    """On the parabola (c = 0) with tau(0) = 0, tau(t) = beta e^{-beta t} int p e^{beta t'} / p."""
    model = ds.TianModes(target="ema")
    params = ds.TianParams(alpha_p=1.0, beta=0.5, eta=0.01)
    p0 = jnp.array([0.5, 0.8])
    y0 = model.initial_state(p0, p0)  # w = p, alpha_p = 1: c = 0; w_a = 0: tau(0) = 0
    ts = np.linspace(0.0, 30.0, 3001)  # trapezoid dt = 0.01: error O(1e-5)
    sol = ds.solve(model, y0, (params, ds.ModeData.isotropic(0.5)), 30.0, saveat=ts, **TIGHT)
    p, _, tau = model.to_pst(sol.ys)
    tau15 = th.ema_tau_eq15(ts, p, 0.5)
    assert np.max(np.abs(tau[1:] - tau15[1:])) < 2e-5
    assert float(np.max(np.abs(tau[-1] - 1.0))) < 0.1  # tau -> 1 as growth stops


def test_simsiam_equals_fixed_tau_one_and_target_tracks_online():
    params = ds.TianParams(alpha_p=1.2, eta=0.01, tau=1.0)
    data = ds.ModeData.isotropic(0.3, n_modes=3)
    w0, p0 = jnp.array([0.2, 0.7, 1.1]), jnp.array([0.1, 0.4, -0.2])
    out = []
    for target in ("online", "fixed_tau"):
        m = ds.TianModes(target=target)
        out.append(ds.solve(m, m.initial_state(w0, p0, params=params), (params, data), 20.0, **TIGHT).final)
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(out[0].w_a, out[0].w, rtol=1e-12)


def test_mode_ablations_collapse():
    """Collapse ablations per mode: no predictor -> w0 exp(-(sigma2+eta)t); no stop-gradient -> |w| decreasing."""
    sigma2, eta = 0.4, 0.05
    data = ds.ModeData.isotropic(sigma2, n_modes=2)
    params = ds.TianParams(alpha_p=1.0, eta=eta)
    ts = np.linspace(0, 10, 21)
    m = ds.TianModes(target="online", predictor="identity")
    sol = ds.solve(m, m.initial_state(jnp.array([1.0, -0.5])), (params, data), 10.0, saveat=ts, **TIGHT)
    exact = np.exp(-(sigma2 + eta) * ts)[:, None] * np.array([1.0, -0.5])
    np.testing.assert_allclose(sol.ys.w, exact, rtol=1e-10)
    m = ds.TianModes(target="online", stop_gradient=False)
    sol = ds.solve(m, m.initial_state(jnp.array([1.0, 2.0]), jnp.array([1.5, 0.9])), (params, data), 10.0,
                   saveat=ts, **TIGHT)
    absw = np.abs(np.asarray(sol.ys.w))
    assert np.all(np.diff(absw, axis=0) <= 1e-14)
    assert np.all(absw <= np.exp(-(sigma2 + eta) * ts)[:, None] * absw[0] * (1 + 1e-10))


def test_mode_model_input_errors():
    m = ds.TianModes()
    y0 = m.initial_state(jnp.ones(3), jnp.ones(3))
    ok = (ds.TianParams(), ds.ModeData.isotropic(0.5, 3))
    with pytest.raises(ValueError, match="alpha_p"):
        ds.solve(m, y0, (ds.TianParams(alpha_p=0.0), ok[1]), 1.0)
    with pytest.raises(ValueError, match="beta"):
        ds.solve(m, y0, (ds.TianParams(beta=-0.1), ok[1]), 1.0)
    with pytest.raises(ValueError, match="sigma2"):
        ds.ModeData.isotropic(-0.5)
    with pytest.raises(ValueError, match="lambda_s"):
        ds.solve(m, y0, (ok[0], ds.ModeData(lambda_s=0.5, lambda_d=1.0)), 1.0)
    with pytest.raises(ValueError, match="shape mismatch"):
        ds.solve(m, y0, (ok[0], ds.ModeData.isotropic(0.5, 4)), 1.0)
    with pytest.raises(ValueError, match="finite"):
        ds.solve(m, m.initial_state(jnp.array([1.0, jnp.nan, 1.0]), jnp.ones(3)), ok, 1.0)
    with pytest.raises(ValueError, match="eta"):
        ds.solve(m, y0, (ds.TianParams(eta=float("inf")), ok[1]), 1.0)
    with pytest.raises(TypeError, match="TianParams, ModeData"):
        ds.solve(m, y0, ok[0], 1.0)
    with pytest.raises(ValueError, match="unknown target"):
        ds.TianModes(target="momentum")
    with pytest.raises(ValueError, match="stop_gradient"):
        ds.TianModes(target="ema", stop_gradient=False)
