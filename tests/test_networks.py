"""Network-level simulations (dynsim.networks) against Lemma 1, the eigenmode theory and the oracles
of Tian et al. 2021, Halvagal et al. 2023 and Richemond et al. 2023."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim.networks import NetParams, SSLNet, ViewData, diagnostics, flow, train
from dynsim.networks import _predictors as cf

# reference solves: dynsim's rk45 loop lands its steps on the saves and compiles in a third of a diffrax
# solve's time (docs/performance.md#the-test-suite)
TIGHT = dict(method="rk45", rtol=1e-11, atol=1e-13)


def _spd(rng, n, scale=1.0):
    A = rng.standard_normal((n, n))
    return scale * (A @ A.T / n + 0.1 * np.eye(n))


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


def _gram(W):
    W = np.asarray(W)
    return W @ np.swapaxes(W, -1, -2)


# --- the expected gradient is Lemma 1 ------------------------------------------------------------
@pytest.mark.parametrize("variant", [
    dict(net=dict(), tian=dict()),
    dict(net=dict(predictor="symmetric"), tian=dict(predictor="symmetric")),
    dict(net=dict(target="online"), tian=dict(target="online")),
    dict(net=dict(target="online", stop_gradient=False), tian=dict(target="online", stop_gradient=False)),
    dict(net=dict(predictor="identity", target="online"), tian=dict(predictor="identity", target="online")),
    dict(net=dict(symmetric_loss=True), tian=dict()),
])
def test_expected_gradient_is_lemma1(variant):
    """Autodiff of the Euclidean loss on the exact quadrature nodes equals the hand-written
    Eqs. 2-4 (non-isotropic X, X', non-symmetric W_p, EMA, weight decay) to round-off."""
    rng = np.random.default_rng(0)
    n1, n2 = 7, 4
    data = ViewData(jnp.asarray(_spd(rng, n1)), jnp.asarray(_spd(rng, n1, 0.4)))
    net, tian = SSLNet(**variant["net"]), ds.TianMatrixFlow(**variant["tian"])
    Wp0 = rng.standard_normal((n2, n2)) / 2
    if net.predictor == "symmetric":
        Wp0 = Wp0 + Wp0.T
    y = net.initial_state(rng.standard_normal((n2, n1)) / 2, Wp0, rng.standard_normal((n2, n1)) / 3)
    d_net = net(0.0, y, (NetParams(alpha_p=1.7, beta=0.3, wd=0.02, wd_p=0.02), data))
    d_tian = tian(0.0, ds.MatrixState(y.W, y.W_p, y.W_a), (ds.TianParams(alpha_p=1.7, beta=0.3, eta=0.02), data.moments()))
    for a, b in zip(d_net[:3], d_tian):
        assert _rel(a, b) < 1e-13 if np.any(b) else np.max(np.abs(a)) == 0


def test_finite_dataset_expected_gradient_uses_empirical_moments():
    """With a fixed dataset of N points the exact nodes give Lemma 1 with X = (1/N) sum x x^T."""
    rng = np.random.default_rng(1)
    data = ViewData.isotropic(5, 0.3).finite(jax.random.key(0), 12)
    X = np.asarray(data.points).T @ np.asarray(data.points) / 12
    assert _rel(data.input_moment, X) < 1e-14 and _rel(X, np.eye(5)) > 0.1
    net = SSLNet()
    y = net.initial_state(rng.standard_normal((3, 5)), rng.standard_normal((3, 3)))
    d_net = net(0.0, y, (NetParams(beta=0.5), data))
    d_tian = ds.TianMatrixFlow()(0.0, ds.MatrixState(*y[:3]), (ds.TianParams(beta=0.5), ds.MomentData(jnp.asarray(X), 0.3 * jnp.eye(5))))
    assert max(_rel(a, b) for a, b in zip(d_net[:3], d_tian)) < 1e-13


# --- GD, SGD and the flow ---------------------------------------------------------------------
def test_gd_converges_to_the_flow_at_first_order():
    """Exact-gradient GD is explicit Euler on the flow: the error at t = 2 halves with lr (order 1 +- 0.1)."""
    rng = np.random.default_rng(2)
    net = SSLNet(loss="cosine", n_nodes=256)
    args = (NetParams(alpha_p=1.5, beta=0.5, wd=0.01, wd_p=0.01), ViewData.isotropic(6, 0.5))
    y0 = net.initial_state(rng.standard_normal((3, 6)) / 2, rng.standard_normal((3, 3)) / 2)
    ref = flow(net, y0, args, 2.0, **TIGHT).final
    errs = [_rel(train(net, y0, args, lr, int(round(2.0 / lr))).final.W, ref.W) for lr in (0.04, 0.02, 0.01)]
    orders = np.log2(np.asarray(errs[:-1]) / np.asarray(errs[1:]))
    assert np.all(np.abs(orders - 1) < 0.1), (errs, orders)
    assert errs[-1] < 1e-2


def test_sgd_matches_the_flow_within_its_noise():
    """The matrix flow of Tian et al. 2021 (Lemma 1) against minibatch SGD: n1=8, n2=4, sigma2=0.5, alpha_p=1,
    eta=0.01, beta=0.4, non-symmetric W_p; SGD at lr 0.01 (2000 steps) with batch 4096 matches the flow's WW^T at
    t=20 to ~1e-2 (docs/theory/tian2021.md#network-against-theory)."""
    rng = np.random.default_rng(3)
    net = SSLNet()
    args = (NetParams(alpha_p=1.0, beta=0.4, wd=0.01, wd_p=0.01), ViewData.isotropic(8, 0.5))
    y0 = net.initial_state(rng.standard_normal((4, 8)) / 2, rng.standard_normal((4, 4)) / 2)
    ref = _gram(flow(net, y0, args, 20.0, **TIGHT).final.W)
    err = _rel(_gram(train(net, y0, args, 0.01, 2000, batch=4096, seed=0).final.W), ref)
    assert err < 1e-2, err
    assert _rel(_gram(y0.W), ref) > 0.3  # the weights moved much more than the tolerance


def test_sgd_seeds_are_reproducible_and_batched_runs_equal_single_runs():
    net = SSLNet(loss="cosine", predictor="directpred_code", target="online", freq=2)
    args = (NetParams(rho=0.3, eps=0.1), ViewData.isotropic(5, 0.2))
    y0 = net.initial_state(np.random.default_rng(4).standard_normal((3, 5)), args=args)
    both = train(net, y0, args, 0.05, 20, batch=64, seed=[7, 8], n_saves=2)
    one = train(net, y0, args, 0.05, 20, batch=64, seed=7, n_saves=2)
    again = train(net, y0, args, 0.05, 20, batch=64, seed=7, n_saves=20)
    np.testing.assert_allclose(both.ys.W[0], one.ys.W, rtol=1e-12)
    np.testing.assert_allclose(again.final.W, one.final.W, rtol=1e-12)  # saving does not change the keys
    assert _rel(both.ys.W[1, -1], both.ys.W[0, -1]) > 1e-3
    assert both.time_axis == 1 and both.ts.shape == (2, 3)


@pytest.mark.slow  # ~20 s each; by default test_compare_command checks the flow against the mode theory to 1e-9
@pytest.mark.parametrize("loss", ["euclidean", "cosine"])
def test_aligned_start_flow_reproduces_mode_odes_and_keeps_theorem1(loss):
    """Tian et al. 2021 at network level, cosine loss included: from an aligned start the
    spectrum of WW^T follows SSLModes (trainable predictor, EMA target), and the Theorem 1
    residual stays at the solver tolerance for both losses."""
    rng = np.random.default_rng(5)
    n1, n2 = 6, 4
    U = np.linalg.qr(rng.standard_normal((n2, n2)))[0]
    V = np.linalg.qr(rng.standard_normal((n1, n1)))[0]
    w0, p0 = np.array([0.3, 0.6, 0.9, 1.2]), np.array([0.4, 0.2, 0.5, 0.3])
    params = NetParams(alpha_p=1.3, beta=0.4, wd=0.01, wd_p=0.01)
    net = SSLNet(loss=loss, n_nodes=2**12)
    W0 = (U * w0) @ V[:, :n2].T
    y0 = net.initial_state(W0, (U * p0) @ U.T, W_a=0.5 * W0)
    args = (params, ViewData.isotropic(n1, 0.5))
    kw = TIGHT
    sol = flow(net, y0, args, 5.0, saveat=11, **kw)
    diag = diagnostics(net, sol.ts, sol.ys, args)
    assert float(np.max(diag["balancing"])) < 1e-9
    modes = ds.SSLModes(loss=loss, predictor="trainable", target="ema", n_nodes=2**12)
    margs = (ds.TianParams(alpha_p=1.3, beta=0.4, eta=0.01), ds.ModeData.isotropic(0.5, n2))
    ms = ds.solve(modes, modes.initial_state(w0, p0, 0.5 * w0), margs, 5.0, saveat=11, **kw)
    c_modes = np.sort(np.asarray(ms.ys.w) ** 2, axis=-1)
    assert _rel(diag["spectrum_F"], c_modes) < 1e-9  # both levels exact (cosine: the two-radius form)
    assert float(np.max(diag["commutator"])) < 1e-8


# --- Halvagal toy ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy():
    """Halvagal et al. 2023: N=15, M=10, W0 = randn/4, sigma=0.1 (exact expectation)."""
    rng = np.random.default_rng(2)
    return rng.standard_normal((10, 15)) / 4, ViewData.isotropic(15, 0.01)


@pytest.mark.parametrize("loss", ["euclidean", "euclidean_iso"])
def test_halvagal_toy_euclidean_gd_is_the_exact_mode_map(toy, loss):
    """GD with W_P = (WW^T)^1 on the exact expected gradient equals the per-mode discrete map
    c <- (1 + lr lam(1 - k lam))^2 c (iso: (1 + lr(1 - k lam))^2 c) to round-off, and reaches 1/k."""
    W0, data = toy
    net = SSLNet(loss=loss, predictor="power", target="online", predictor_input="WWt")
    args = (NetParams(), data)
    sol = train(net, net.initial_state(W0, args=args), args, 0.01, 1500, n_saves=3)
    c = np.linalg.eigvalsh(_gram(sol.ys.W))
    k, lr = 1.01, 0.01
    cm = np.linalg.eigvalsh(W0 @ W0.T)
    traj = [cm]
    for _ in range(1500):
        lam = cm
        cm = (1 + lr * (lam if loss == "euclidean" else 1.0) * (1 - k * lam)) ** 2 * cm
        traj.append(cm)
    assert _rel(c, np.asarray(traj)[::500]) < 1e-12
    np.testing.assert_allclose(c[-1], 1 / k, rtol=1e-6)  # every mode at lambda* = 1/k = 0.990099 by t = 15
    # the smallest mode by step 500: algebraic escape (Euclidean) vs exponential (iso), Halvagal et al. 2023
    assert c[1, 0] < 0.6 / k if loss == "euclidean" else c[1, 0] > 0.99 / k


def test_halvagal_toy_weight_decay_threshold(toy):
    """Euclidean fixed points with weight decay at network level: wd = 0.05, modes below lambda_- die, the rest reach lambda_+;
    IsoLoss keeps all modes at (1 - wd)/k."""
    _, data = toy
    rng = np.random.default_rng(6)
    U, V = np.linalg.qr(rng.standard_normal((10, 10)))[0], np.linalg.qr(rng.standard_normal((15, 15)))[0]
    c0 = np.array([0.02, 0.04, 0.07, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5])
    W0 = (U * np.sqrt(c0)) @ V[:, :10].T
    k, wd = 1.01, 0.05
    lam_m, lam_p = (1 - np.sqrt(1 - 4 * k * wd)) / (2 * k), (1 + np.sqrt(1 - 4 * k * wd)) / (2 * k)
    for loss in ("euclidean", "euclidean_iso"):
        net = SSLNet(loss=loss, predictor="power", target="online", predictor_input="WWt")
        args = (NetParams(wd=wd), data)
        c = np.linalg.eigvalsh(_gram(train(net, net.initial_state(W0, args=args), args, 0.05, 6000).final.W))
        if loss == "euclidean":
            assert np.all(c[:2] < 1e-3) and np.all(c0[:2] < lam_m)
            np.testing.assert_allclose(c[2:], lam_p, rtol=1e-4)
        else:
            np.testing.assert_allclose(c, (1 - wd) / k, rtol=1e-4)


def test_halvagal_toy_cosine_conservation_and_end_levels(toy):
    """Cosine GD (lr 0.1, 1500 steps) keeps tr C up to the O(lr^2) drift of discrete
    steps (8.694 -> 8.701 measured), ends isotropic at ~tr C0 / M, and follows the reduced mode
    ODE's discrete map (isotropic views make the spectrum's dynamics independent of the singular vectors; both
    levels use the exact expectation, so to 1e-9); cosine IsoLoss keeps sum c^2 (12.14 -> 12.18)."""
    W0, data = toy
    c0 = np.linalg.eigvalsh(W0 @ W0.T)
    for loss, conserved in (("cosine", lambda c: c.sum(-1)), ("cosine_iso", lambda c: (c**2).sum(-1))):
        net = SSLNet(loss=loss, predictor="power", target="online", predictor_input="WWt")
        args = (NetParams(), data)
        c = np.linalg.eigvalsh(_gram(train(net, net.initial_state(W0, args=args), args, 0.1, 1500, n_saves=3).ys.W))
        q = conserved(c)
        assert abs(q[-1] / q[0] - 1) < 5e-3 and abs(q[-1] / q[0] - 1) > 1e-5  # small, and a discrete-time effect
        level = (q[0] / 10) ** (1 / (1 if loss == "cosine" else 2))
        np.testing.assert_allclose(c[-1], level, rtol=1.5e-2)
        modes = ds.SSLModes(loss="cosine", iso=loss == "cosine_iso", predictor="power", target="online")
        ms = ds.gradient_descent(modes, modes.initial_state(np.sqrt(c0)), (ds.TianParams(), ds.ModeData.isotropic(0.01, 10)),
                                 0.1, 1500, n_saves=3)
        assert _rel(c, np.sort(np.asarray(ms.ys.w) ** 2, axis=-1)) < 1e-9


# --- collapse -------------------------------------------------------------------------------
@pytest.mark.slow  # ~19 s; the mode-level twin is test_ssl_modes/test_tian_matrix
def test_no_stop_gradient_and_no_predictor_collapse():
    """Tian et al. 2021: without stop-gradient ||W||_F is non-increasing and below
    e^{-(sigma2+eta)t}||W0||; without a predictor W(t) = e^{-(sigma2+eta)t} W0 exactly."""
    rng = np.random.default_rng(7)
    s2, eta = 0.5, 0.02
    args = (NetParams(wd=eta, wd_p=eta), ViewData.isotropic(6, s2))
    W0 = rng.standard_normal((4, 6))
    net = SSLNet(target="online", stop_gradient=False)
    sol = flow(net, net.initial_state(W0, rng.standard_normal((4, 4))), args, 10.0, saveat=21, **TIGHT)
    norms = np.linalg.norm(np.asarray(sol.ys.W), axis=(-2, -1))
    assert np.all(np.diff(norms) <= 1e-12)
    assert np.all(norms <= np.exp(-(s2 + eta) * np.asarray(sol.ts)) * norms[0] * (1 + 1e-9))
    net = SSLNet(predictor="identity", target="online")
    sol = flow(net, net.initial_state(W0), args, 10.0, saveat=5, **TIGHT)
    expect = np.exp(-(s2 + eta) * np.asarray(sol.ts))[:, None, None] * W0
    assert _rel(sol.ys.W, expect) < 1e-10
    # cosine with Halvagal's W_P = WW^T (exact autodiff through both branches without stop-gradient):
    # modes die (dimensional collapse), while with the stop-gradient all survive and become isotropic. Nodes, as in
    # the Fig. 2 no-stop-gradient panel: once W has rank one the exact expected gradient is singular (E[1/|z|]
    # diverges), so GD on it blows up after the collapse (docs/theory/cosine_expectation.md)
    args = (NetParams(), ViewData.isotropic(6, 0.5))
    for sg in (False, True):
        net = SSLNet(loss="cosine", predictor="power", predictor_input="WWt", target="online", stop_gradient=sg,
                     expectation="nodes", n_nodes=512)
        c = np.linalg.eigvalsh(_gram(train(net, net.initial_state(W0 / 3, args=args), args, 0.1, 2000).final.W))
        assert (np.sum(c < 1e-6 * c[-1]) >= 2) if not sg else (c[0] > 0.8 * c[-1]), c


# --- Richemond et al. 2023 predictors (docs/theory/richemond_li_wang.md) ---------------------------------------------------
def test_lrp_is_the_least_squares_predictor_and_its_projection():
    """docs/theory/richemond_li_wang.md#lrp: with Z, Z' batches (rows), P* = (Z^T Z)^-1 Z^T Z'; Z P* = H Z' with H symmetric
    idempotent; ||P* - I|| is linear in sigma for Z' = Z + sigma G, and P* = I at sigma = 0."""
    rng = np.random.default_rng(8)
    b, f = 64, 6
    Z, G = rng.standard_normal((b, f)), rng.standard_normal((b, f))
    H = Z @ np.linalg.solve(Z.T @ Z, Z.T)
    assert np.max(np.abs(H @ H - H)) < 1e-13 and np.max(np.abs(H - H.T)) < 1e-14
    devs = []
    for sigma in (0.0, 1.0, 0.1, 0.01):
        Zp = Z + sigma * G
        Wp = cf.closed_form_predictor("lrp", Z.T @ Z / b, Z.T @ Zp / b, NetParams(), n_iter=0)
        P = np.asarray(Wp).T  # row convention
        assert np.max(np.abs(Z @ P - H @ Zp)) < 1e-12
        devs.append(np.linalg.norm(P - np.eye(f)))
    assert devs[0] < 1e-13
    np.testing.assert_allclose(np.asarray(devs[1:-1]) / np.asarray(devs[2:]), 10.0, rtol=1e-10)
    # NE agrees with LRP to O(delta^2) when Z^T Z / b = (1 + delta) I
    S = (1 + 0.1) * np.eye(f)
    ne = cf.closed_form_predictor("ne", S, S, NetParams(), n_iter=0)
    lrp = cf.closed_form_predictor("lrp", S, S, NetParams(), n_iter=0)
    assert _rel(ne, lrp) == pytest.approx(0.1**2, rel=1e-10)


@pytest.mark.parametrize("n, lam, a, b", [(9, 1e-2, 0.0999996, 9.99996), (9, 1e-3, 0.027507, 27.507),
                                          (9, 1e-4, 0.0036983, 36.983), (9, 1e-5, 3.829e-4, 38.29),
                                          (7, 1e-3, 0.015850, 15.850)])
def test_newton_schulz_scalar_filter(n, lam, a, b):
    """The table of docs/theory/richemond_li_wang.md#filters: the coupled Newton-Schulz recurrence, printed there to
    five significant digits."""
    an, bn = cf.ns_filter(lam, n)
    assert float(an) == pytest.approx(a, rel=1e-4) and float(bn) == pytest.approx(b, rel=1e-4)


def test_matrix_iterations_are_their_spectral_filters():
    """NS, NS^2, Stiefel and Visser on a rotated spectrum: the values and errors of
    docs/theory/richemond_li_wang.md#filters."""
    s = np.array([1, 0.5, 0.2, 0.1, 0.03, 0.01, 1e-3, 1e-4])
    Q = np.linalg.qr(np.random.default_rng(9).standard_normal((8, 8)))[0]
    S = jnp.asarray((Q * s) @ Q.T)
    eig = lambda A: np.sort(np.linalg.eigvalsh(np.asarray((A + A.T) / 2)))[::-1]  # noqa: E731
    fro = np.linalg.norm(s)
    a9, _ = cf.ns_filter(s / fro, 9)
    np.testing.assert_allclose(eig(cf.ns_sqrt(S, 9)), np.asarray(a9) * np.sqrt(fro), rtol=1e-9)
    assert _rel(eig(cf.ns_sqrt(S, 9))[:3], np.sqrt(s[:3])) < 1e-4  # sqrt on the top of the spectrum
    assert _rel(eig(cf.ns_sqrt(jnp.asarray(cf.ns_sqrt(S, 7)), 7))[:2], s[:2] ** 0.25) < 1e-3  # NS^2 ~ S^(1/4)
    st = eig(cf.stiefel(S, 9))
    np.testing.assert_allclose(st[:7], [0.0140, 0.0140, 0.0140, 0.0140, 0.0118, 0.0051, 5.3e-4], rtol=1.5e-2)
    # linear in sigma below ~1e-3 (a rounded 5.0e-5 quoted for 1e-4 would contradict the linear law)
    assert st[6] / st[7] == pytest.approx(10.0, rel=1e-3)
    np.testing.assert_allclose(st, cf.stiefel_filter(s, 9), rtol=1e-9)
    assert np.ptp(eig(cf.stiefel(S, 20))[:7]) < 1e-7  # n = 20: flat, a scaled identity
    errs = [np.linalg.norm(eig(cf.visser(S, n, 0.5)) - np.sqrt(s)) / np.linalg.norm(np.sqrt(s)) for n in (10, 30, 60)]
    np.testing.assert_allclose(errs, [0.13, 0.042, 0.017], rtol=0.05)


@pytest.mark.slow
def test_every_predictor_trains_finite():
    """Each predictor kind, with its options (rho, ridge, pred_ema, freq), trains to finite, moving states."""
    rng = np.random.default_rng(10)
    W0 = rng.standard_normal((4, 6)) / 2
    data = ViewData.isotropic(6, 0.2)
    for i, kind in enumerate(("trainable", "symmetric", "identity") + cf.CLOSED_FORMS):
        net = SSLNet(loss="euclidean", predictor=kind, target="ema", freq=2 if kind == "ns" else 1)
        args = (NetParams(rho=0.5, pred_ema=0.2 if kind == "stiefel" else 0.0, ridge=0.3, beta=0.5), data)
        Wp0 = np.eye(4) * 0.5 if kind in ("trainable", "symmetric") else None
        y0 = net.initial_state(W0, Wp0, 0.5 * W0, args=args)
        sol = train(net, y0, args, 0.02, 20, batch=None if i % 2 else 32)  # GD and SGD alternately
        assert np.all(np.isfinite(np.asarray(sol.final.W))) and _rel(sol.final.W, W0) > 1e-3, kind
        if net.closed_form:
            assert np.min(np.linalg.eigvalsh(np.asarray(sol.final.S11))) > -1e-12


# --- bad input ---------------------------------------------------------------------------------
def test_bad_configurations_get_clear_errors():
    with pytest.raises(ValueError, match="unknown predictor"):
        SSLNet(predictor="directpredd")
    with pytest.raises(ValueError, match="unknown loss"):
        SSLNet(loss="l2")
    with pytest.raises(ValueError, match="IsoLoss needs a closed-form"):
        SSLNet(loss="euclidean_iso", predictor="trainable")
    with pytest.raises(ValueError, match="stop_gradient=False"):
        SSLNet(stop_gradient=False)
    net, args = SSLNet(), (NetParams(beta=2.0), ViewData.isotropic(3, 0.1))
    y0 = net.initial_state(np.ones((2, 3)), np.eye(2))
    with pytest.raises(ValueError, match="lr must be > 0"):
        train(net, y0, args, 0.0, 10)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        train(net, y0, args, 0.1, 10, batch=0)
    with pytest.raises(ValueError, match="EMA decay"):
        train(net, y0, args, 0.6, 10)  # 1 - lr*beta = -0.2
    with pytest.raises(ValueError, match="rho"):
        train(net, y0, (NetParams(rho=1.5), args[1]), 0.1, 10)
    with pytest.raises(ValueError, match="n1 = 4"):
        train(net, y0, (args[0], ViewData.isotropic(4, 0.1)), 0.1, 10)
    with pytest.raises(ValueError, match="needs args"):
        SSLNet(predictor="power").initial_state(np.ones((2, 3)))


def test_float32_path_runs():
    net = SSLNet(loss="cosine", predictor="ns", target="online", n_nodes=64)
    data = ViewData(jnp.eye(4, dtype=jnp.float32), 0.1 * jnp.eye(4, dtype=jnp.float32))
    args = (NetParams(), data)
    y0 = net.initial_state(jnp.asarray(np.random.default_rng(0).standard_normal((3, 4)), jnp.float32), args=args)
    sol = train(net, y0, args, 0.05, 10, batch=16)
    assert sol.final.W.dtype == jnp.float32 and np.all(np.isfinite(np.asarray(sol.final.W)))


def test_moment_sampling_has_the_law_of_sampled_minibatches():
    """sgd_sampling='moments' (Wishart second moments via Bartlett) vs explicit samples: one SGD step
    from the same state over 8000 keys each, non-isotropic data; the mean updates agree to 4.5
    standard errors and the per-entry standard deviations to 5 %."""
    rng = np.random.default_rng(11)
    n1, n2, B, runs = 4, 3, 64, 8000
    args = (NetParams(beta=0.5), ViewData(jnp.asarray(np.diag([1.0, 2.0, 0.5, 1.5])), 0.3 * jnp.eye(n1)))
    W0 = rng.standard_normal((n2, n1))
    keys = jax.vmap(jax.random.key)(jnp.arange(runs))
    stats = []
    for mode in ("samples", "moments"):
        net = SSLNet(sgd_sampling=mode)
        y0 = net.initial_state(W0, 0.5 * np.eye(n2))
        sol = jax.vmap(lambda k: ds.networks.train_core(net, y0, args, 0.1, k, 1, 1, B))(keys)
        d = np.concatenate([np.asarray(sol.ys.W[:, -1] - W0).reshape(runs, -1),
                            np.asarray(sol.ys.W_p[:, -1] - y0.W_p).reshape(runs, -1)], axis=1)
        stats.append((d.mean(0), d.std(0)))
    (m1, s1), (m2, s2) = stats
    assert np.max(np.abs(m1 - m2) / (s1 * np.sqrt(2 / runs))) < 4.5
    np.testing.assert_allclose(s2, s1, rtol=0.05)
    with pytest.raises(ValueError, match="Euclidean"):
        SSLNet(loss="cosine", sgd_sampling="moments")


def test_rank_diagnostics_closed_forms():
    """Stable rank sum(s)/max(s) and Roy-Vetterli effective rank exp(H(sigma/sum sigma)) for a W with
    singular values (3, 2, 1, 0), rotated; and through diagnostics() on a saved trajectory."""
    from dynsim.networks._diagnostics import effective_rank, stable_rank

    rng = np.random.default_rng(12)
    U, V = np.linalg.qr(rng.standard_normal((4, 4)))[0], np.linalg.qr(rng.standard_normal((6, 6)))[0]
    sig = np.array([3.0, 2.0, 1.0, 0.0])
    W = (U * sig) @ V[:, :4].T
    q = sig[:3] / 6
    s = np.linalg.eigvalsh(W @ W.T)
    assert float(stable_rank(s)) == pytest.approx(14 / 9, rel=1e-12)
    assert float(effective_rank(s)) == pytest.approx(np.exp(-np.sum(q * np.log(q))), rel=1e-6)
    net = SSLNet(predictor="identity", target="online")
    args = (NetParams(), ViewData.isotropic(6, 0.1))
    y = net.initial_state(W)
    d = diagnostics(net, np.zeros(1), jax.tree.map(lambda a: a[None], y), args)
    assert float(d["stable_rank"][0]) == pytest.approx(14 / 9, rel=1e-12)
    assert float(d["commutator"][0]) < 1e-12 and float(d["balancing"][0]) == 0.0


@pytest.mark.parametrize("timing", ["current", "previous"])
def test_closed_form_predictor_timing_orders_of_a_step(timing):
    """``predictor_timing``: step k uses the predictor from moments that include step k's batch ("current", the
    default) or the one set at the end of step k-1 ("previous", the DirectPred reference code's order). Each
    equals a loop that writes its order out (1e-13; GD with the moment EMA rho = 0.6, DirectPred on the features,
    an EMA target), and the two orders differ (by more than 1e-6 after 20 steps at lr 0.05)."""
    net = SSLNet(predictor="directpred_paper", predictor_timing=timing)
    params = NetParams(rho=0.6, eps=0.1, wd=0.01)
    data = ViewData.isotropic(5, 0.3)
    model = net.family(params)
    rng = np.random.default_rng(5)
    W0 = rng.standard_normal((3, 5)) / 2
    y0 = net.initial_state(W0, W_a=0.5 * W0, args=(params, data))
    lr, steps = 0.05, 20
    got = train(net, y0, (params, data), lr, steps).final

    nodes = model.expectation_nodes(data)
    W, Wp, Wa, S11, S12 = (jnp.asarray(v) for v in y0)
    for _ in range(steps):
        m11, m12 = model.expected_moments(W, Wa, data)
        S11, S12 = 0.6 * S11 + 0.4 * m11, 0.6 * S12 + 0.4 * m12
        fresh = model.closed_predictor(S11, S12)
        used = fresh if timing == "current" else Wp
        gW, _ = model.gradients(ds.NetState(W, used, Wa, S11, S12), used, nodes)
        W, Wa = W - lr * (gW + 0.01 * W), Wa + lr * params.beta * (W - Wa)
        Wp = fresh
    np.testing.assert_allclose(got.W, W, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(got.W_p, Wp, rtol=1e-13, atol=1e-15)
    other = SSLNet(predictor="directpred_paper", predictor_timing="previous" if timing == "current" else "current")
    assert float(jnp.max(jnp.abs(train(other, y0, (params, data), lr, steps).final.W - got.W))) > 1e-6
    with pytest.raises(ValueError, match="predictor_timing"):
        SSLNet(predictor_timing="later")


def test_traced_step_counts_give_the_same_run_and_compile_once():
    """`train(..., static_steps=False)` traces the step count (a `fori_loop` instead of a `lax.scan`): the same values
    step by step as the compiled-in count (the same update, bit for bit), and runs of two lengths share one program."""
    from dynsim.networks._training import _train_counted_jit

    net = SSLNet(loss="euclidean", predictor="trainable", target="ema")
    args = (NetParams(beta=0.4, wd=0.01), ViewData.isotropic(4, 0.5))
    rng = np.random.default_rng(0)
    y0 = net.initial_state(jnp.asarray(0.3 * rng.standard_normal((2, 4))), W_p=jnp.eye(2), args=args)
    before = _train_counted_jit._cache_size()
    traced = {n: train(net, y0, args, 0.05, n, n_saves=3, static_steps=False) for n in (30, 60)}
    assert _train_counted_jit._cache_size() == before + 1
    for n, run in traced.items():
        fixed = train(net, y0, args, 0.05, n, n_saves=3)
        for a, b in zip(jax.tree.leaves(fixed.ys), jax.tree.leaves(run.ys)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(fixed.ts, run.ts)
