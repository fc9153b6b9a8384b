"""The per-mode family (dynsim.SSLModes) against Halvagal et al. 2023 and the Tian system."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim.analytic import halvagal2023 as hv

SIGMA2 = 0.01  # Halvagal toy: sigma = 0.1
K = 1 + SIGMA2
# reference solves: dynsim's rk45 loop lands its steps on the saves and compiles in a third of a diffrax
# solve's time (docs/performance.md#the-test-suite)
TIGHT = dict(method="rk45", rtol=1e-11, atol=1e-13)
P0 = ds.TianParams()  # SimSiam toy: no weight decay


def _toy_c0(M=10, N=15, seed=2):
    """Initial eigenvalues of W0 W0^T for W0 = randn(M, N)/4 (the toy's initialisation)."""
    W0 = np.random.default_rng(seed).standard_normal((M, N)) / 4
    return np.linalg.eigvalsh(W0 @ W0.T)


def _c(sol):
    return np.asarray(sol.ys.w) ** 2


@pytest.mark.parametrize("target", ["ema", "online", "fixed_tau"])
def test_trainable_euclidean_reproduces_the_tian_system(target):
    params = ds.TianParams(alpha_p=1.3, beta=0.4, eta=0.02, tau=0.8)
    data = ds.ModeData(lambda_s=jnp.array([1.5, 1.2, 2.0]), lambda_d=jnp.array([1.0, 0.9, 1.0]))
    fam = ds.SSLModes(loss="euclidean", predictor="trainable", target=target)
    tian = ds.TianModes(target=target)
    y0 = tian.initial_state(jnp.array([0.6, 0.3, 0.9]), jnp.array([0.3, -0.2, 0.5]), params=params)
    # the same equations: right-hand sides equal to round-off at random states ...
    rng = np.random.default_rng(0)
    for _ in range(5):
        y = ds.ModeState(*(jnp.asarray(rng.standard_normal(3)) for _ in range(3)))
        y = tian.initial_state(y.w, y.w_p, y.w_a, params=params)
        for u, v in zip(fam(0.0, y, (params, data)), tian(0.0, y, (params, data))):
            np.testing.assert_allclose(u, v, rtol=1e-14, atol=1e-15)
    # ... and fixed-step trajectories equal to round-off (adaptive control could amplify it)
    a = ds.solve(fam, y0, (params, data), 20.0, saveat=5, method="rk4", dt=0.01)
    b = ds.solve(tian, y0, (params, data), 20.0, saveat=5, method="rk4", dt=0.01)
    for x, y in zip(a.ys, b.ys):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("alpha", [1.0, 0.5])
@pytest.mark.parametrize("iso", [False, True])
def test_euclidean_fixed_point(alpha, iso):
    """Every lambda -> 1/(1+sigma2), c -> (1+sigma2)^(-1/alpha) (0.9901 for alpha = 1;
    docs/theory/halvagal2023.md#euclidean)."""
    m = ds.SSLModes(loss="euclidean", iso=iso)
    args = (P0, ds.ModeData.isotropic(SIGMA2, 10), ds.PredictorParams(power=alpha))
    y0 = m.initial_state(jnp.sqrt(_toy_c0()), pred=args[2])
    sol = ds.solve(m, y0, args, 3000.0, **TIGHT)
    np.testing.assert_allclose(_c(sol)[-1], K ** (-1 / alpha), rtol=1e-8)
    np.testing.assert_allclose(sol.final.w_p, 1 / K, rtol=1e-8)  # w_p records lambda(c(t))
    if alpha == 1.0:
        assert abs(float(_c(sol)[-1, 0]) - 0.9901) < 5e-5


def test_weight_decay_threshold_and_iso_survival():
    """wd = 0.05: lambda_- = 0.0528; modes with c0 = 0.02, 0.04 die, the rest reach 0.9373;
    IsoLoss keeps every mode and reaches (1 - wd)/k = 0.9406 (docs/theory/halvagal2023.md#oracles)."""
    wd = 0.05
    c0 = jnp.array([0.02, 0.04, 0.07, 0.1, 0.3, 0.6, 1.2])
    fp = hv.euclidean_fixed_points(K, wd)
    assert abs(float(fp.p_minus) - 0.0528) < 1e-4 and abs(float(fp.p_plus) - 0.9373) < 1e-4
    args = (ds.TianParams(eta=wd), ds.ModeData.isotropic(SIGMA2, 7))
    m = ds.SSLModes(loss="euclidean")
    c = _c(ds.solve(m, m.initial_state(jnp.sqrt(c0)), args, 4000.0, **TIGHT))[-1]
    assert np.all(c[:2] < 1e-12)
    np.testing.assert_allclose(c[2:], fp.p_plus, rtol=1e-8)
    iso = ds.SSLModes(loss="euclidean", iso=True)
    c = _c(ds.solve(iso, iso.initial_state(jnp.sqrt(c0)), args, 4000.0, **TIGHT))[-1]
    np.testing.assert_allclose(c, hv.iso_fixed_point(K, wd), rtol=1e-8)
    assert abs(float(hv.iso_fixed_point(K, wd)) - 0.9406) < 1e-4


def _half_reached(t, y, args):  # event: c = lambda (alpha = 1) rises through lambda*/2
    return 0.5 / K - y.w[0] ** 2


@pytest.mark.slow  # ~25 s; notebooks/halvagal2023.ipynb checks both escape times against the closed forms by default
def test_escape_time_euclidean_inverse_vs_iso_logarithmic():
    """Time to lambda*/2 scales like 1/lambda0 (Euclidean) but like ln(1/lambda0) (IsoLoss);
    both match the exact solutions and the table (lr = 0.01: 5130, 2595, ... / 229, 194, ... steps; the escape-time
    formulas of docs/theory/halvagal2023.md#euclidean and #isoloss)."""
    lam0 = np.array([0.01, 0.02, 0.04, 0.08, 0.16])
    table = {False: [5130, 2595, 1309, 647, 295], True: [229, 194, 158, 122, 82]}
    times = {}
    for iso in (False, True):
        m = ds.SSLModes(loss="euclidean", iso=iso)
        y0 = jax.tree.map(lambda x: x[:, None], m.initial_state(jnp.sqrt(lam0)))
        sol = ds.solve_batch(m, y0, (P0, ds.ModeData.isotropic(SIGMA2, 1)), 200.0, batch_y0=True, batch_args=None,
                             event=_half_reached, rtol=1e-11, atol=1e-13)
        times[iso] = np.asarray(sol.event_time)
        exact = (hv.iso_escape_time if iso else hv.euclidean_escape_time)(0.5 / K, lam0, K, 1.0)
        np.testing.assert_allclose(times[iso], exact, rtol=1e-7)
        np.testing.assert_allclose(times[iso] / 0.01, table[iso], atol=1.0)
    ratios = times[False][:-1] / times[False][1:]
    # doubling lambda0 halves the time (asymptotically for small lambda0; 2.2 at 0.08 -> 0.16)
    assert np.all(np.abs(ratios[:3] - 2.0) < 0.05) and ratios[3] < 2.3, ratios
    drops = times[True][:-1] - times[True][1:]
    np.testing.assert_allclose(drops, np.log(2) / 2, rtol=0.15)  # only ln 2 / (2 alpha) per doubling


@pytest.mark.parametrize("iso,alpha", [(False, 1.0), (False, 0.5), (True, 1.0), (True, 0.5)])
def test_cosine_conservation_laws(iso, alpha):
    """tr C (cosine) and sum c^(1+alpha) (cosine IsoLoss) are conserved exactly in continuous
    time, node by node, so to the integrator tolerance for any node count."""
    m = ds.SSLModes(loss="cosine", iso=iso, n_nodes=1024)
    args = (P0, ds.ModeData.isotropic(SIGMA2, 10), ds.PredictorParams(power=alpha))
    y0 = m.initial_state(jnp.sqrt(_toy_c0()), pred=args[2])
    sol = ds.solve(m, y0, args, 100.0, saveat=21, rtol=1e-11, atol=1e-13)
    q = m.conserved_quantity(sol.ys, args)
    np.testing.assert_allclose(q, m.power_sum(sol.ys, alpha) if iso else m.trace(sol.ys), rtol=1e-15)
    np.testing.assert_allclose(q, q[0], rtol=1e-9)
    c = _c(sol)
    assert np.ptp(c[-1]) < 0.2 * np.ptp(c[0])  # while the spectrum moves towards isotropy


@pytest.mark.slow  # ~25 s; the exact end levels are checked by test_cli_figures::test_halvagal_fig2_data_match_theory
def test_cosine_end_levels_exact_and_mean_field():
    """Cosine -> tr C0 / M = 0.8694; cosine IsoLoss (alpha = 1) -> (sum c0^2 / M)^(1/2) = 1.1017
    (docs/theory/halvagal2023.md#cosine, for the start of _toy_c0).
    Exact expectation within its node error (4096 nodes: ~1e-3), mean field exactly."""
    c0 = _toy_c0()
    levels = {False: float(hv.cosine_end_level(c0)), True: float(hv.cosine_iso_end_level(c0, 1.0))}
    assert abs(levels[False] - 0.8694) < 1e-4 and abs(levels[True] - 1.1017) < 1e-4
    args = (P0, ds.ModeData.isotropic(SIGMA2, 10))
    for iso in (False, True):
        for expectation, tol in (("exact", 5e-3), ("mean_field", 1e-7)):
            m = ds.SSLModes(loss="cosine", iso=iso, expectation=expectation)
            sol = ds.solve(m, m.initial_state(jnp.sqrt(c0)), args, 400.0, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(_c(sol)[-1], levels[iso], rtol=tol)


@pytest.mark.slow  # ~20 s; the end levels are checked by test_cosine_end_levels_exact_and_mean_field
def test_mean_field_agrees_with_exact_at_the_fixed_point_and_transient_tolerance():
    """At the isotropic fixed point the exact expectation's drift vanishes within its node error,
    as the mean-field drift does exactly. Along the transient the mean-field form is approximate:
    for the toy (N = 15, M = 10, sigma = 0.1, t <= 150) we measured a largest relative deviation
    in c of 39 % (the smallest mode mid-transient); the
    stated transient tolerance is 50 %."""
    args = (P0, ds.ModeData.isotropic(SIGMA2, 10))
    exact = ds.SSLModes(loss="cosine", n_nodes=4096)
    mf = ds.SSLModes(loss="cosine", expectation="mean_field")
    y_iso = exact.initial_state(jnp.full(10, 0.9))
    d_exact, d_mf = exact(0.0, y_iso, args), mf(0.0, y_iso, args)
    err = exact.expectation_error(y_iso, args)
    assert float(jnp.max(jnp.abs(d_mf.w))) < 1e-14
    assert np.all(np.abs(np.asarray(d_exact.w)) < 5 * np.asarray(err) + 1e-12)
    assert float(jnp.max(err)) < 5e-3
    y0 = exact.initial_state(jnp.sqrt(_toy_c0()))
    ts = np.linspace(0, 150, 31)
    a = _c(ds.solve(exact, y0, args, 150.0, saveat=ts, rtol=1e-9, atol=1e-11))
    b = _c(ds.solve(mf, y0, args, 150.0, saveat=ts, rtol=1e-9, atol=1e-11))
    dev = np.max(np.abs(a - b) / a)
    assert 0.01 < dev < 0.5, dev


@pytest.mark.parametrize("iso", [False, True])
def test_discrete_map_stability_bounds(iso):
    """The GD map's lambda* is stable iff lr < k/alpha (Euclidean) or lr < 1/alpha (IsoLoss)."""
    m = ds.SSLModes(loss="euclidean", iso=iso)
    args = (P0, ds.ModeData.isotropic(SIGMA2, 2))
    y0 = m.initial_state(jnp.sqrt(jnp.array([0.3, 0.6])))
    bound = hv.discrete_stability_bound(1.0, K, iso)
    below = ds.gradient_descent(m, y0, args, 0.9 * bound, 4000)
    np.testing.assert_allclose(_c(below)[-1], 1 / K, rtol=1e-10)
    above = ds.gradient_descent(m, y0, args, 1.1 * bound, 4000, n_saves=2, on_failure="flag")
    c_last = _c(above)[-1]
    assert np.all(np.abs(c_last - 1 / K) > 0.05)  # no convergence: a 2-cycle (or worse) instead


def test_collapse_without_stop_gradient_or_predictor():
    """Euclidean noSG: dc/dt <= -2(k - 1/k) c, every mode collapses;
    noPred: c(t) = c0 exp(-2 sigma2 t)."""
    c0 = _toy_c0()
    args = (P0, ds.ModeData.isotropic(SIGMA2, 10))
    ts = np.linspace(0, 15, 16)
    m = ds.SSLModes(loss="euclidean", stop_gradient=False)
    c = _c(ds.solve(m, m.initial_state(jnp.sqrt(c0)), args, 15.0, saveat=ts, **TIGHT))
    assert np.all(c <= c0 * np.exp(-2 * (K - 1 / K) * ts)[:, None] * (1 + 1e-9))
    assert np.all(c[-1] < 1e-3)
    m = ds.SSLModes(loss="euclidean", predictor="identity")
    c = _c(ds.solve(m, m.initial_state(jnp.sqrt(c0)), args, 15.0, saveat=ts, **TIGHT))
    np.testing.assert_allclose(c, c0 * np.exp(-2 * SIGMA2 * ts)[:, None], rtol=1e-10)


def test_closed_form_predictor_formulas():
    c = jnp.array([0.25, 1.0, 4.0])
    pp = ds.PredictorParams(power=0.5, eps=0.1)
    f = ds.eigenmodes.predictor_eigenvalues
    np.testing.assert_allclose(f("power", c, pp), [0.6, 1.1, 2.1])
    np.testing.assert_allclose(f("directpred_paper", c, pp), [0.5 + 0.4, 1.0 + 0.4, 2.0 + 0.4])
    np.testing.assert_allclose(f("directpred_code", c, pp), [0.25 + 0.1, 0.5 + 0.1, 1.0 + 0.1])
    np.testing.assert_allclose(f("directpred_code", jnp.array([0.0, 1.0]), ds.PredictorParams(eps=0.0)), [1e-4, 1.0])
    copy = ds.PredictorParams(power=1.0, eps=0.1)
    np.testing.assert_allclose(f("directset", c, copy, norm="max"), c / 4 + 0.1)
    np.testing.assert_allclose(f("directset", c, copy, norm="frobenius"), c / np.sqrt(0.0625 + 1 + 16) + 0.1)
    np.testing.assert_allclose(f("directset", c, copy, norm="none"), c + 0.1)


def test_directpred_eps0_sits_on_the_alpha1_parabola():
    """Tian et al. 2021: DirectPred with eps = 0 and exact F (p = sqrt(s), s = eigenvalue of W X W^T) gives
    ds/dt = 2 s^{3/2}[tau - (1+sigma2) s^{1/2}] - 2 eta s, with fixed points s = (p*_±)^2."""
    from dynsim.analytic import tian2021 as th

    sigma2, eta = 0.5, 0.05
    m = ds.SSLModes(loss="euclidean", predictor="directpred_paper", predictor_input="WXWt")
    args = (ds.TianParams(eta=eta), ds.ModeData.isotropic(sigma2, 3), ds.PredictorParams(eps=0.0))
    fp = th.parabola_fixed_points(1.0, eta, 1 + sigma2)
    s0 = jnp.array([(0.8 * fp.p_minus) ** 2, (1.2 * fp.p_minus) ** 2, 0.3**2])
    y0 = m.initial_state(jnp.sqrt(s0), data=args[1], pred=args[2])
    d = m(0.0, y0, args)
    s_dot = 2 * y0.w * d.w
    np.testing.assert_allclose(s_dot, 2 * s0**1.5 * (1 - (1 + sigma2) * s0**0.5) - 2 * eta * s0, rtol=1e-12)
    s_end = _c(ds.solve(m, y0, args, 3000.0, **TIGHT))[-1]
    assert s_end[0] < 1e-10
    np.testing.assert_allclose(s_end[1:], float(fp.p_plus) ** 2, rtol=1e-8)


def test_family_option_errors():
    with pytest.raises(ValueError, match="unknown loss"):
        ds.SSLModes(loss="l1")
    with pytest.raises(ValueError, match="unknown predictor"):
        ds.SSLModes(predictor="mlp")
    with pytest.raises(ValueError, match="iso=True"):
        ds.SSLModes(predictor="trainable", iso=True)
    with pytest.raises(ValueError, match="stop_gradient"):
        ds.SSLModes(target="ema", stop_gradient=False)
    with pytest.raises(ValueError, match="conserves"):
        ds.SSLModes(loss="euclidean").conserved_quantity(ds.ModeState(*[jnp.ones(2)] * 3), (P0, ds.ModeData()))
    with pytest.raises(ValueError, match="power of two"):
        ds.SSLModes(loss="cosine", n_nodes=1000)
    with pytest.raises(ValueError, match="PredictorParams.power"):
        m = ds.SSLModes()
        ds.solve(m, m.initial_state(jnp.ones(2)), (P0, ds.ModeData.isotropic(0.1, 2), ds.PredictorParams(power=0.0)), 1.0)
    with pytest.raises(ValueError, match="modes"):
        m = ds.SSLModes()
        ds.solve(m, m.initial_state(jnp.ones(2)), (P0, ds.ModeData.isotropic(0.1, 3)), 1.0)


def _sampled_online_drive(w, lam, sigma2, iso, n=400_000, seed=1):
    """-dE[loss]/dW on the diagonal, from jax.grad of the losses as the authors write them, on sampled
    data (x ~ N(0, I), x_i = x + sigma xi_i), W = diag(w), closed-form W_P = diag(lam) (no gradient)."""
    M = w.shape[0]
    key1, key2, key3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    x = jax.random.normal(key1, (n, M))
    x1 = x + np.sqrt(sigma2) * jax.random.normal(key2, (n, M))
    x2 = x + np.sqrt(sigma2) * jax.random.normal(key3, (n, M))
    Wp = jnp.diag(lam)
    sg = jax.lax.stop_gradient

    def loss(W):
        z1, z2 = x1 @ W.T, sg(x2 @ W.T)
        p = z1 @ Wp.T
        n_p, n_z = jnp.linalg.norm(p, axis=1), jnp.linalg.norm(z2, axis=1)
        if not iso:  # -cos(p, sg(z2))
            return jnp.mean(-jnp.sum(p * z2, axis=1) / (n_p * n_z))
        # cosine IsoLoss (Halvagal et al. 2023), divided by 2 to match -cos rather than 2 - 2 cos
        A = sg(jnp.sum(p * z2, axis=1) / (n_p**3 * n_z))
        quad = jnp.sum(z1 * (z1 @ Wp.T), axis=1)
        return jnp.mean(-(jnp.sum(z1 * z2, axis=1) / sg(n_p * n_z) - 0.5 * A * quad))

    G = -jax.grad(loss)(jnp.diag(w))
    return jnp.diag(G), G - jnp.diag(jnp.diag(G))


@pytest.mark.parametrize("iso", [False, True])
def test_cosine_reduction_matches_the_sampled_gradient_of_the_loss(iso):
    """Independent check of the exact cosine reduction: the per-mode drift equals the gradient of the
    loss itself (jax.grad on 400 000 sampled pairs), and the off-diagonal gradient vanishes."""
    sigma2 = 0.25
    w = jnp.array([0.5, 0.9, 1.3, 0.7])
    m = ds.SSLModes(loss="cosine", iso=iso, n_nodes=16384)
    y = m.initial_state(w)
    drive = m(0.0, y, (P0, ds.ModeData.isotropic(sigma2, 4))).w
    sampled, off = _sampled_online_drive(w, y.w_p, sigma2, iso)
    assert float(jnp.max(jnp.abs(drive))) > 0.05  # a non-trivial drift away from the fixed point
    # sampling error of one gradient entry: ~8e-4 (per-sample spread ~0.5 / sqrt(4e5)); measured
    # differences 1e-4..5e-4 on the diagonal, up to 2.3e-3 off it
    np.testing.assert_allclose(sampled, drive, atol=3e-3)
    assert float(jnp.max(jnp.abs(off))) < 5e-3


def test_cosine_with_ema_target_and_trainable_predictor_run():
    """Options beyond the toy: EMA target (w_a -> w as the spectrum settles) and a trainable predictor
    under the cosine loss; both finish, stay finite and approach an isotropic spectrum."""
    c0 = jnp.array([0.3, 0.6, 1.0, 1.5])
    data = ds.ModeData.isotropic(SIGMA2, 4)
    m = ds.SSLModes(loss="cosine", target="ema", n_nodes=1024)
    sol = ds.solve(m, m.initial_state(jnp.sqrt(c0), w_a=jnp.sqrt(c0)), (ds.TianParams(beta=1.0), data), 300.0)
    c = np.asarray(sol.final.w) ** 2
    assert np.ptp(c) < 0.05 * np.mean(c)
    np.testing.assert_allclose(sol.final.w_a, sol.final.w, rtol=1e-3)
    m = ds.SSLModes(loss="cosine", predictor="trainable", n_nodes=1024)
    sol = ds.solve(m, m.initial_state(jnp.sqrt(c0), jnp.full(4, 0.5)), (ds.TianParams(alpha_p=1.0), data), 300.0)
    assert np.all(np.isfinite(np.asarray(sol.final.w))) and bool(sol.ok)


def test_gd_map_recomputes_a_closed_form_predictor_after_each_step():
    """Exact GD on the eigenmode ODE with a closed-form predictor (DirectPred on the features, Euclidean SimSiam):
    the recorded w_p is lambda(c(w)) of the stepped w at every save (1e-14), as the network's GD recomputes W_p from
    the current moments; stepping it with the chain-rule rate instead drifts by O(lr) (percents at lr 0.2). The w
    dynamics do not read the recorded w_p, so they equal the network's GD map (1e-10) from an aligned start."""
    from dynsim.networks import NetParams, SSLNet, ViewData, train

    m = ds.SSLModes(loss="euclidean", predictor="directpred_paper", predictor_input="features", target="online")
    data = ds.ModeData.isotropic(0.3, 3)
    args = (ds.TianParams(eta=0.01), data, ds.PredictorParams(eps=0.1))
    y0 = m.initial_state(jnp.array([0.3, 0.8, 1.2]), data=data, pred=args[2])
    gd = ds.gradient_descent(m, y0, args, 0.2, 60, n_saves=6)
    want = jax.vmap(lambda w: m.predictor_values(w, data, args[2]))(gd.ys.w)
    np.testing.assert_allclose(gd.ys.w_p, want, rtol=1e-14)

    net = SSLNet(loss="euclidean", predictor="directpred_paper", predictor_input="features", target="online")
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    V = np.linalg.qr(rng.standard_normal((5, 3)))[0]
    W0 = U @ np.diag([0.3, 0.8, 1.2]) @ V.T
    nargs = (NetParams(wd=0.01, eps=0.1), ViewData.isotropic(5, 0.3))
    W = train(net, net.initial_state(W0, args=nargs), nargs, 0.2, 60, n_saves=6).ys.W
    c_net = np.sort(np.linalg.eigvalsh(np.asarray(W @ np.swapaxes(W, -1, -2))), axis=-1)
    np.testing.assert_allclose(c_net, np.sort(np.asarray(gd.ys.w) ** 2, axis=-1), rtol=1e-10, atol=1e-14)
