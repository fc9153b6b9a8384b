"""Views as data: the two views' joint second moments (``docs/theory/views.md``).

Oracles: the moments the node sets and samplers must reproduce (exact for the quadrature nodes, within sampling
error for samples); the per-mode closed forms re-derived for views that differ (the Euclidean drives
:math:`\\bar w\\ell_{12} - \\lambda w\\ell_{11}` with the stop-gradient and :math:`-w(\\lambda^2\\ell_{11} - 2\\lambda\\ell_{12}
+ \\ell_{22})` without); automatic differentiation of the per-sample loss on exact nodes; the tilted-moment
derivation of the cosine drives (``tests/test_cosine_exact.py``); and the network against its eigenmode
reduction. Under the law of Halvagal et al.'s toy update (online view clean, target view :math:`x + \\sigma\\xi`:
:math:`\\ell_{11} = \\ell_{12} = 1`, :math:`\\ell_{22} = 1 + \\sigma^2`) the Euclidean level is 1, the drift without a
predictor is 0 and the collapse rate without stop-gradient is :math:`(\\lambda - 1)^2 + \\sigma^2`.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim import components as cp
from dynsim.analytic import halvagal2023 as hv
from dynsim.networks import NetParams, SSLNet, ViewData, train
from test_cosine_exact import _reference_gradients

S2 = 0.01  # Halvagal et al.'s toy: sigma = 0.1


def test_mode_data_presets_and_checks():
    d = ds.ModeData.clean_online(S2, 3)
    np.testing.assert_array_equal(np.asarray(d.l11), 1.0)
    np.testing.assert_array_equal(np.asarray(d.l12), 1.0)
    np.testing.assert_allclose(np.asarray(d.l22), 1 + S2, rtol=1e-15)
    assert not d.symmetric and ds.ModeData.isotropic(S2).symmetric
    assert float(ds.ModeData.isotropic(S2).l22) == float(ds.ModeData.isotropic(S2).l11)  # both views alike
    e = ds.ModeData.views(0.2, 0.5)
    assert (float(e.l11), float(e.l12), float(e.l22)) == pytest.approx((1.2, 1.0, 1.5), rel=1e-15)
    d.validate()
    ds.ModeData(lambda_s=1.0, lambda_d=2.0, lambda_2=4.0).validate()  # x2 = 2x: a PSD pair, l12 > l11 allowed
    with pytest.raises(ValueError, match="PSD pair"):
        ds.ModeData(lambda_s=1.0, lambda_d=1.5, lambda_2=2.0).validate()
    with pytest.raises(ValueError, match="lambda_2"):
        ds.ModeData(lambda_s=1.0, lambda_d=0.5, lambda_2=-1.0).validate()


@pytest.mark.parametrize("expectation", [cp.SecondMoments(), cp.GaussianNodes(n_nodes=2**16, seed=3)])
def test_mode_nodes_carry_the_views_moments(expectation):
    """Exact moments from the 2x2 factor nodes (1e-14); within 2 % from 2^16 quasi-random nodes."""
    data = ds.ModeData(lambda_s=jnp.asarray([1.0, 0.5]), lambda_d=jnp.asarray([0.9, -0.2]),
                       lambda_2=jnp.asarray([1.3, 2.0]))
    u1, u2, wts = expectation.mode_nodes(data, 2, jnp.float64)
    got = [np.asarray(jnp.sum(wts[:, None] * a * b, axis=0)) for a, b in ((u1, u1), (u1, u2), (u2, u2))]
    tol = 1e-14 if isinstance(expectation, cp.SecondMoments) else 2e-2
    for g, want in zip(got, (data.l11, data.l12, data.l22)):
        np.testing.assert_allclose(g, np.asarray(want), rtol=tol, atol=tol)


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_euclidean_closed_forms_equal_autodiff_on_exact_nodes(stop_gradient):
    """The Euclidean per-mode closed forms for views that differ against the generic drives (automatic
    differentiation of the per-sample loss on the exact second-moment nodes), to 1e-13."""
    class Plain(cp.Euclidean):  # the inherited generic drives, not the closed form
        def mode_drives(self, *args):
            return cp.AbstractLoss.mode_drives(self, *args)

    data = ds.ModeData(lambda_s=jnp.asarray([1.0, 1.1, 0.7]), lambda_d=jnp.asarray([1.0, 0.8, 0.5]),
                       lambda_2=jnp.asarray([1.01, 1.5, 0.9]))
    w, w_bar, lam = jnp.asarray([0.4, 0.9, 1.3]), jnp.asarray([0.5, 0.7, 1.1]), jnp.asarray([0.8, 1.2, 0.6])
    if not stop_gradient:
        w_bar = w
    closed = cp.Euclidean().mode_drives(w, w_bar, lam, data, stop_gradient, cp.SecondMoments())
    generic = Plain().mode_drives(w, w_bar, lam, data, stop_gradient, cp.SecondMoments())
    for a, b in zip(closed, generic):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=1e-15)


def test_the_authors_law_at_mode_level():
    """Online view clean: Euclidean level 1 (Halvagal et al.'s fixed point at k = l11 / l12 = 1, also IsoLoss), no
    drift without predictor, collapse rate (lambda - 1)^2 + sigma^2 without stop-gradient (its closed form at
    l22 = 1 + sigma^2), from the dynsim right-hand sides."""
    md = ds.ModeData.clean_online(S2, 4)
    w = jnp.asarray([0.3, 0.6, 0.9, 1.2])
    args = (ds.TianParams(), md)
    assert float(hv.euclidean_fixed_points(1.0)[1]) == pytest.approx(1.0, rel=1e-15)
    for iso in (False, True):
        m = ds.SSLModes(loss="euclidean", iso=iso, predictor="power", target="online")
        end = ds.solve(m, m.initial_state(w), args, 4000.0, rtol=1e-10, atol=1e-12).final.w
        np.testing.assert_allclose(np.asarray(end) ** 2, 1.0, rtol=1e-6)
    m = ds.SSLModes(loss="euclidean", predictor="identity", target="online")
    assert not np.any(np.asarray(m(0.0, m.initial_state(w), args).w))
    lam = jnp.asarray([0.5, 0.9, 1.0, 1.4])
    m = ds.SSLModes(loss="euclidean", predictor="trainable", target="online", stop_gradient=False)
    rate = -np.asarray(m(0.0, m.initial_state(w, lam), args).w) / np.asarray(w)
    np.testing.assert_allclose(rate, (np.asarray(lam) - 1) ** 2 + S2, rtol=1e-14)


def test_cosine_exact_drives_with_views_that_differ():
    """The exact cosine drives read l11, l12 and l22: against the tilted-moment derivation, to 1e-10."""
    M = 10
    rng = np.random.default_rng(11)
    w, lam = rng.uniform(0.3, 1.4, M), rng.uniform(0.4, 1.6, M)
    data = ds.ModeData.views(0.05, 0.3, M)
    drive, _ = cp.Cosine().mode_drives(jnp.asarray(w), jnp.asarray(w), jnp.asarray(lam), data, True, cp.GaussianExact())
    g_q, _ = _reference_gradients(lam * w, w, np.full(M, 1.05), np.full(M, 1.0), np.full(M, 1.3))
    np.testing.assert_allclose(np.asarray(drive), lam * g_q, rtol=0, atol=1e-10 * np.abs(lam * g_q).max())


def test_view_data_with_a_clean_online_view():
    """Exact moments from the quadrature nodes (1e-14), sampled minibatch moments within 5 standard errors, and the
    symmetric-views MomentData refused."""
    data = ViewData.clean_online(5, S2)
    S11, S12, S22 = (np.asarray(m) for m in data.view_moments())
    np.testing.assert_array_equal(S11, np.eye(5))
    np.testing.assert_allclose(S22, (1 + S2) * np.eye(5), rtol=1e-15)
    x1, x2, wts = data.quadratic_nodes()
    for (a, b), want in (((x1, x1), S11), ((x1, x2), S12), ((x2, x2), S22)):
        np.testing.assert_allclose(np.asarray((a * wts[:, None]).T @ b), want, atol=1e-14)
    n = 200_000
    x1, x2, _ = data.sample(jax.random.PRNGKey(0), n)
    x1, x2 = np.asarray(x1), np.asarray(x2)
    assert np.max(np.abs(x1.T @ x2 / n - S12)) < 5 * np.sqrt(2 / n)
    assert np.max(np.abs(np.diag(x2.T @ x2 / n - x1.T @ x1 / n) - S2)) < 5 * np.sqrt(2 / n) * 0.2
    with pytest.raises(ValueError, match="view_moments"):
        data.moments()


@pytest.mark.parametrize("loss, stop_gradient", [("euclidean", True), ("euclidean", False), ("cosine", True)])
def test_network_gd_under_the_authors_law_follows_the_modes(loss, stop_gradient):
    """Aligned start, isotropic data, online view clean: the network's exact-gradient GD and the eigenmode GD map
    agree to 1e-12 after 30 steps; the reduction reads l22 from the target view."""
    rng = np.random.default_rng(12)
    M, N = 4, 6
    U, V = np.linalg.qr(rng.standard_normal((M, M)))[0], np.linalg.qr(rng.standard_normal((N, N)))[0]
    w = np.array([0.3, 0.6, 0.9, 1.2])
    W0 = (U * w) @ V[:, :M].T
    net = SSLNet(loss=loss, predictor="power", predictor_input="WWt", target="online", stop_gradient=stop_gradient)
    args = (NetParams(), ViewData.clean_online(N, S2))
    W = np.asarray(train(net, net.initial_state(W0, args=args), args, 0.1, 30).final.W)
    modes = ds.SSLModes(loss=loss, predictor="power", target="online", stop_gradient=stop_gradient)
    ms = ds.gradient_descent(modes, modes.initial_state(w), (ds.TianParams(), ds.ModeData.clean_online(S2, M)), 0.1, 30)
    c_net, c_modes = np.linalg.eigvalsh(W @ W.T), np.sort(np.asarray(ms.final.w) ** 2)
    assert np.max(np.abs(c_net - c_modes)) < 1e-12 * np.max(c_modes)
    assert np.max(np.abs(c_modes - w**2)) > 1e-3  # the dynamics moved
    _, mdata, _ = ds.reduce_to_modes(net.family(), net.initial_state(W0, args=args), args[1])
    np.testing.assert_allclose(np.asarray(mdata.l22), 1 + S2, rtol=1e-14)


def test_mean_field_drives_with_views_that_differ():
    """The mean-field cosine drives are the gradient of the mean-field expected cosine
    :math:`A/(N_pN_z)` (:math:`N_p^2 = \\sum\\lambda^2w^2\\ell_{11}`, :math:`N_z^2 = \\sum\\bar w^2\\ell_{22}`,
    :math:`A = \\sum\\lambda w\\bar w\\ell_{12}`): the online drive its derivative in :math:`q = \\lambda w` times
    :math:`\\lambda`, plus its derivative in :math:`\\bar w` without the stop-gradient; by automatic differentiation,
    to 1e-14."""
    data = ds.ModeData.views(0.1, 0.4, 3)
    w, lam = jnp.asarray([0.4, 0.9, 1.3]), jnp.asarray([0.8, 1.2, 0.6])

    def mf(q, wb):
        return jnp.sum(q * wb * data.l12) / jnp.sqrt(jnp.sum(q**2 * data.l11) * jnp.sum(wb**2 * data.l22))

    g_q, g_wb = jax.grad(mf, (0, 1))(lam * w, w)
    for sg, want in ((True, lam * g_q), (False, lam * g_q + g_wb)):
        drive, pred = cp.Cosine().mode_drives(w, w, lam, data, sg, cp.MeanField())
        np.testing.assert_allclose(np.asarray(drive), np.asarray(want), rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(np.asarray(pred), np.asarray(w * g_q), rtol=1e-14, atol=1e-15)


def test_tian_collapse_closed_forms_with_views_that_differ():
    """Tian et al. (2021) under views with their own noise (``docs/theory/views.md``): without predictor the
    stop-gradient flow is W(0) exp(-(N_1 + eta) t), the online view's noise only (a matrix N_1 here; a clean online
    view does not move); without stop-gradient ||W|| obeys Theorem 2's bound at the rate of the target view's
    residual covariance S_22 - S_21 S_11^+ S_12 (no_stopgrad_rate), which a clean online view and W_p = I attain.
    Tolerances: 1e-9 relative (flows at rtol 1e-11), the bound with a 1e-10 margin for round-off."""
    from dynsim.analytic import tian2021 as th
    from dynsim.networks import flow

    rng = np.random.default_rng(11)
    n1, eta = 5, 0.03
    N1, N2 = np.diag(rng.uniform(0.05, 0.4, n1)), 0.2 * np.eye(n1)
    views = ViewData(jnp.eye(n1), jnp.asarray(N1), target_noise_cov=jnp.asarray(N2))
    W0 = rng.standard_normal((3, n1))
    ts = np.linspace(0.0, 6.0, 7)
    tight = dict(saveat=ts, rtol=1e-11, atol=1e-13)
    params = NetParams(wd=eta)
    sg = SSLNet(loss="euclidean", predictor="identity", target="online")
    for data in (views, ViewData.clean_online(n1, 0.2)):
        sol = flow(sg, sg.initial_state(W0, args=(params, data)), (params, data), 6.0, **tight)
        noise1 = np.asarray(data.noise_cov)
        np.testing.assert_allclose(sol.ys.W, th.no_predictor_solution(W0, ts, noise1, eta), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(th.no_predictor_solution(W0, ts, 0.0, 0.0), np.broadcast_to(W0, (7, 3, n1)))

    free = SSLNet(loss="euclidean", predictor="trainable", target="online", stop_gradient=False)
    y0 = free.initial_state(W0, rng.standard_normal((3, 3)), args=(params, views))
    sol = flow(free, y0, (params, views), 6.0, **tight)
    norms = np.asarray(jnp.linalg.norm(sol.ys.W, axis=(-2, -1)))
    rate = th.no_stopgrad_rate(*views.view_moments())
    assert float(rate) > 0.2  # above the target view's noise variance, Tian's rate
    assert np.all(norms <= th.no_stopgrad_bound(norms[0], ts, rate, eta) * (1 + 1e-10))

    clean = ViewData.clean_online(n1, 0.2)
    assert float(th.no_stopgrad_rate(*clean.view_moments())) == pytest.approx(0.2, rel=1e-12)
    s2 = 0.3  # isotropic, the same noise in both views: sigma^2 (2 + sigma^2) / (1 + sigma^2)
    assert float(th.no_stopgrad_rate(*ViewData.isotropic(n1, s2).view_moments())) == pytest.approx(
        s2 * (2 + s2) / (1 + s2), rel=1e-12)
    ident = SSLNet(loss="euclidean", predictor="identity", target="online", stop_gradient=False)
    sol = flow(ident, ident.initial_state(W0, args=(params, clean)), (params, clean), 6.0, **tight)
    np.testing.assert_allclose(np.linalg.norm(sol.ys.W, axis=(-2, -1)),
                               th.no_stopgrad_bound(np.linalg.norm(W0), ts, 0.2, eta), rtol=1e-9)


@pytest.mark.parametrize("target_noise", [0.5, 0.0, 1.2])
def test_tian_fixed_points_read_the_online_and_cross_moments(target_noise):
    """With the stop-gradient, Tian et al.'s (2021) closed forms hold for views that differ with
    lambda_s = l11 (the online view's second moment) and lambda_d = l12 (``docs/theory/views.md``); the target
    view's moment l22 does not enter. DirectPred with eps = 0 on W X W^T (p = sqrt(s)) sits on the alpha_p = 1
    parabola, ds/dt = 2 s^{3/2}(l12 - l11 s^{1/2}) - 2 eta s (1e-12), and ends at s = (p*_+)^2 of Eq. 16 (1e-8)."""
    from dynsim.analytic import tian2021 as th

    eta, data = 0.05, ds.ModeData.views(0.5, target_noise, 3)
    m = ds.SSLModes(loss="euclidean", predictor="directpred_paper", predictor_input="WXWt")
    args = (ds.TianParams(eta=eta), data, ds.PredictorParams(eps=0.0))
    fp = th.parabola_fixed_points(1.0, eta, data.l11[0], data.l12[0])  # the same for every mode
    s0 = jnp.array([(0.8 * fp.p_minus) ** 2, (1.2 * fp.p_minus) ** 2, 0.3**2])
    y0 = m.initial_state(jnp.sqrt(s0), data=data, pred=args[2])
    s_dot = 2 * y0.w * m(0.0, y0, args).w
    np.testing.assert_allclose(s_dot, 2 * s0**1.5 * (data.l12 - data.l11 * s0**0.5) - 2 * eta * s0, rtol=1e-12)
    s_end = ds.solve(m, y0, args, 3000.0, rtol=1e-10, atol=1e-12).final.w ** 2
    assert s_end[0] < 1e-10
    np.testing.assert_allclose(s_end[1:], float(fp.p_plus) ** 2, rtol=1e-8)
