"""Grassmannian SSL dynamics (Esser et al. 2023): closed forms vs ODE solves, RGD orders, collapse, kernels.

Tolerances are float64 (conftest). Its closed-form checks name the result they test.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm

from dynsim import grassmann as gr
from dynsim import solve
from dynsim.grassmann import _kernel as kernel
from dynsim.grassmann import _subspace as subspace

D, H = 30, 4


@pytest.fixture(scope="module")
def problem():
    """Esser et al. 2023: d = 30, n = 2000, h = 4, contrastive A = 2 sym(C), W0 = qf(N(0,1)), seed 0."""
    from dynsim.grassmann._agreement import protocol_problem

    return protocol_problem("contrastive", d=D, h=H, n=2000, seed=0)


def oja_ode(A, W0, ts):
    return solve(gr.OjaFlow(), jnp.asarray(W0), jnp.asarray(A), float(ts[-1]), saveat=np.asarray(ts),
                 rtol=1e-12, atol=1e-14).ys


def test_protocol_spectrum_is_two_over_one_plus_i(problem):
    """The dynamics matrix of the protocol in population is A = 2 Sigma with Sigma's spectrum 1/(1+i), so its top
    eigenvalues are 2/(1+i) (docs/theory/esser2023.md#protocol); a sample of n = 2000 gives them to sampling error
    (0.1)."""
    A, _ = problem
    lam = np.sort(np.linalg.eigvalsh(A))[::-1]
    np.testing.assert_allclose(lam[:5], 2.0 / (1.0 + np.arange(5)), atol=0.1)
    assert lam[-1] > 0 and lam[3] - lam[4] > 0.05


def test_projector_closed_form_matches_oja_and_riccati_odes(problem):
    """||P_ode(t) - P_closed(t)||_F < 1e-9 for t <= 6, for Oja's flow and the width-free Riccati flow."""
    A, W0 = problem
    ts = np.array([0.0, 0.5, 2.0, 6.0])
    P = np.asarray(gr.projector(A, W0, ts))
    Wode = np.asarray(oja_ode(A, W0, ts))
    assert np.max(gr.projection_distance(Wode @ np.swapaxes(Wode, -1, -2), P)) < 1e-9
    Pode = solve(gr.RiccatiFlow(), jnp.asarray(W0 @ W0.T), jnp.asarray(A), 6.0, saveat=ts, rtol=1e-12, atol=1e-14).ys
    assert np.max(gr.projection_distance(np.asarray(Pode), P)) < 1e-9
    np.testing.assert_allclose(P[-1], P[-1] @ P[-1], atol=1e-13)  # a projector
    assert abs(np.trace(P[-1]) - H) < 1e-12


def test_principal_tangents_are_the_singular_values_of_G(problem):
    """Singular values of G(t) = tangents of the measured principal angles (1e-8 relative), and the
    bound ||tan Θ(t)||_2 <= exp(-t(λ_h - λ_{h+1})) ||tan Θ(0)||_2."""
    A, W0 = problem
    ts = np.array([0.0, 2.0, 6.0])
    lam, U = np.linalg.eigh(A)
    U1 = U[:, ::-1][:, :H]
    lam = lam[::-1]
    Wode = np.asarray(oja_ode(A, W0, ts))
    measured = np.tan(np.asarray(gr.principal_angles(Wode, np.broadcast_to(U1, (3, D, H)))))[:, ::-1]
    theory = np.asarray(gr.principal_tangents(A, W0, ts))
    np.testing.assert_allclose(measured, theory, rtol=1e-8)
    assert np.all(theory[:, 0] <= np.exp(-ts * (lam[H - 1] - lam[H])) * theory[0, 0] * (1 + 1e-12))


def test_principal_angles_accurate_for_tiny_and_right_angles():
    rng = np.random.default_rng(1)
    Q = np.linalg.qr(rng.standard_normal((6, 6)))[0]
    for theta in (1e-9, 0.3, np.pi / 2):
        W = (np.cos(theta) * Q[:, :1] + np.sin(theta) * Q[:, 1:2])
        got = float(gr.principal_angles(jnp.asarray(W), jnp.asarray(Q[:, :1]))[0])
        assert abs(got - theta) < 1e-15 + 1e-12 * theta


def test_principal_angles_of_any_basis_of_the_spans():
    """Bases need not be orthonormal: the angles are those of the spans, as scipy.linalg.subspace_angles computes
    them (an independent implementation; 1e-12); linearly dependent columns are refused by name."""
    from scipy.linalg import subspace_angles

    rng = np.random.default_rng(4)
    W, U = rng.standard_normal((7, 3)) @ rng.standard_normal((3, 3)), rng.standard_normal((7, 3)) * [1.0, 20.0, 0.05]
    got = np.asarray(gr.principal_angles(jnp.asarray(W), jnp.asarray(U)))
    np.testing.assert_allclose(got, np.sort(subspace_angles(W, U)), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="columns of U are linearly dependent"):
        gr.principal_angles(jnp.asarray(W), jnp.asarray(np.c_[U[:, :2], U[:, 0] + U[:, 1]]))
    traced = jax.jit(gr.principal_angles)(jnp.asarray(W), jnp.asarray(np.c_[U[:, :2], 2 * U[:, 1]]))
    assert bool(jnp.all(jnp.isnan(traced)))


@pytest.mark.parametrize("method", gr.RETRACTIONS)
def test_rgd_is_first_order_for_every_retraction(problem, method):
    """e(η)/e(η/2) in [1.8, 2.2] for η <= 0.1 (error ||P_k - P(T)||_F at T = 6); the constant is
    about 0.1 η on this draw."""
    A, W0 = problem
    P6 = np.asarray(gr.projector(A, W0, [6.0])[0])
    lrs = (0.1, 0.05, 0.025)
    errs = []
    for lr in lrs:
        W = np.asarray(gr.riemannian_gd(A, W0, lr, int(round(6 / lr)), method=method).final)
        errs.append(float(gr.projection_distance(W @ W.T, P6)))
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    assert np.all((ratios > 1.8) & (ratios < 2.2)), ratios
    assert 0.05 < errs[-1] / lrs[-1] < 0.2


def test_subspace_iteration_first_order_but_larger_and_exact_integrator_exact(problem):
    """Subspace iteration qf((I + ηA)W) is first order with ~5x the RGD error; the
    qf(e^{ηA}W) integrator matches the closed form to 1e-10 at any η."""
    A, W0 = problem
    P6 = np.asarray(gr.projector(A, W0, [6.0])[0])

    def err(method, lr):
        W = np.asarray(gr.riemannian_gd(A, W0, lr, int(round(6 / lr)), method=method).final)
        return float(gr.projection_distance(W @ W.T, P6))

    e_si = [err("subspace_iteration", lr) for lr in (0.1, 0.05)]
    assert 1.8 < e_si[0] / e_si[1] < 2.2
    assert 3.0 < e_si[1] / err("qr", 0.05) < 7.0
    for lr in (1.0, 0.2, 0.0125):
        assert err("exact", lr) < 1e-10


def test_riemannian_gd_in_eigenbasis_equals_the_input_basis_update(problem):
    """The library steps in A's eigenbasis; a plain numpy QR-RGD in the input basis must agree to round-off."""
    A, W0 = problem
    lr, n = 0.05, 100
    W = W0.copy()
    for _ in range(n):
        AW = A @ W
        Q, R = np.linalg.qr(W + lr * (AW - W @ (W.T @ AW)))
        W = Q * np.sign(np.diag(R))
    for method in ("qr", "polar", "exp"):
        Wj = np.asarray(gr.riemannian_gd(A, W0, lr, n, method=method).final)
        if method == "qr":
            np.testing.assert_allclose(Wj, W, atol=1e-12)  # same basis, not just the same span
        assert float(gr.projection_distance(Wj @ Wj.T, W @ W.T)) < 1e-3 * lr  # second-order close per step


@pytest.mark.parametrize("method", gr.METHODS)
def test_orthonormality_is_kept_to_machine_precision(problem, method):
    A, W0 = problem
    sol = gr.riemannian_gd(A, W0, 0.05, 2000, method=method, n_saves=4)
    assert float(jnp.max(gr.orthonormality_error(sol.ys))) < 5e-15


def test_retractions_are_first_order_maps(problem):
    """R_W(0) = W and DR_W(0) = id: ||R_W(sV) - W - sV|| = O(s^2) (ratio 4 per halving), for a tangent V."""
    A, W0 = problem
    V = np.asarray(gr.riemannian.descent_direction(jnp.asarray(W0), jnp.asarray(A)))
    for retract in (gr.riemannian.qr_retraction, gr.riemannian.polar_retraction, gr.riemannian.exp_retraction):
        np.testing.assert_allclose(retract(jnp.asarray(W0), 0 * V), W0, atol=1e-15)
        e = [float(jnp.max(jnp.abs(retract(jnp.asarray(W0), s * V) - W0 - s * V))) for s in (0.02, 0.01, 0.005)]
        assert 3.6 < e[0] / e[1] < 4.4 and 3.6 < e[1] / e[2] < 4.4, (retract.__name__, e)


def test_long_time_closed_form_is_stable_where_normal_equations_fail(problem):
    """t(λ1 - λh) >= 40: the eigenbasis closed form equals the exact integrator (1e-10); the normal
    equations of e^{tA}W0 lose the subspace at t = 40."""
    A, W0 = problem
    lam = np.sort(np.linalg.eigvalsh(A))[::-1]
    for t in (40.0, 80.0):
        assert t * (lam[0] - lam[H - 1]) >= 40
        P = np.asarray(gr.projector(A, W0, [t])[0])
        W = np.asarray(gr.riemannian_gd(A, W0, t / 40, 40, method="exact").final)
        assert float(gr.projection_distance(P, W @ W.T)) < 1e-10
    naive = np.asarray(subspace.projector_naive(A, W0, [80.0])[0])
    assert float(gr.projection_distance(P, naive)) > 0.5 or not np.all(np.isfinite(naive))


@pytest.mark.parametrize("loss", ["contrastive", "mse"])
def test_convergence_to_top_of_C_or_bottom_of_D(loss):
    """Contrastive: top-h eigenspace of C; MSE (A = -2D, anisotropic augmentation noise): bottom-h of D.
    Checked for the closed form at long time and for QR-RGD (distance < 1e-8)."""
    rng = np.random.default_rng(3)
    d, h = 12, 3
    noise_cov = np.diag(np.linspace(0.05, 1.0, d))
    X, Xp, Xn, _ = gr.protocol_data(1, d=d, n=4000, noise_cov=noise_cov)
    A = np.asarray(gr.dynamics_matrix(loss, X, Xp, Xn))
    if loss == "contrastive":
        C = 0.5 * ((X @ Xp.T - X @ Xn.T) + (X @ Xp.T - X @ Xn.T).T) / X.shape[1]
        target = np.linalg.eigh(C)[1][:, ::-1][:, :h]
    else:
        Dm = (X - Xp) @ (X - Xp).T / X.shape[1]
        target = np.linalg.eigh(Dm)[1][:, :h]
    lam = np.sort(np.linalg.eigvalsh(A))[::-1]
    t = 60.0 / (lam[h - 1] - lam[h])
    W0 = np.asarray(gr.qf(jnp.asarray(rng.standard_normal((d, h)))))
    P = np.asarray(gr.projector(A, W0, [t])[0])
    assert float(gr.projection_distance(P, target @ target.T)) < 1e-8
    lr = 0.5 / (lam[0] - lam[-1])
    W = np.asarray(gr.riemannian_gd(A, W0, lr, int(np.ceil(t / lr))).final)
    assert float(gr.projection_distance(W @ W.T, target @ target.T)) < 1e-8
    np.testing.assert_allclose(float(subspace.loss(A, W0, [t])[0]), -0.5 * lam[:h].sum(), rtol=1e-10)


def test_naive_flow_collapses_at_the_predicted_rate(problem):
    """Stable rank -> 1, d/dt log(σ2/σ1) -> -(λ1 - λ2); the exact solution equals an ODE solve of
    dW/dt = (A - γI)W and of the Frobenius-sphere flow (1e-9)."""
    A, W0 = problem
    lam = np.sort(np.linalg.eigvalsh(A))[::-1]
    ts = np.array([0.0, 5.0, 12.0, 13.0])  # σ2/σ1 ~ 1e-6 at t = 12: well above the SVD's round-off
    diag = gr.collapse_diagnostics(gr.naive_solution(A, W0, ts, sphere=True))
    assert float(diag["stable_rank"][0]) > 2 and abs(float(diag["stable_rank"][-1]) - 1) < 1e-9
    slope = np.log(float(diag["sigma_ratio"][3]) / float(diag["sigma_ratio"][2]))
    np.testing.assert_allclose(slope, -(lam[0] - lam[1]), rtol=1e-3)
    for sphere, gamma in ((False, 0.0), (False, 0.3), (True, 0.0)):
        W_0 = W0 / np.linalg.norm(W0) if sphere else W0
        exact = np.asarray(gr.naive_solution(A, W_0, ts[:2], weight_decay=gamma, sphere=sphere))
        ode = solve(gr.NaiveFlow(sphere=sphere), jnp.asarray(W_0), (jnp.asarray(A), gamma), 5.0, saveat=ts[:2],
                    rtol=1e-12, atol=1e-14).ys
        np.testing.assert_allclose(np.asarray(ode), exact, rtol=1e-9, atol=1e-12)
    # weight decay rescales, it does not stop the collapse of the direction
    d_wd = gr.collapse_diagnostics(gr.naive_solution(A, W0, [12.0], weight_decay=0.5))
    np.testing.assert_allclose(d_wd["sigma_ratio"], diag["sigma_ratio"][2:3], rtol=1e-9)


def test_stiefel_and_grassmann_gradients_agree_for_trace_losses(problem):
    """The two forms agree (difference ~1e-16), and jax.grad of trace_loss is -AW (the A = 2M convention)."""
    A, W0 = problem
    W, A = jnp.asarray(W0), jnp.asarray(A)
    G = jax.grad(lambda w: gr.trace_loss(w, A))(W)
    np.testing.assert_allclose(G, -A @ W, atol=1e-14)
    diff = gr.riemannian.stiefel_gradient(W, G) - gr.riemannian.grassmann_gradient(W, G)
    assert float(jnp.max(jnp.abs(diff))) < 1e-14
    Gn = G + W @ jnp.asarray(np.triu(np.ones((H, H)), 1))  # W^T Gn not symmetric: they must differ
    diff = gr.riemannian.stiefel_gradient(W, Gn) - gr.riemannian.grassmann_gradient(W, Gn)
    assert float(jnp.max(jnp.abs(diff))) > 0.1


def test_kernel_gram_formula_matches_direct_computation():
    """Φ^T P(t) Φ by the kernel formula (psi via the block expm) = the reduced stable form = the
    direct m x m projector (1e-9); Φ Mp Φ^T is dynamics_matrix of the features for every loss."""
    rng = np.random.default_rng(4)
    n, m, h = 5, 60, 2
    Xs = [rng.standard_normal((3, n)) for _ in range(3)]
    Phi = np.asarray(kernel.random_features(0, np.concatenate(Xs, axis=1), m, "relu"))
    for loss, k in (("contrastive", 3), ("alignment", 2), ("mse", 2)):
        Mp = np.asarray(gr.pairing_matrix(loss, n))
        F = [Phi[:, i * n:(i + 1) * n] for i in range(k)]
        A = np.asarray(gr.dynamics_matrix(loss, *F))
        np.testing.assert_allclose(Phi[:, :k * n] @ Mp @ Phi[:, :k * n].T, A, atol=1e-13)
    Mp = np.asarray(gr.pairing_matrix("contrastive", n))
    W0 = np.asarray(gr.random_stiefel(1, m, h))
    ts = np.array([0.0, 0.7, 3.0])
    direct = Phi.T @ np.asarray(gr.projector(Phi @ Mp @ Phi.T, W0, ts)) @ Phi
    np.testing.assert_allclose(np.asarray(gr.gram_closed_form(Phi, Mp, W0, ts)), direct, atol=1e-9)
    np.testing.assert_allclose(np.asarray(gr.gram(Phi, Mp, W0, ts)), direct, atol=1e-10)
    Z = rng.standard_normal((4, 4))
    Z[:, 0] = 0  # singular Z is allowed
    series = sum(0.8 ** j * np.linalg.matrix_power(Z, j - 1) / np.prod(np.arange(1, j + 1)) for j in range(1, 30))
    np.testing.assert_allclose(np.asarray(kernel.psi(jnp.asarray(Z), 0.8)), series, atol=1e-13)


def test_tangent_kernel_drift_is_order_one_at_every_width():
    """||K_t - K_0|| / ||K_0|| reaches the same O(1) level for every width m (it does not vanish as m grows,
    unlike a supervised NTK); wider models take longer to get there (lazy start of order log m)."""
    rng = np.random.default_rng(5)
    n, d = 6, 4
    X = rng.standard_normal((d, n))
    Xp = X + 0.3 * rng.standard_normal((d, n))
    ts = np.array([0.5, 200.0])
    drift = gr.drift_vs_width((X, Xp), "alignment", [16, 256, 4096], ts, h=2, seeds=(0, 1))
    late = drift[:, :, -1]
    assert np.all(late > 0.2)
    assert np.max(late.mean(1)) / np.min(late.mean(1)) < 1.5
    assert drift[-1, :, 0].mean() < drift[0, :, 0].mean()


def test_oja_h1_equals_normalised_exponential_and_lift_equals_the_stiefel_path(problem):
    """For h = 1 the Oja flow is e^{tA}w0/||e^{tA}w0|| at the level of w; for h = 4 the lift
    (closed-form span + h x h ODE) equals the ODE solution W(t) itself, not just its span (1e-8)."""
    A, W0 = problem
    ts = np.array([0.0, 1.0, 6.0])
    w0 = W0[:, :1]
    w = np.asarray(oja_ode(A, w0, ts))
    ref = np.stack([expm(t * A) @ w0 / np.linalg.norm(expm(t * A) @ w0) for t in ts])
    np.testing.assert_allclose(w, ref, atol=1e-10)
    np.testing.assert_allclose(np.asarray(gr.lift(A, w0, ts)), ref, atol=1e-9)
    np.testing.assert_allclose(np.asarray(gr.lift(A, W0, ts)), np.asarray(oja_ode(A, W0, ts)), atol=1e-8)


def test_batched_seeds_equal_single_runs_and_widths(problem):
    A, _ = problem
    W0s = gr.random_stiefel(7, D, H, batch=3)
    batch = gr.riemannian_gd(A, W0s, 0.1, 20, n_saves=2)
    assert batch.ys.shape == (3, 3, D, H) and batch.ts.shape == (3, 3)
    for i in range(3):
        single = gr.riemannian_gd(A, W0s[i], 0.1, 20, n_saves=2)
        np.testing.assert_allclose(batch.ys[i], single.ys, atol=1e-14)
    runs = gr.riemannian_gd_widths(A, [1, 3], seeds=[0, 1], lr=0.1, n_steps=10)
    assert runs[1].ys.shape == (2, 2, D, 1) and runs[3].ys.shape == (2, 2, D, 3)


def test_float32_path_runs(problem):
    A, W0 = problem
    sol = gr.riemannian_gd(jnp.asarray(A, jnp.float32), jnp.asarray(W0, jnp.float32), 0.05, 200)
    assert sol.ys.dtype == jnp.float32
    assert float(jnp.max(gr.orthonormality_error(sol.ys))) < 1e-5
    P32 = gr.projector(jnp.asarray(A, jnp.float32), jnp.asarray(W0, jnp.float32), [50.0])
    assert np.all(np.isfinite(np.asarray(P32)))


def test_bad_input_gets_clear_errors(problem):
    A, W0 = problem
    with pytest.raises(ValueError, match="1 <= h <= d"):
        gr.riemannian_gd(A[:3, :3], np.eye(3, 4), 0.1, 10)
    with pytest.raises(ValueError, match="orthonormal"):
        gr.riemannian_gd(A, 2 * W0, 0.1, 10)
    with pytest.raises(ValueError, match="symmetric"):
        gr.projector(A + np.triu(np.ones_like(A), 1), W0, [1.0])
    with pytest.raises(ValueError, match="unknown method"):
        gr.riemannian_gd(A, W0, 0.1, 10, method="cayley")
    with pytest.raises(ValueError, match="lr must be > 0"):
        gr.riemannian_gd(A, W0, -0.1, 10)
    with pytest.raises(ValueError, match="t >= 0"):
        gr.projector(A, W0, [-1.0])
    U = np.linalg.eigh(A)[1][:, ::-1]
    with pytest.raises(ValueError, match="singular"):
        gr.projector(A, U[:, [0, 1, 2, H]], [1.0])  # orthogonal to the 4th eigenvector
    with pytest.raises(ValueError, match="negatives"):
        gr.dynamics_matrix("contrastive", np.ones((3, 5)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="unknown loss"):
        gr.dynamics_matrix("barlow", np.ones((3, 5)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="projector"):
        solve(gr.RiccatiFlow(), jnp.asarray(2 * W0 @ W0.T), jnp.asarray(A), 1.0)


def test_population_matrix_is_the_large_sample_limit():
    """Sample A from 200 000 draws of the additive model is within 0.02 of the population A (all losses)."""
    d = 5
    Sigma = np.diag(1.0 / (1.0 + np.arange(d)))
    noise = np.diag(np.linspace(0.1, 0.5, d))
    X, Xp, Xn, Sig = gr.protocol_data(2, d=d, n=200_000, noise_cov=noise)
    mom = gr.additive_augmentation_moments(Sig, noise)
    for loss in gr.trace_losses.LOSSES:
        pop = np.asarray(gr.population_dynamics_matrix(loss, **mom))
        np.testing.assert_allclose(np.asarray(gr.dynamics_matrix(loss, X, Xp, Xn)), pop, atol=0.02)
    assert np.allclose(np.linalg.eigvalsh(Sig), np.sort(np.diag(Sigma)))


@pytest.mark.slow  # ~30 s; its claims (collapse rate, RGD vs flow, drift) are tested above at lower cost
def test_figure_data_match_theory(tmp_path):
    """`dynsim figures esser2023_grassmann --fast`: files written, and the stored data obey the theory."""
    from dynsim import cli

    assert cli.main(["figures", "esser2023_grassmann", "--fast", "--out", str(tmp_path)]) == 0
    for ext in ("png", "pdf", "npz"):
        assert (tmp_path / f"esser2023_grassmann.{ext}").stat().st_size > 1000
    d = np.load(tmp_path / "esser2023_grassmann.npz")
    lam, t = d["lam"], d["t_naive"]
    ratio = d["singular_values"][:, 1] / d["singular_values"][:, 0]
    np.testing.assert_allclose(np.log(ratio[-1] / ratio[-2]) / (t[-1] - t[-2]), -(lam[0] - lam[1]), rtol=1e-3)
    assert abs(d["stable_rank"][-1] - 1) < 1e-6 and d["stable_rank"][0] > 2
    step = (len(d["t_theory"]) - 1) // (len(d["t_rgd"]) - 1)
    np.testing.assert_allclose(d["t_theory"][::step], d["t_rgd"], atol=1e-12)
    assert np.max(np.abs(d["angles_rgd"] - d["angles_theory"][::step])) < 0.02  # O(η) with η = 0.1
    methods = list(d["methods"])
    for m in ("qr", "polar", "exp", "subspace_iteration"):
        assert np.all(np.abs(d["orders"][methods.index(m)] - 1) < 0.2)
    assert np.all(d["final_error"][methods.index("exact")] < 1e-10)
    assert np.all(d["drift"][:, -1] > 0.2)


def test_compare_command_grassmann(tmp_path, capsys):
    from dynsim import cli

    rc = cli.main(["compare", "--model", "grassmann", "--d", "10", "--h", "2", "--n", "400", "--t1", "1.2",
                   "--lrs", "0.1,0.05", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "fitted orders" in out
    d = np.load(tmp_path / "compare.npz")
    methods = list(d["methods"])
    assert abs(d["orders"][methods.index("qr")][0] - 1) < 0.2
    assert d["final"][methods.index("exact")].max() < 1e-10
    assert cli.main(["compare", "--model", "grassmann", "--loss", "cosine"]) == 2
    assert cli.main(["compare", "--model", "grassmann", "--h", "40"]) == 2
