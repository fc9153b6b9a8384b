"""Barlow Twins (Simon et al. 2023) as a loss of the component family: the per-mode model and the network flow
against the closed form of the stepwise dynamics, the generic small start against its effective aligned start, and the
network gradient on a finite batch against the paper's matrix gradient and an independent autodiff of the sampled
loss (docs/theory/simon2023.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim import components as cp
from dynsim.analytic import simon2023 as bt
from dynsim.networks import NetParams, SSLNet, ViewData, flow

GAMMA = np.array([4.0, 2.0, 1.0, 0.5, 0.3, 0.2, 0.1, 0.05])  # eigenvalues of Gamma = Sigma_x (additive noise)
N1, D = 8, 4


def _net():
    """The paper's model: no predictor, the gradient through both branches."""
    return SSLNet(loss="barlow_twins", predictor="identity", target="online", stop_gradient=False)


def _views(noise=0.3):
    """Additive views x_i = x + n_i: the symmetrised cross moment Gamma is the clean moment Sigma_x = diag(GAMMA)
    whatever the noise (docs/theory/simon2023.md#model)."""
    return ViewData(data_cov=jnp.diag(jnp.asarray(GAMMA)), noise_cov=noise * jnp.eye(N1))


def test_mode_model_is_the_closed_form():
    """The per-mode model (the restricted network's drives, by autodiff of the batch loss on second-moment nodes)
    from s_j(0) = 1e-2 equals s_j(t)^2 = 1 / (gamma_j + (s_j(0)^-2 - gamma_j) exp(-8 gamma_j t))
    (docs/theory/simon2023.md#closed-form) to 1e-10 over t in [0, 12], through every step; the loss plateaus follow."""
    model = ds.SSLModes(loss="barlow_twins", predictor="identity", target="online", stop_gradient=False)
    gamma = GAMMA[:D]
    data = ds.ModeData(lambda_s=jnp.asarray(1.3 * gamma), lambda_d=jnp.asarray(gamma))  # l12 = gamma
    s0 = np.array([1e-2, 2e-2, 5e-3, 1e-2])
    ts = np.linspace(0.0, 12.0, 49)
    sol = ds.solve(model, model.initial_state(jnp.asarray(s0)), (ds.TianParams(), data), 12.0, saveat=ts,
                   method="rk45", rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(sol.ys.w), bt.singular_values(s0, gamma, ts), rtol=1e-10)
    lam = gamma * np.asarray(sol.ys.w) ** 2
    np.testing.assert_allclose(lam, bt.embedding_eigenvalues(gamma * s0**2, gamma, ts), rtol=1e-10)
    family = model.family()
    loss = np.asarray(jax.vmap(lambda y: family.expected_loss(y, data))(sol.ys))
    np.testing.assert_allclose(loss, bt.loss(lam), rtol=1e-10, atol=1e-14)


def test_network_flow_from_an_aligned_start_is_the_closed_form():
    """W(0) = U S_0 V_d^T (V_d the top-4 eigenvectors of Gamma, U a random rotation): the expected-gradient flow of
    the network keeps the form and its singular values are the closed form's, to 1e-9 over t in [0, 12]; U does
    not move (docs/theory/simon2023.md#closed-form); the recorded spectrum of C is the logistic."""
    net, views = _net(), _views()
    args = (NetParams(), views)
    rng = np.random.default_rng(0)
    U = np.linalg.qr(rng.standard_normal((D, D)))[0]
    s0 = np.array([1e-2, 2e-2, 5e-3, 1e-2])
    W0 = U @ np.diag(s0) @ np.eye(N1)[:D]
    ts = np.linspace(0.0, 12.0, 25)
    sol = flow(net, net.initial_state(jnp.asarray(W0), args=args), args, 12.0, saveat=ts, method="rk45",
               rtol=1e-12, atol=1e-14)
    W = np.asarray(sol.ys.W)
    expected = U[None] * bt.singular_values(s0, GAMMA[:D], ts)[:, None, :] @ np.eye(N1)[:D]
    np.testing.assert_allclose(W, expected, rtol=0, atol=1e-9 * np.abs(expected).max())
    # the diagnostics' spectrum of C = W Gamma W^T is the logistic lambda_j = gamma_j s_j^2 (to the same tolerance)
    from dynsim.networks import diagnostics

    lam = np.sort(GAMMA[:D] * bt.singular_values(s0, GAMMA[:D], ts) ** 2, axis=-1)
    np.testing.assert_allclose(np.asarray(diagnostics(net, sol.ts, sol.ys, args)["spectrum_C"]), lam, rtol=0,
                               atol=1e-9)


def test_generic_small_start_steps_at_the_effective_start():
    """W(0) = 1e-8 Z (Z standard normal): the eigenvalues of C = W Gamma W^T cross 1/2 at the step times of the
    effective aligned start |R_jj| (QR of W(0) V_d; docs/theory/simon2023.md#effective-start), to 1e-6 relative
    (measured 3e-9: the corrections are O(alpha^2)), one mode at a time in the order of gamma; the weights approach
    Q sgn(R) Gamma_d^(-1/2) V_d^T up to the leftovers of size alpha^(1 - gamma_5/gamma_4) = 1.6e-3 (0.4 here)."""
    net, views = _net(), _views()
    args = (NetParams(), views)
    W0 = 1e-8 * np.random.default_rng(0).standard_normal((D, N1))
    V = np.eye(N1)[:, :D]
    gamma = GAMMA[:D]
    predicted = bt.step_times(gamma * bt.effective_start(W0, V) ** 2, gamma)
    assert np.all(np.diff(predicted) > 0)
    ts = np.linspace(0.0, 1.2 * predicted.max(), 2001)
    sol = flow(net, net.initial_state(jnp.asarray(W0), args=args), args, float(ts[-1]), saveat=ts, method="rk45",
               rtol=1e-12, atol=1e-30)
    W = np.asarray(sol.ys.W)
    lam = np.linalg.eigvalsh(W @ np.diag(GAMMA) @ np.swapaxes(W, -1, -2))[:, ::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.log(lam / (1.0 - lam))  # the logistic is linear in the log-odds: interpolate the crossing there
    crossed = []
    for j in range(D):
        k = int(np.argmax(odds[:, j] > 0))
        crossed.append(ts[k - 1] - odds[k - 1, j] * (ts[k] - ts[k - 1]) / (odds[k, j] - odds[k - 1, j]))
    np.testing.assert_allclose(crossed, predicted, rtol=1e-6)
    assert np.abs(W[-1] - bt.final_weights(W0, V, gamma)).max() < 1.6e-3


def test_network_gradient_on_a_batch_is_the_papers_matrix_gradient():
    """On a finite batch of pairs (x1_b, x2_b) with weights 1/B, the network's gradient (through both branches) equals
    4 (C - I) W Gamma_hat with C = W Gamma_hat W^T, Gamma_hat = sym(X1^T X2 / B) (docs/theory/simon2023.md#flow), and
    jax.grad of the sampled loss written here from scratch; to round-off (1e-12 relative). With off-diagonal weight
    lambda, the same against the autodiff of sum_i (1 - C_ii)^2 + lambda sum_(i != j) C_ij^2."""
    rng = np.random.default_rng(1)
    B = 64
    x = rng.standard_normal((B, N1)) * np.sqrt(GAMMA)
    X1, X2 = x + 0.3 * rng.standard_normal((B, N1)), x + 0.3 * rng.standard_normal((B, N1))
    W = 0.4 * rng.standard_normal((D, N1))
    G = 0.5 * (X1.T @ X2 + X2.T @ X1) / B
    C = W @ G @ W.T
    weights = jnp.full(B, 1.0 / B)
    for off in (1.0, 0.005):
        model = ds.Network(loss=cp.BarlowTwins(off_diagonal=off), predictor=cp.Identity(), target=cp.Online(False))
        y = model.initial_state(jnp.asarray(W))
        gW, _ = model.gradients(y, jnp.eye(D), (jnp.asarray(X1), jnp.asarray(X2), weights))

        def sampled(Wv):
            Z1, Z2 = jnp.asarray(X1) @ Wv.T, jnp.asarray(X2) @ Wv.T
            Cv = 0.5 * (Z1.T @ Z2 + Z2.T @ Z1) / B
            mask = 1.0 - jnp.eye(D)
            return jnp.sum((1.0 - jnp.diag(Cv)) ** 2) + off * jnp.sum((Cv * mask) ** 2)

        np.testing.assert_allclose(gW, jax.grad(sampled)(jnp.asarray(W)), rtol=1e-12, atol=1e-14)
        if off == 1.0:
            np.testing.assert_allclose(gW, 4 * (C - np.eye(D)) @ W @ G, rtol=1e-12, atol=1e-14)


def test_barlow_twins_refuses_what_it_does_not_have():
    """It is a loss of the batch, so a per-sample value is an error that says so; it has no IsoLoss form."""
    with pytest.raises(ValueError, match="batch"):
        cp.BarlowTwins().per_sample(jnp.ones((2, 2)), jnp.ones((2, 2)), jnp.ones((2, 2)), jnp.eye(2))
    with pytest.raises(ValueError, match="IsoLoss"):
        cp.BarlowTwins(iso=True)


def test_sweeps_run_barlow_twins():
    """A sweep of the per-mode model over the view noise: every mode ends at s_j = 1/gamma_j, gamma_j = (j+1)^-1
    (`data_decay = 1`; docs/theory/simon2023.md#closed-form), with zero loss, whatever the noise (Gamma is the clean
    moment for additive views)."""
    from dynsim import sweeps
    from dynsim.sweeps._runner import ChunkRunner

    cfg = sweeps.load_config({"model": {"kind": "ssl_modes", "loss": "barlow_twins", "predictor": "identity",
                                        "target": "online", "stop_gradient": False, "n_modes": 4},
                              "params": {"w0": 0.01, "data_decay": 1.0},
                              "solve": {"t1": 40.0, "saves": 3, "rtol": 1e-10, "atol": 1e-12},
                              "grid": {"sigma2": [0.0, 0.5]}})
    out = ChunkRunner(cfg)(0)
    np.testing.assert_allclose(np.sort(out["final_spectrum"], axis=-1), np.tile([1.0, 2.0, 3.0, 4.0], (2, 1)),
                               rtol=1e-7)
    assert np.all(out["loss"] < 1e-12) and not np.any(out["collapsed"])


def test_gd_on_a_finite_dataset_is_first_order_in_the_learning_rate():
    """GD on 32 fixed inputs (their second moments and the views' noise: exact second-moment nodes) against the flow
    built from the same sample moments: the error at t = 4 halves with the learning rate (fitted orders within 0.05 of
    1, Euler's global order; measured 0.989 and 0.995, the next term being O(lr))."""
    from dynsim import compare

    net = _net()
    views = ViewData(data_cov=jnp.diag(jnp.array([2.0, 1.0, 0.5, 0.2])), noise_cov=0.3 * jnp.eye(4))
    args = (NetParams(), views.finite(jax.random.key(0), 32))
    y0 = net.initial_state(jnp.asarray(0.05 * np.random.default_rng(0).standard_normal((2, 4))), args=args)
    order = compare.gd_order(net, y0, args, 4.0, lrs=(0.02, 0.01, 0.005), reference="flow")
    assert np.all(np.abs(order["orders"] - 1.0) < 0.05), order


def test_compare_runs_barlow_twins_network_against_its_mode_theory():
    """`dynsim.compare` (and `dynsim compare --loss barlow_twins --predictor identity --target online
    --no-stop-gradient`): the network's flow from the aligned default start equals the per-mode theory the network
    maps to, to 1e-9 relative (measured 9e-13)."""
    from dynsim import compare

    net, y0, args = compare.default_setup(loss="barlow_twins", predictor="identity", target="online",
                                          stop_gradient=False)
    assert compare.agreement(net, y0, args, 3.0, method="flow").max_rel_error < 1e-9


def test_boundary_search_finds_where_weight_decay_removes_a_mode():
    """With weight decay eta the Barlow Twins mode ODE is s' = s (4 gamma (1 - gamma s^2) - eta), so mode j keeps
    s_j^2 = (1 - eta/(4 gamma_j))/gamma_j and dies for eta > 4 gamma_j (docs/theory/simon2023.md#closed-form).
    `dynsim boundary`'s bisection of "fewer than 4 modes survive" (gamma = 1, 1/2, 1/3, 1/4) finds 4 gamma_4 = 1:
    above it by at most the finite-time allowance (a mode at eta = 1 + delta decays at rate delta: with t1 = 2000 and
    the threshold 1e-6, delta <= ln(1e6 / s0^2) / (2 t1) < 0.005)."""
    from dynsim import sweeps

    res = sweeps.find_boundary({
        "model": {"kind": "ssl_modes", "loss": "barlow_twins", "predictor": "identity", "target": "online",
                  "stop_gradient": False, "n_modes": 4},
        "params": {"w0": 0.5, "data_decay": 1.0},
        "solve": {"t1": 2000.0, "saves": 2, "rtol": 1e-9, "atol": 1e-12},
        "metrics": {"collapse": "none"},
        "boundary": {"parameter": "eta", "bracket": [0.5, 1.5], "rtol": 1e-6, "criterion": "surviving_modes",
                     "level": 4}})
    s = res.summaries
    assert s["flag"][0] == sweeps.Flag.OK and not s["below"][0]
    assert 1.0 <= s["lower"][0] and s["upper"][0] <= 1.005


def test_kernel_modes_are_the_feature_space_modes_and_give_the_flow():
    """The kernel form (docs/theory/simon2023.md#kernel) against explicit features: for k(x, y) = (1 + x.y)^2, whose
    features phi(x) = (1, sqrt2 x, x x^T) are finite, `kernel_modes` of the 40 x 40 Gram matrix of 20 noisy pairs
    gives the non-zero eigenvalues of the feature-space Gamma = sym(Phi1^T Phi2)/N and, on new points, the same
    eigenfunctions (up to sign) to 1e-10; and the feature-space flow W' = -4 (W Gamma W^T - I) W Gamma, integrated here
    by scipy's DOP853 from an aligned start, embeds new points as `kernel_embedding` with the closed-form strengths, to
    1e-8 at t = 0.3 and t = 3."""
    from scipy.integrate import solve_ivp

    rng = np.random.default_rng(0)
    N, n, d = 20, 3, 3
    x = rng.standard_normal((N, n)) * np.array([1.5, 1.0, 0.6])
    x1, x2 = x + 0.3 * rng.standard_normal((N, n)), x + 0.3 * rng.standard_normal((N, n))
    X = np.concatenate([x1, x2])

    def phi(A):
        return np.concatenate([np.ones((len(A), 1)), np.sqrt(2) * A, np.einsum("bi,bj->bij", A, A).reshape(len(A), -1)],
                              axis=1)

    def kern(A, B):
        return (1.0 + A @ B.T) ** 2

    gamma, coeff = bt.kernel_modes(kern(X, X))
    G = 0.5 * (phi(x1).T @ phi(x2) + phi(x2).T @ phi(x1)) / N
    ge, gv = np.linalg.eigh(G)
    nz = np.abs(ge) > 1e-10 * np.max(np.abs(ge))
    ge, gv = ge[nz][::-1], gv[:, nz][:, ::-1]
    np.testing.assert_allclose(gamma, ge, rtol=1e-10, atol=1e-12)
    new = rng.standard_normal((6, n))
    np.testing.assert_allclose(np.abs(kern(new, X) @ coeff), np.abs(phi(new) @ gv), rtol=1e-10, atol=1e-10)

    s0 = np.array([0.05, 0.02, 0.08])
    W0 = s0[:, None] * gv[:, :d].T

    def rhs(t, w):
        W = w.reshape(W0.shape)
        return (-4.0 * (W @ G @ W.T - np.eye(d)) @ W @ G).ravel()

    sol = solve_ivp(rhs, (0.0, 3.0), W0.ravel(), method="DOP853", t_eval=[0.3, 3.0], rtol=1e-12, atol=1e-14)
    signs = np.sign(np.sum((kern(new, X) @ coeff[:, :d]) * (phi(new) @ gv[:, :d]), axis=0))
    for k, t in enumerate(sol.t):
        want = bt.kernel_embedding(kern(new, X), coeff * np.concatenate([signs, np.ones(len(gamma) - d)]),
                                   bt.singular_values(s0, gamma[:d], t))
        np.testing.assert_allclose(phi(new) @ sol.y[:, k].reshape(W0.shape).T, want, rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="2N"):
        bt.kernel_modes(np.eye(3))


def test_standardised_barlow_twins_gradient_and_its_aligned_drive():
    """`standardise=True` (docs/theory/simon2023.md#standardised): the network's batch gradient equals jax.grad of
    ||C - I||^2 (lambda_off = 0.005) on coordinates divided by their root mean square over the batch, written here
    from scratch, to 1e-12; on aligned states the per-mode drive is -d/ds sum_j (1 - C_jj)^2 with
    C_jj = s^2 l12 / sqrt((s^2 l11 + eps)(s^2 l22 + eps)), a closed form that vanishes as eps -> 0 (the loss is blind to
    each coordinate's scale), to 1e-12; its outputs may not be rotated (it is not rotation invariant)."""
    rng = np.random.default_rng(3)
    B, n1, d = 30, 5, 3
    x = rng.standard_normal((B, n1))
    X1, X2 = x + 0.4 * rng.standard_normal((B, n1)), x + 0.4 * rng.standard_normal((B, n1))
    W = 0.5 * rng.standard_normal((d, n1))
    loss = cp.BarlowTwins(off_diagonal=0.005, standardise=True, eps=1e-3)
    model = ds.Network(loss=loss, predictor=cp.Identity(), target=cp.Online(False))
    gW, _ = model.gradients(model.initial_state(jnp.asarray(W)), jnp.eye(d),
                            (jnp.asarray(X1), jnp.asarray(X2), jnp.full(B, 1.0 / B)))

    def sampled(Wv):
        Z1, Z2 = jnp.asarray(X1) @ Wv.T, jnp.asarray(X2) @ Wv.T
        Z1 = Z1 / jnp.sqrt(jnp.mean(Z1**2, axis=0) + 1e-3)
        Z2 = Z2 / jnp.sqrt(jnp.mean(Z2**2, axis=0) + 1e-3)
        C = (Z1.T @ Z2 + Z2.T @ Z1) / (2 * B)
        off = C - jnp.diag(jnp.diag(C))
        return jnp.sum((1 - jnp.diag(C)) ** 2) + 0.005 * jnp.sum(off**2)

    np.testing.assert_allclose(gW, jax.grad(sampled)(jnp.asarray(W)), rtol=1e-12, atol=1e-14)
    assert not loss.rotation_invariant and cp.BarlowTwins().rotation_invariant

    l11, l12, l22, eps = GAMMA[:4] + 0.3, GAMMA[:4], GAMMA[:4] + 0.5, 1e-3
    data = ds.ModeData(lambda_s=jnp.asarray(l11), lambda_d=jnp.asarray(l12), lambda_2=jnp.asarray(l22))
    modes = ds.Modes(loss=cp.BarlowTwins(standardise=True, eps=eps), predictor=cp.Identity(), target=cp.Online(False))
    s = np.array([0.05, 0.3, 1.0, 2.0])
    drive = np.asarray(modes(0.0, modes.initial_state(jnp.asarray(s), data=data), data).w)
    a, b = s**2 * l11 + eps, s**2 * l22 + eps
    C = s**2 * l12 / np.sqrt(a * b)
    dC = 2 * s * l12 / np.sqrt(a * b) - s**2 * l12 * (a * b) ** -1.5 * s * (l11 * b + l22 * a)
    np.testing.assert_allclose(drive, 2 * (1 - C) * dC, rtol=1e-12, atol=1e-15)
