"""Matrix-level Tian et al. (2021) flow against the paper's closed forms (oracles)."""

import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim.analytic import tian2021 as th

# reference solves: dynsim's rk45 loop lands its steps on the saves and compiles in a third of a diffrax
# solve's time (docs/performance.md#the-test-suite)
TIGHT = dict(method="rk45", rtol=1e-12, atol=1e-14)


def _spd(rng, n, scale=1.0):
    A = rng.standard_normal((n, n))
    return scale * (A @ A.T / n + 0.1 * np.eye(n))


def _orth(rng, n):
    return np.linalg.qr(rng.standard_normal((n, n)))[0]


def test_balancing_invariant_theorem1():
    """n1=7, n2=4, random SPD X, X', alpha_p=1.7, beta=0.3, eta=0.02, non-symmetric W_p."""
    rng = np.random.default_rng(0)
    data = ds.MomentData(X=_spd(rng, 7), Xp=_spd(rng, 7, 0.5))
    params = ds.TianParams(alpha_p=1.7, beta=0.3, eta=0.02)
    model = ds.TianMatrixFlow(target="ema")
    W0, Wp0 = 0.5 * rng.standard_normal((4, 7)), 0.5 * rng.standard_normal((4, 4))
    y0 = model.initial_state(W0, Wp0, W_a=0.3 * rng.standard_normal((4, 7)))
    sol = ds.solve(model, y0, (params, data), 10.0, saveat=21, **TIGHT)
    C0 = th.balancing_matrix(jnp.asarray(W0), jnp.asarray(Wp0), 1.7)
    resid = th.balancing_residual(sol.ys.W, sol.ys.W_p, sol.ts, C0, 1.7, 0.02)
    assert float(jnp.max(resid)) < 1e-10
    # the flow moved the weights well beyond the residual
    assert float(jnp.linalg.norm(sol.final.W - W0)) > 0.1


@pytest.mark.parametrize("target", ["ema", "online"])
@pytest.mark.parametrize("isotropic", [True, False])
def test_aligned_start_matches_mode_odes(target, isotropic):
    """App. D.4: from an aligned start the matrix eigenvalues follow the scalar
    per-mode system; with commuting non-isotropic X, X' each mode has its own lambda_s, lambda_d."""
    rng = np.random.default_rng(1)
    n1, n2 = 6, 4
    U, V = _orth(rng, n2), _orth(rng, n1)
    if isotropic:
        lam_d, lam_s = np.ones(n1), np.full(n1, 1.5)
    else:
        lam_d = rng.uniform(0.5, 2.0, n1)
        lam_s = lam_d + rng.uniform(0.1, 1.0, n1)
    data = ds.MomentData.commuting(V, lam_s, lam_d)
    params = ds.TianParams(alpha_p=1.3, beta=0.4, eta=0.01)
    w0, p0 = np.array([0.3, 0.6, 0.9, 1.2]), np.array([0.2, -0.1, 0.5, 0.05])
    wa0 = np.array([0.0, 0.1, 0.0, 0.2]) if target == "ema" else w0
    M = lambda d: (U * d) @ V[:, :n2].T  # noqa: E731  rows of W along eigenvectors of X
    mat = ds.TianMatrixFlow(target=target)
    ym = mat.initial_state(M(w0), (U * p0) @ U.T, W_a=M(wa0))
    modes = ds.TianModes(target=target)
    yv = modes.initial_state(w0, p0, wa0 if target == "ema" else None)
    dm = ds.ModeData(lambda_s=lam_s[:n2], lambda_d=lam_d[:n2])
    a = ds.solve(mat, ym, (params, data), 15.0, saveat=16, **TIGHT)
    b = ds.solve(modes, yv, (params, dm), 15.0, saveat=16, **TIGHT)
    # compare through rotation-invariant quantities: the mode values read in the known basis
    w_from_matrix = jnp.einsum("ia,tij,jb->tab", U, a.ys.W, V[:, :n2])
    np.testing.assert_allclose(jnp.diagonal(w_from_matrix, axis1=1, axis2=2), b.ys.w, atol=1e-10)
    np.testing.assert_allclose(np.sort(mat.spectrum(a.ys), -1), np.sort(b.ys.w**2, -1), atol=1e-10)
    np.testing.assert_allclose(np.sort(np.linalg.eigvalsh(a.ys.W_p), -1), np.sort(b.ys.w_p, -1), atol=1e-10)


def test_commutator_identity_theorem3():
    """Along Eqs. 7-8, dL/dt = -(KL + LK) exactly (also with lambda_d != 1)."""
    rng = np.random.default_rng(2)
    flow = ds.TianCorrelationFlow()
    for lam_s, lam_d in [(1.5, 1.0), (2.2, 0.7)]:
        params = ds.TianParams(alpha_p=1.4, eta=0.3, tau=0.8)
        data = ds.ModeData(lam_s, lam_d)
        F = _spd(rng, 5)
        A = rng.standard_normal((5, 5))
        Wp = (A + A.T) / 2
        d = flow(0.0, ds.CorrelationState(jnp.asarray(F), jnp.asarray(Wp)), (params, data))
        Ldot = th.commutator(d.F, Wp) + th.commutator(F, d.W_p)
        rate = th.commutator_rate(F, Wp, 0.8, 0.3, 1.4, lam_s, lam_d)
        assert float(jnp.max(jnp.abs(Ldot - rate))) < 1e-13 * float(jnp.max(jnp.abs(rate)))


def test_correlation_flow_is_the_matrix_flow_in_F():
    """Eqs. 7-8 equal dF/dt = dW W^T + W dW^T of the symmetric-predictor, fixed-tau matrix flow (X = I)."""
    rng = np.random.default_rng(3)
    params = ds.TianParams(alpha_p=1.4, eta=0.05, tau=0.6)
    mat = ds.TianMatrixFlow(target="fixed_tau", predictor="symmetric")
    W = rng.standard_normal((4, 6))
    A = rng.standard_normal((4, 4))
    y = mat.initial_state(W, (A + A.T) / 2, params=params)
    d = mat(0.0, y, (params, ds.MomentData.isotropic(6, 0.5)))
    c = ds.TianCorrelationFlow()(0.0, ds.CorrelationState(jnp.asarray(W @ W.T), y.W_p),
                                 (params, ds.ModeData.isotropic(0.5)))
    np.testing.assert_allclose(d.W @ W.T + W @ d.W.T, c.F, atol=1e-13)
    np.testing.assert_allclose(d.W_p, c.W_p, atol=1e-13)


@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_commutator_decay_bound_theorem3(eta):
    """n=5, alpha_p=1, sigma2=0.5, tau=1; with lambda_min(K) >= lambda0 > 0 along the
    trajectory, ||[F, W_p]||_F <= exp(-2 lambda0 t) ||[F(0), W_p(0)]||_F."""
    rng = np.random.default_rng(4)
    params = ds.TianParams(alpha_p=1.0, eta=eta, tau=1.0)
    data = ds.ModeData.isotropic(0.5)
    Q = _orth(rng, 5)
    F0 = (Q * rng.uniform(0.5, 1.5, 5)) @ Q.T
    A = 0.1 * rng.standard_normal((5, 5))
    Wp0 = np.eye(5) * (2 / 3) + (A + A.T) / 2
    ts = np.linspace(0, 20, 401)
    sol = ds.solve(ds.TianCorrelationFlow(), ds.CorrelationState(jnp.asarray(F0), jnp.asarray(Wp0)),
                   (params, data), 20.0, saveat=ts, **TIGHT)
    K = th.theorem3_K(sol.ys.F, sol.ys.W_p, 1.0, eta, 1.0, 1.5)
    lam0 = float(jnp.min(jnp.linalg.eigvalsh(K)))
    assert lam0 > 0
    L = jnp.linalg.norm(th.commutator(sol.ys.F, sol.ys.W_p), axis=(-2, -1))
    bound = np.exp(-2 * lam0 * ts) * float(L[0])
    assert np.all(np.asarray(L) <= bound * (1 + 1e-8) + 1e-14)
    assert float(L[-1]) < 1e-6 * float(L[0])


def test_commutator_transient_growth_when_K_indefinite():
    """W_p(0) ~ I/3, small F(0), eta = 0: lambda_min K(0) < 0 and ||L|| first grows."""
    rng = np.random.default_rng(5)
    params = ds.TianParams(alpha_p=1.0, eta=0.0, tau=1.0)
    Q = _orth(rng, 5)
    F0 = (Q * rng.uniform(0.01, 0.05, 5)) @ Q.T
    A = 0.05 * rng.standard_normal((5, 5))
    Wp0 = np.eye(5) / 3 + (A + A.T) / 2
    assert float(jnp.min(jnp.linalg.eigvalsh(th.theorem3_K(F0, Wp0, 1.0, 0.0, 1.0, 1.5)))) < 0
    sol = ds.solve(ds.TianCorrelationFlow(), ds.CorrelationState(jnp.asarray(F0), jnp.asarray(Wp0)),
                   (params, ds.ModeData.isotropic(0.5)), 60.0, saveat=601, **TIGHT)
    L = np.asarray(jnp.linalg.norm(th.commutator(sol.ys.F, sol.ys.W_p), axis=(-2, -1)))
    assert L.max() > 2 * L[0]
    assert L[-1] < L.max() / 100


def test_frozen_F_predictor_fixed_point():
    """alpha_p=1.5, sigma2=0.5, eta=0.05, tau=0.7, W frozen: Eq. 2 converges to
    tau F [(1+sigma2) F + (eta/alpha_p) I]^{-1}, symmetric even from an asymmetric start."""
    rng = np.random.default_rng(6)
    params = ds.TianParams(alpha_p=1.5, eta=0.05, tau=0.7)
    data = ds.MomentData.isotropic(6, 0.5)
    W = jnp.asarray(rng.standard_normal((4, 6)) / 2)
    flow = ds.TianMatrixFlow(target="fixed_tau")

    def frozen_W(t, Wp, args):  # only the predictor equation of the library's flow
        return flow(t, ds.MatrixState(W, Wp, args[0].tau * W), args).W_p

    sol = ds.solve(frozen_W, jnp.asarray(rng.standard_normal((4, 4))), (params, data), 400.0, **TIGHT)
    Wp = sol.final
    expected = th.predictor_fixed_point(W @ W.T, 0.7, 0.05, 1.5, 1.5)
    np.testing.assert_allclose(Wp, expected, atol=1e-9)
    assert float(jnp.max(jnp.abs(Wp - Wp.T))) < 1e-9


def test_no_predictor_collapse_exact():
    """No predictor, stop-gradient, isotropic: W(t) = exp(-(sigma2 + eta) t) W(0)."""
    rng = np.random.default_rng(7)
    model = ds.TianMatrixFlow(target="online", predictor="identity")
    W0 = rng.standard_normal((3, 5))
    ts = np.linspace(0, 8, 9)
    sol = ds.solve(model, model.initial_state(W0), (ds.TianParams(eta=0.05), ds.MomentData.isotropic(5, 0.3)),
                   8.0, saveat=ts, **TIGHT)
    np.testing.assert_allclose(sol.ys.W, th.no_predictor_solution(W0, ts, 0.3, 0.05), rtol=1e-10, atol=1e-14)


def test_no_stopgrad_collapse_theorem2():
    """Without stop-gradient ||W||_F is non-increasing and <= exp(-(sigma2 + eta) t) ||W(0)||_F."""
    rng = np.random.default_rng(8)
    model = ds.TianMatrixFlow(target="online", stop_gradient=False)
    W0, Wp0 = rng.standard_normal((3, 5)), rng.standard_normal((3, 3))
    ts = np.linspace(0, 10, 101)
    sol = ds.solve(model, model.initial_state(W0, Wp0), (ds.TianParams(alpha_p=1.0, eta=0.02),
                   ds.MomentData.isotropic(5, 0.3)), 10.0, saveat=ts, **TIGHT)
    norms = np.asarray(jnp.linalg.norm(sol.ys.W, axis=(-2, -1)))
    assert np.all(np.diff(norms) <= 1e-12)
    assert np.all(norms <= th.no_stopgrad_bound(norms[0], ts, 0.3, 0.02) * (1 + 1e-10))
    assert norms[-1] < 0.05 * norms[0]


def test_matrix_input_errors():
    model = ds.TianMatrixFlow()
    rng = np.random.default_rng(9)
    W, Wp = rng.standard_normal((3, 5)), rng.standard_normal((3, 3))
    y0 = model.initial_state(W, Wp)
    p = ds.TianParams()
    with pytest.raises(ValueError, match="symmetric"):
        ds.solve(model, y0, (p, ds.MomentData(X=rng.standard_normal((5, 5)), Xp=np.eye(5))), 1.0)
    with pytest.raises(ValueError, match="positive semi-definite"):
        ds.solve(model, y0, (p, ds.MomentData(X=np.diag([1.0, 1, 1, 1, -1]), Xp=np.eye(5))), 1.0)
    with pytest.raises(ValueError, match="shape"):
        ds.solve(model, y0, (p, ds.MomentData.isotropic(4, 0.1)), 1.0)
    with pytest.raises(ValueError, match="shape"):
        ds.solve(model, model.initial_state(W, rng.standard_normal((2, 2))), (p, ds.MomentData.isotropic(5)), 1.0)
    with pytest.raises(ValueError, match="finite"):
        ds.solve(model, y0, (p, ds.MomentData(X=np.full((5, 5), np.nan), Xp=np.eye(5))), 1.0)
    with pytest.raises(ValueError, match="symmetric start"):
        ds.solve(ds.TianMatrixFlow(predictor="symmetric"), y0, (p, ds.MomentData.isotropic(5)), 1.0)
    with pytest.raises(ValueError, match="W_p is required"):
        model.initial_state(W)
    with pytest.raises(ValueError, match="unknown predictor"):
        ds.TianMatrixFlow(predictor="mlp")
