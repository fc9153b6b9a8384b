"""The exact Gaussian expectation of the cosine loss at network level (``docs/theory/cosine_expectation.md``).

Oracles, each independent of the code under test:

* the definition: Monte Carlo of :math:`E[\\cos(Px_1, W_tx_2)]` from sampled views (within 4 standard errors);
* value and gradients from a second derivation that never differentiates the expected loss: the expected
  gradient :math:`E[\\partial\\cos/\\partial p\\;x_1^\\top]` written with the moments of the Gaussian tilted in the
  input space (Isserlis' theorem for the fourth moment; :func:`_reference`), integrated by a Gauss-Legendre
  product rule in other variables; to 1e-9 relative;
* the dynamics: :math:`\\|W\\|_F^2` is conserved by the cosine flow with :math:`W_p = WW^\\top` and the end state is
  isotropic at the conserved level (Halvagal et al. 2023), to 1e-7;
* the eigenmode theory: from an aligned start, exact-gradient GD of the network follows the mode-level GD map.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim import components as cp
from dynsim.networks import NetParams, SSLNet, ViewData, flow, train


def _problem(M, n1, seed):
    """Random online map, target, and views with a non-isotropic input covariance and noise."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n1, n1))
    X = A @ A.T / n1 + 0.2 * np.eye(n1)
    N = 0.3 * np.diag(rng.uniform(0.2, 1.0, n1))
    W = rng.standard_normal((M, n1)) / np.sqrt(n1)
    W_p = np.eye(M) + 0.3 * rng.standard_normal((M, M))
    W_a = W + 0.3 * rng.standard_normal((M, n1)) / np.sqrt(n1)
    return W, W_p, W_a, ViewData(jnp.asarray(X), jnp.asarray(N))


def _reference(P, Wt, S11, S12, S22, n=100):
    r"""``(E[cos], dE/dP, dE/dW_t)`` from the tilted input-space Gaussian. With :math:`v = (x_1, x_2)` of
    covariance :math:`\Sigma`, the tilt :math:`e^{-s\|p\|^2 - t\|z\|^2} = e^{-v^\top Qv}`,
    :math:`Q = \mathrm{diag}(sP^\top P, tW_t^\top W_t)`, has mass :math:`\det(I + 2\Sigma Q)^{-1/2}` and covariance
    :math:`\tilde\Sigma = (I + 2\Sigma Q)^{-1}\Sigma`. By :math:`\|y\|^{-k} = \Gamma(k/2)^{-1}\int s^{k/2-1}e^{-s\|y\|^2}ds`,

    .. math::
        \partial_PE[\cos] = E\Big[\frac{z x_1^\top}{\|p\|\|z\|}\Big] - E\Big[\frac{(p\cdot z)\,p x_1^\top}{\|p\|^3\|z\|}\Big],
        \qquad E[(p\cdot z)\,p x_1^\top] = \mathrm{tr}(\tilde C_{pz})\tilde C_{px_1} + \tilde C_{pp}\tilde C_{zx_1}
        + \tilde C_{pz}\tilde C_{px_1}

    under the tilt (Isserlis), and likewise for :math:`W_t`. With :math:`s = x^2`, :math:`t = y^2` and
    :math:`x = \tan\theta`, a Gauss-Legendre product rule in :math:`(\theta_s, \theta_t) \in (0, \pi/2)^2` with ``n``
    nodes per axis (a rule unrelated to the one under test; the integrand is analytic in :math:`\theta` for traces
    near 1, so it converges exponentially; the test checks its convergence)."""
    M, n1 = P.shape
    Sigma = np.block([[S11, S12], [S12.T, S22]])
    L = np.block([[P, np.zeros_like(Wt)], [np.zeros_like(P), Wt]])  # (p, z) = L v
    Gp, Gz = np.zeros((2 * n1, 2 * n1)), np.zeros((2 * n1, 2 * n1))
    Gp[:n1, :n1], Gz[n1:, n1:] = P.T @ P, Wt.T @ Wt
    u, wu = np.polynomial.legendre.leggauss(n)
    theta = (u + 1) * np.pi / 4
    x, wx = np.tan(theta), wu * np.pi / 4 / np.cos(theta) ** 2
    t = (x * x)[:, None, None]
    total = 0.0
    for xi, wi in zip(x, wx):  # s node; all t nodes at once
        s = xi * xi
        A = np.eye(2 * n1) + 2 * s * Sigma @ Gp + 2 * t * (Sigma @ Gz)
        mass = np.exp(-0.5 * np.linalg.slogdet(A)[1])[:, None, None]
        Cv = L @ np.linalg.solve(A, np.broadcast_to(Sigma, A.shape))  # tilted cov((p, z), v)
        C = Cv @ L.T
        Cpp, Cpz, Czz = C[:, :M, :M], C[:, :M, M:], C[:, M:, M:]
        Cpx1, Czx1, Cpx2, Czx2 = Cv[:, :M, :n1], Cv[:, M:, :n1], Cv[:, :M, n1:], Cv[:, M:, n1:]
        tr = np.trace(Cpz, axis1=1, axis2=2)[:, None, None]
        value = 4 / np.pi * mass * tr
        gP = 4 / np.pi * mass * Czx1 - 8 / np.pi * s * mass * (tr * Cpx1 + Cpp @ Czx1 + Cpz @ Cpx1)
        gT = 4 / np.pi * mass * Cpx2 - 8 / np.pi * t * mass * (tr * Czx2 + Czz @ Cpx2 + np.swapaxes(Cpz, 1, 2) @ Czx2)
        total = total + wi * (wx @ np.concatenate([value.reshape(n, 1), gP.reshape(n, -1), gT.reshape(n, -1)], 1))
    return total[0], total[1:1 + M * n1].reshape(M, n1), total[1 + M * n1:].reshape(M, n1)


def _unit_traces(P, W_t, S11, S22):
    r"""Rescale so that :math:`\mathrm{tr}\,C_{pp} = \mathrm{tr}\,C_{zz} = 1` (the cosine is scale-free; keeps the
    reference's integrand features near :math:`\theta = \pi/4`)."""
    return P / np.sqrt(np.trace(P @ S11 @ P.T)), W_t / np.sqrt(np.trace(W_t @ S22 @ W_t.T))


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


def test_expected_cosine_matches_monte_carlo():
    """The closed form against its definition: 4 standard errors of 10^6 sampled view pairs (M = 3, n1 = 5)."""
    W, W_p, W_a, data = _problem(3, 5, seed=0)
    S11, S12, S22 = (np.asarray(m) for m in data.view_moments())
    sigma, weights = cp.GaussianExact().rule(jnp.float64)
    got = float(cp.network_cosine_expectation(jnp.asarray(W_p @ W), jnp.asarray(W_a), S11, S12, S22, sigma, weights))
    rng = np.random.default_rng(1)
    n = 1_000_000
    v = rng.standard_normal((n, 10)) @ np.linalg.cholesky(np.block([[S11, S12], [S12.T, S22]])).T
    p, z = v[:, :5] @ (W_p @ W).T, v[:, 5:] @ W_a.T
    c = np.sum(p * z, 1) / np.linalg.norm(p, axis=1) / np.linalg.norm(z, axis=1)
    assert abs(got - c.mean()) < 4 * c.std() / np.sqrt(n)


@pytest.mark.parametrize("M, n1", [(3, 5), (10, 15), (32, 34)])
def test_value_and_gradients_match_the_tilted_moment_derivation(M, n1):
    """Expected cosine and the network's expected gradients against :func:`_reference`, to 1e-9 relative (the
    tolerance the network-level form is built for; measured 1e-13 or better), for a trainable predictor with an
    EMA target, for IsoLoss (its gradient is the original's with respect to the prediction, no W_p factor), and
    without predictor or stop-gradient (the gradient also flows through the target branch)."""
    W, W_p, W_a, data = _problem(M, n1, seed=M)
    W_p = W_p + W_p.T  # symmetric, as IsoLoss requires
    S11, S12, S22 = (np.asarray(m) for m in data.view_moments())
    W = W / np.sqrt(np.trace(W_p @ W @ S11 @ W.T @ W_p.T))  # unit traces (_unit_traces)
    W_a = _unit_traces(W_p @ W, W_a, S11, S22)[1]
    views = cp.GaussianExact().network_nodes(data)

    value, gP, gT = _reference(W_p @ W, W_a, S11, S12, S22)
    coarse = _reference(W_p @ W, W_a, S11, S12, S22, n=70)
    assert abs(coarse[0] - value) < 1e-12 and _rel(coarse[1], gP) < 1e-11  # the reference has converged
    got = cp.network_cosine_expectation(jnp.asarray(W_p @ W), jnp.asarray(W_a), *views)
    assert float(got) == pytest.approx(value, rel=1e-9)

    ema = ds.Network(loss=cp.Cosine(), predictor=cp.Trainable(), target=cp.EMA(), expectation=cp.GaussianExact())
    y = ema.initial_state(jnp.asarray(W), jnp.asarray(W_p), jnp.asarray(W_a))
    g_W, g_Wp = ema.gradients(y, y.W_p, views)
    assert _rel(g_W, -W_p.T @ gP) < 1e-9 and _rel(g_Wp, -gP @ W.T) < 1e-9

    iso = ds.Network(loss=cp.Cosine(iso=True), predictor=cp.Power(), target=cp.EMA(), expectation=cp.GaussianExact())
    g_W, g_Wp = iso.gradients(y, y.W_p, views)
    assert _rel(g_W, -gP) < 1e-9 and not np.any(np.asarray(g_Wp))

    W = _unit_traces(W, W, S11, S22)[0]  # S11 = S22: both traces 1
    _, gP, gT = _reference(W, W, S11, S12, S22)
    free = ds.Network(loss=cp.Cosine(), predictor=cp.Identity(), target=cp.Online(stop_gradient=False),
                      expectation=cp.GaussianExact())
    g_W, _ = free.gradients(free.initial_state(jnp.asarray(W)), jnp.eye(M), views)
    assert _rel(g_W, -(gP + gT)) < 1e-9


def test_symmetric_loss_averages_both_view_orders():
    """``symmetric_loss``: the expected loss with the views swapped, :math:`(S_{22}, S_{12}^\\top, S_{11})`, averaged
    with the original; checked against the reference with the swapped joint covariance (M = 3)."""
    W, W_p, W_a, data = _problem(3, 5, seed=4)
    views = cp.GaussianExact().network_nodes(data)
    S12 = np.asarray(views.S12) + 0.05 * np.random.default_rng(5).standard_normal((5, 5))  # not symmetric
    views = views._replace(S12=jnp.asarray(S12))
    S11, S22 = np.asarray(views.S11), np.asarray(views.S22)
    W = W / np.sqrt(np.trace(W_p @ W @ S11 @ W.T @ W_p.T))
    W_a = _unit_traces(W_p @ W, W_a, S11, S22)[1]
    net = ds.Network(loss=cp.Cosine(), predictor=cp.Trainable(), target=cp.EMA(), expectation=cp.GaussianExact(),
                     symmetric_loss=True)
    got = net.loss_value(jnp.asarray(W), jnp.asarray(W_p), jnp.asarray(W_a), views)
    one, _, _ = _reference(W_p @ W, W_a, S11, S12, S22)
    other, _, _ = _reference(W_p @ W, W_a, S22, S12.T, S11)
    assert float(got) == pytest.approx(1 - (one + other) / 2, rel=1e-10)


def test_cosine_flow_ends_isotropic_at_the_conserved_level():
    """SimSiam cosine with :math:`W_p = WW^\\top` (Halvagal et al. 2023): the gradient is orthogonal to
    :math:`p` sample by sample, so :math:`\\mathrm{tr}\\,WW^\\top` is conserved, and the fixed point is isotropic,
    every eigenvalue of :math:`WW^\\top` at :math:`\\mathrm{tr}\\,W_0W_0^\\top/M`; with the exact expectation the flow
    reaches it to 1e-7 (relative)."""
    rng = np.random.default_rng(6)
    M, n1 = 4, 6
    W0 = rng.standard_normal((M, n1)) / 2
    net = SSLNet(loss="cosine", predictor="power", predictor_input="WWt", target="online")
    args = (NetParams(), ViewData.isotropic(n1, 0.04))
    assert isinstance(net.family().expectation_for(args[1]), cp.GaussianExact)
    sol = flow(net, net.initial_state(W0, args=args), args, 300.0, saveat=2, rtol=1e-11, atol=1e-13)
    W = np.asarray(sol.final.W)
    level = np.sum(W0**2) / M
    np.testing.assert_allclose(np.linalg.eigvalsh(W @ W.T), level, rtol=1e-7)


def test_network_gd_follows_the_mode_gd_map():
    """From an aligned start (W = U diag(w) V^T on isotropic views) the network's exact-gradient GD and the
    eigenmode GD map of :class:`dynsim.SSLModes` are the same discrete system: spectra agree to 1e-10 after 200
    steps (both exact, so only round-off separates them)."""
    rng = np.random.default_rng(7)
    M, n1 = 5, 7
    U = np.linalg.qr(rng.standard_normal((M, M)))[0]
    V = np.linalg.qr(rng.standard_normal((n1, n1)))[0]
    w0 = np.array([0.2, 0.5, 0.8, 1.0, 1.3])
    net = SSLNet(loss="cosine", predictor="power", predictor_input="WWt", target="online")
    args = (NetParams(), ViewData.isotropic(n1, 0.01))
    W0 = (U * w0) @ V[:, :M].T
    W = np.asarray(train(net, net.initial_state(W0, args=args), args, 0.1, 200).final.W)
    c_net = np.linalg.eigvalsh(W @ W.T)
    modes = ds.SSLModes(loss="cosine", predictor="power", target="online")
    ms = ds.gradient_descent(modes, modes.initial_state(w0), (ds.TianParams(), ds.ModeData.isotropic(0.01, M)), 0.1, 200)
    c_modes = np.sort(np.asarray(ms.final.w) ** 2)
    assert _rel(c_net, c_modes) < 1e-10 and _rel(c_modes, w0**2) > 0.1


def test_float32_runs_and_agrees_with_float64():
    W, W_p, W_a, data = _problem(4, 6, seed=8)
    net = ds.Network(loss=cp.Cosine(), predictor=cp.Trainable(), target=cp.EMA(), expectation=cp.GaussianExact())
    out = {}
    for dt in (jnp.float64, jnp.float32):
        d = ViewData(data.data_cov.astype(dt), data.noise_cov.astype(dt))
        y = net.initial_state(jnp.asarray(W, dt), jnp.asarray(W_p, dt), jnp.asarray(W_a, dt))
        out[dt] = jax.jit(net.gradients)(y, y.W_p, net.expectation_nodes(d))[0]
    assert out[jnp.float32].dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(out[jnp.float32])))
    assert _rel(out[jnp.float32], out[jnp.float64]) < 1e-4


def test_where_the_exact_form_does_not_apply():
    """A finite dataset is not Gaussian: Auto takes nodes there, an explicit GaussianExact is refused; a loss
    without a two-radius form is refused at construction; Auto picks the exact form on Gaussian views."""
    data = ViewData.isotropic(4, 0.1)
    finite = data.finite(jax.random.PRNGKey(0), 16)
    net = ds.Network(loss=cp.Cosine(), predictor=cp.Identity(), target=cp.Online())
    assert isinstance(net.expectation_for(data), cp.GaussianExact)
    assert isinstance(net.expectation_for(finite), cp.GaussianNodes)
    assert isinstance(net.expectation_nodes(data), cp.ExactViews)
    exact = ds.Network(loss=cp.Cosine(), predictor=cp.Identity(), target=cp.Online(), expectation=cp.GaussianExact())
    with pytest.raises(ValueError, match="finite dataset"):
        exact.expectation_nodes(finite)
    with pytest.raises(ValueError, match="two-radius form"):
        ds.Network(loss=cp.Euclidean(), expectation=cp.GaussianExact())
    assert isinstance(SSLNet(loss="cosine", expectation="exact").family().resolved_expectation, cp.GaussianExact)
    assert isinstance(SSLNet(expectation="exact").family().resolved_expectation, cp.SecondMoments)


def test_node_expectations_warn_when_their_error_is_large():
    """Nodes stay available (a finite dataset is not Gaussian) but warn when their estimated error exceeds 1 % of
    the largest drive or gradient entry at the start; the exact expectation and SGD never warn."""
    m = ds.SSLModes(loss="cosine", expectation="nodes", n_nodes=64)
    y0 = m.initial_state(jnp.asarray([0.3, 0.6, 0.9, 1.2]))
    margs = (ds.TianParams(), ds.ModeData.isotropic(0.01, 4))
    with pytest.warns(UserWarning, match="64-node expectation's estimated error"):
        ds.solve(m, y0, margs, 0.5)
    exact = ds.SSLModes(loss="cosine")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.solve(exact, exact.initial_state(jnp.asarray([0.3, 0.6, 0.9, 1.2])), margs, 0.5)
    W0 = np.random.default_rng(9).standard_normal((3, 5)) / 2
    net = SSLNet(loss="cosine", predictor="power", predictor_input="WWt", target="online")
    args = (NetParams(), ViewData.isotropic(5, 0.1).finite(jax.random.PRNGKey(0), 8))  # Auto: nodes
    y = net.initial_state(W0, args=args)
    with pytest.warns(UserWarning, match="estimated gradient error"):
        train(net, y, args, 0.1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train(net, y, args, 0.1, 2, batch=4)


def test_exact_error_estimate_bounds_the_rule_error():
    """``Network.expectation_error`` of the exact expectation (the gradient's change when the radial rule's step
    doubles) bounds the default rule's actual error entry by entry, at a generic state and near rank one (singular
    values 1 and ``tail``-sized: the top direction carries 99.8 % of the variance at 0.02). The actual error is
    taken against the rule at half the step (``n_half=76``), which agrees with ``n_half=112`` to 1e-12; it is
    below 1e-12 at the generic state (measured 2e-14) and below 1e-6 near rank one (measured 3.7e-7; the error
    grows as the state approaches rank one, ``docs/theory/cosine_expectation.md`` Section 6)."""
    rng = np.random.default_rng(3)
    M, n1 = 10, 15
    U, V = np.linalg.qr(rng.standard_normal((M, M)))[0], np.linalg.qr(rng.standard_normal((n1, M)))[0]
    data = ViewData.isotropic(n1, 0.1)
    nets = {n: ds.Network(loss=cp.Cosine(), predictor=cp.Identity(), target=cp.Online(),
                          expectation=cp.GaussianExact(n_half=n)) for n in (38, 76, 112)}
    grads = {n: jax.jit(lambda W, net=net: net.gradients(net.initial_state(W), jnp.eye(M),
                                                          net.expectation_nodes(data))[0]) for n, net in nets.items()}
    for tail, bound in ((0.5, 1e-12), (0.02, 1e-6)):
        W = jnp.asarray(U @ np.diag(np.r_[1.0, tail * rng.uniform(0.5, 1, M - 1)]) @ V.T)
        g = {n: f(W) for n, f in grads.items()}
        assert _rel(g[76], g[112]) < 1e-12
        estimate = jax.jit(nets[38].expectation_error)(nets[38].initial_state(W), data)
        assert bool(jnp.all(estimate >= jnp.abs(g[38] - g[76])))
        assert _rel(g[38], g[76]) < bound
