"""The exact Gaussian expectation of the cosine loss at eigenmode level (``docs/theory/cosine_expectation.md``).

Oracles, each independent of the code under test:

* the definition: Monte Carlo of :math:`E[\\cos(p, z)]` from sampled views (within 4 standard errors);
* the same two-radius integral by scipy's adaptive Gauss–Kronrod quadrature (``quad_vec``), to 1e-10;
* the drives from a second derivation: the gradient's expectation written with the tilted Gaussian's moments
  (Isserlis' theorem for the fourth moment; below), not by differentiating the expected loss, integrated
  adaptively by scipy; to 1e-10 relative;
* the fixed-node expectation at :math:`2^{16}` nodes, within 5 of its standard errors;
* the dynamics: :math:`\\mathrm{tr}\\,C` conserved and an isotropic end state at the conserved level (Halvagal
  et al. 2023), to 1e-9.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

import dynsim as ds
from dynsim import components as cp


def _blocks(M, seed, rho=0.9):
    """Random per-mode amplitudes and view covariances (correlations up to ``rho``)."""
    rng = np.random.default_rng(seed)
    q, wb = rng.uniform(0.2, 1.5, M), rng.uniform(0.2, 1.5, M)
    l11, l22 = rng.uniform(0.5, 2.0, M), rng.uniform(0.5, 2.0, M)
    l12 = rng.uniform(-rho, rho, M) * np.sqrt(l11 * l22)
    return q, wb, l11, l12, l22


def _exact(q, wb, l11, l12, l22, expectation=cp.GaussianExact()):
    sigma, weights = expectation.rule(jnp.float64)
    return float(cp.mode_cosine_expectation(jnp.asarray(q), jnp.asarray(wb), l11, l12, l22, sigma, weights))


def _tilted(s, t, q, wb, l11, l12, l22):
    """Per-mode tilted moments of (p_m, z_m) under exp(-s|p|^2 - t|z|^2) and the normaliser (prod det^-1/2):
    the tilted covariance is (C^-1 + 2 diag(s, t))^-1 = [[a + 2t D, b], [b, d + 2s D]] / det, D = ad - b^2."""
    a, b, d = q * q * l11, q * wb * l12, wb * wb * l22
    D = a * d - b * b
    det = 1 + 2 * a * s + 2 * d * t + 4 * s * t * D
    return np.prod(det ** -0.5), (a + 2 * t * D) / det, b / det, (d + 2 * s * D) / det


def _adaptive(f):
    """int_0^inf int_0^inf f(x, y) dx dy by nested adaptive Gauss-Kronrod (vector valued)."""
    inner = lambda x: integrate.quad_vec(lambda y: f(x, y), 0, np.inf, epsabs=0, epsrel=1e-13)[0]
    return integrate.quad_vec(inner, 0, np.inf, epsabs=0, epsrel=1e-13)[0]


def _reference_gradients(q, wb, l11, l12, l22):
    r"""``(E[dcos/dp_m u1_m], E[dcos/dz_m u2_m])`` from the tilted moments. With
    :math:`\|y\|^{-k} = \Gamma(k/2)^{-1}\int_0^\infty s^{k/2-1}e^{-s\|y\|^2}ds`,
    :math:`q_m E[\partial\cos/\partial p_m\,u_{1,m}] = E[p_mz_m/(\|p\|\|z\|)] - E[(p\cdot z)p_m^2/(\|p\|^3\|z\|)]`
    and :math:`E[(p\cdot z)p_m^2] = (\sum_j\tilde b_j)\tilde a_m + 2\tilde b_m\tilde a_m` under the tilt
    (Isserlis; modes independent); likewise for :math:`z`. Substituting :math:`s = x^2`, :math:`t = y^2`."""
    def f(x, y):
        s, t = x * x, y * y
        F, pa, pb, pd = _tilted(s, t, q, wb, l11, l12, l22)
        cross = 4 / np.pi * F * pb                                   # E[p_m z_m / (|p||z|)]
        p_term = 8 / np.pi * s * F * (np.sum(pb) * pa + 2 * pb * pa)  # E[(p.z) p_m^2 / (|p|^3 |z|)]
        z_term = 8 / np.pi * t * F * (np.sum(pb) * pd + 2 * pb * pd)  # E[(p.z) z_m^2 / (|p| |z|^3)]
        return np.concatenate([cross, p_term, z_term])

    M = len(q)
    cross, p_term, z_term = np.split(_adaptive(f), [M, 2 * M])
    return (cross - p_term) / q, (cross - z_term) / wb


def test_rule_defaults_and_validation():
    ex = cp.GaussianExact()
    assert ex.settings(jnp.float64) == (38, pytest.approx(0.1)) and ex.settings(jnp.float32) == (12, 0.25)
    sigma, w = ex.rule(jnp.float32)
    assert bool(jnp.all(jnp.isfinite(sigma * sigma))) and bool(jnp.all(jnp.isfinite(w)))
    # an integrand of the two-radius kind (algebraic decay): int sigma^-1/2 (1 + sigma)^-3/2 = B(1/2, 1) = 2
    sigma, w = ex.rule(jnp.float64)
    assert float(jnp.sum(w * (1 + sigma) ** -1.5)) == pytest.approx(2.0, rel=1e-13)
    with pytest.raises(ValueError, match="n_half must be an even integer"):
        cp.GaussianExact(n_half=7)
    with pytest.raises(ValueError, match="reach"):
        cp.GaussianExact(reach=9.0)


@pytest.mark.parametrize("M", [3, 10])
def test_expected_cosine_matches_monte_carlo(M):
    """The two-radius formula against its definition: 4 standard errors of 10^6 sampled view pairs."""
    q, wb, l11, l12, l22 = _blocks(M, seed=M)
    rng = np.random.default_rng(100 + M)
    n = 1_000_000
    u1 = rng.standard_normal((n, M)) * np.sqrt(l11)
    u2 = (l12 / l11) * u1 + rng.standard_normal((n, M)) * np.sqrt(l22 - l12**2 / l11)
    p, z = q * u1, wb * u2
    c = np.sum(p * z, 1) / np.linalg.norm(p, axis=1) / np.linalg.norm(z, axis=1)
    assert abs(_exact(q, wb, l11, l12, l22) - c.mean()) < 4 * c.std() / np.sqrt(n)


@pytest.mark.parametrize("M", [3, 10, 32])
def test_expected_cosine_matches_adaptive_quadrature(M):
    q, wb, l11, l12, l22 = _blocks(M, seed=M)

    def f(x, y):
        F, _, pb, _ = _tilted(x * x, y * y, q, wb, l11, l12, l22)
        return np.array([4 / np.pi * F * np.sum(pb)])

    ref = float(_adaptive(f)[0])
    assert _exact(q, wb, l11, l12, l22) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("M", [3, 10, 32])
@pytest.mark.parametrize("case", ["power", "ema", "iso", "no_stop_gradient"])
def test_drives_match_the_tilted_moment_derivation(M, case):
    """Online and predictor drives of the cosine loss (and IsoLoss, an EMA target, no stop-gradient) against
    :func:`_reference_gradients`, to 1e-10 of the largest drive."""
    rng = np.random.default_rng(7 * M)
    w, lam = rng.uniform(0.3, 1.4, M), rng.uniform(0.4, 1.6, M)
    w_bar = w if case == "no_stop_gradient" else (0.8 * w + 0.1 if case == "ema" else w)
    ls, ld = 1.0 + rng.uniform(0.05, 0.5), 1.0
    data = ds.ModeData(lambda_s=ls, lambda_d=ld)
    loss = cp.Cosine(iso=case == "iso")
    drive, pred = loss.mode_drives(jnp.asarray(w), jnp.asarray(w_bar), jnp.asarray(lam), data,
                                   case != "no_stop_gradient", cp.GaussianExact())
    g_q, g_z = _reference_gradients(lam * w, w_bar, np.full(M, ls), np.full(M, ld), np.full(M, ls))
    want = (g_q if case == "iso" else lam * g_q) + (g_z if case == "no_stop_gradient" else 0.0)
    np.testing.assert_allclose(np.asarray(drive), want, rtol=0, atol=1e-10 * np.abs(want).max())
    np.testing.assert_allclose(np.asarray(pred), w * g_q, rtol=0, atol=1e-10 * np.abs(w * g_q).max())


def test_drives_agree_with_many_fixed_nodes():
    """The node expectation converges to the exact one: 2^16 Sobol nodes within 5 of their standard errors."""
    M = 6
    rng = np.random.default_rng(3)
    w, lam = jnp.asarray(rng.uniform(0.3, 1.4, M)), jnp.asarray(rng.uniform(0.4, 1.6, M))
    data = ds.ModeData(lambda_s=1.1, lambda_d=1.0)
    exact, _ = cp.Cosine().mode_drives(w, w, lam, data, True, cp.GaussianExact())
    nodes = cp.GaussianNodes(n_nodes=2**16, seed=1)
    terms, _ = cp.Cosine().node_terms(w, w, lam, data, True, nodes)
    blocks = np.asarray(terms).reshape(16, -1, M).mean(axis=1)
    se = blocks.std(axis=0, ddof=1) / 4
    assert np.all(np.abs(np.asarray(exact) - blocks.mean(axis=0)) < 5 * se)


def test_cosine_end_state_is_isotropic_at_the_conserved_level():
    """SimSiam cosine with W_p = WW^T (Halvagal et al. 2023): tr C is conserved and the fixed point is
    isotropic, c_m -> tr C(0) / M; with the exact expectation both hold to 1e-9 (relative), and the result has no
    node seed to depend on."""
    c0 = jnp.asarray([0.4, 0.7, 1.0, 1.3, 1.6])
    m = ds.SSLModes(loss="cosine")
    assert isinstance(m.family().resolved_expectation, cp.GaussianExact)
    y0 = m.initial_state(jnp.sqrt(c0))
    args = (ds.TianParams(), ds.ModeData.isotropic(0.01, 5))
    sol = ds.solve(m, y0, args, 400.0, saveat=3, method="rk45", rtol=1e-12, atol=1e-14)
    c = np.asarray(sol.ys.w[-1]) ** 2
    level = float(jnp.sum(c0)) / 5
    np.testing.assert_allclose(c, level, rtol=1e-9)
    err = m.expectation_error(jax.tree.map(lambda a: a[-1], sol.ys), args)
    assert float(jnp.max(err)) < 1e-12


def test_float32_runs_and_agrees_with_float64():
    w, lam = np.array([0.5, 0.9, 1.2]), np.array([0.7, 1.0, 1.3])
    data = ds.ModeData(lambda_s=1.2, lambda_d=1.0)
    d64, _ = cp.Cosine().mode_drives(jnp.asarray(w), jnp.asarray(w), jnp.asarray(lam), data, True, cp.GaussianExact())
    d32, _ = cp.Cosine().mode_drives(jnp.asarray(w, jnp.float32), jnp.asarray(w, jnp.float32),
                                     jnp.asarray(lam, jnp.float32), data, True, cp.GaussianExact())
    assert d32.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(d32)))
    np.testing.assert_allclose(np.asarray(d32), np.asarray(d64), rtol=0, atol=2e-5 * float(jnp.abs(d64).max()))


def test_drives_when_one_mode_dominates():
    """The hardest spectrum for the rule: one mode carries 97 % of the variance (the integrand has two scales).
    Stated tolerance 1e-9 of the largest drive (measured 3e-10 with the default rule, 2e-11 with n_half=44)."""
    q, wb, l11, l12, l22 = _blocks(32, seed=5)
    q[0] = 30.0
    g_q, _ = _reference_gradients(q, wb, l11, l12, l22)
    sigma, weights = cp.GaussianExact().rule(jnp.float64)
    got = jax.grad(lambda x: cp.mode_cosine_expectation(x, jnp.asarray(wb), l11, l12, l22, sigma, weights))(
        jnp.asarray(q))
    np.testing.assert_allclose(np.asarray(got), g_q, rtol=0, atol=1e-9 * np.abs(g_q).max())


def test_where_the_exact_form_does_not_apply_the_errors_say_so():
    """A loss without a two-radius form is refused with a message naming the alternative; Auto picks the exact
    form for the cosine loss at eigenmode level (network level: ``tests/test_cosine_exact_network.py``)."""
    assert isinstance(ds.Modes(loss=cp.Cosine(), target=cp.Online()).resolved_expectation, cp.GaussianExact)
    assert isinstance(ds.Modes(loss=cp.Euclidean()).resolved_expectation, cp.SecondMoments)

    class Quartic(cp.AbstractLoss):
        def per_sample(self, z1, p, z2, W_p):
            return 0.5 * jnp.sum((p - z2) ** 4, axis=-1)

    m = ds.Modes(loss=Quartic(), predictor=cp.Identity(), target=cp.Online(), expectation=cp.GaussianExact())
    with pytest.raises(ValueError, match="GaussianExact has no nodes"):
        m(0.0, m.initial_state(jnp.ones(3)), ds.ModeData())
