"""The spectral contrastive loss (HaoChen et al. 2021) as a loss of the component family: the per-mode model and the
network flow against the logistic closed form, and the batch gradient against an independent autodiff of the sampled
loss (docs/theory/haochen2021.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim import components as cp
from dynsim.analytic import haochen2021 as hc
from dynsim.networks import NetParams, SSLNet, ViewData, flow

LAM = np.array([2.0, 1.0, 0.5, 0.25])  # data variances along the modes
SIGMA2 = 0.3  # isotropic view noise: gamma_j = LAM_j, m_j = LAM_j + SIGMA2


def test_mode_model_is_the_logistic_closed_form():
    """Per-mode model (autodiff of the batch loss on second-moment nodes) from c_j(0) = 1e-3: the logistic
    c_j(t) = K_j / (1 + (K_j/c_j(0) - 1) exp(-8 gamma_j t)), K_j = gamma_j / m_j^2 (docs/theory/haochen2021.md#modes),
    to 1e-10 over t in [0, 20], with the views differing (target view noisier), so m_j = (l11 + l22)/2."""
    model = ds.SSLModes(loss="spectral_contrastive", predictor="identity", target="online", stop_gradient=False)
    l11, l22 = LAM + SIGMA2, LAM + 2 * SIGMA2
    data = ds.ModeData(lambda_s=jnp.asarray(l11), lambda_d=jnp.asarray(LAM), lambda_2=jnp.asarray(l22))
    c0 = np.full(LAM.size, 1e-3)
    ts = np.linspace(0.0, 20.0, 41)
    sol = ds.solve(model, model.initial_state(jnp.sqrt(jnp.asarray(c0))), (ds.TianParams(), data), 20.0, saveat=ts,
                   method="rk45", rtol=1e-12, atol=1e-14)
    m = 0.5 * (l11 + l22)
    np.testing.assert_allclose(np.asarray(sol.ys.w) ** 2, hc.strengths(c0, LAM, m, ts), rtol=1e-10)


def test_network_flow_from_an_aligned_start_is_the_closed_form():
    """Network flow on views with isotropic noise from W(0) = U diag(s0) V^T: the squared singular values follow the
    logistic with gamma_j = LAM_j, m_j = LAM_j + SIGMA2 to 1e-9 relative over t in [0, 12]; they end at
    gamma_j / m_j^2, so the eigenvalues of W S W^T end at LAM_j / (LAM_j + SIGMA2)."""
    net = SSLNet(loss="spectral_contrastive", predictor="identity", target="online", stop_gradient=False)
    n1, d = 6, 4
    cov = np.concatenate([LAM, [0.1, 0.05]])
    args = (NetParams(), ViewData(data_cov=jnp.diag(jnp.asarray(cov)), noise_cov=SIGMA2 * jnp.eye(n1)))
    U = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))[0]
    s0 = np.array([0.03, 0.02, 0.05, 0.04])
    ts = np.linspace(0.0, 12.0, 25)
    sol = flow(net, net.initial_state(jnp.asarray(U @ np.diag(s0) @ np.eye(n1)[:d]), args=args), args, 12.0,
               saveat=ts, method="rk45", rtol=1e-12, atol=1e-14)
    sv = np.linalg.svd(np.asarray(sol.ys.W), compute_uv=False)
    expected = hc.strengths(s0**2, LAM, LAM + SIGMA2, ts)
    np.testing.assert_allclose(np.sort(sv**2, axis=-1), np.sort(expected, axis=-1), rtol=1e-9)


def test_network_gradient_on_a_batch_is_the_sampled_losss():
    """On a batch of pairs with weights 1/B the network's gradient equals jax.grad of
    -2 mean(z1 . z2) + ||(Z1^T Z1 + Z2^T Z2) / (2B)||_F^2 written here from scratch, to 1e-12."""
    rng = np.random.default_rng(1)
    B, n1, d = 50, 5, 3
    x = rng.standard_normal((B, n1))
    X1, X2 = x + 0.3 * rng.standard_normal((B, n1)), x + 0.3 * rng.standard_normal((B, n1))
    W = 0.4 * rng.standard_normal((d, n1))
    model = ds.Network(loss=cp.SpectralContrastive(), predictor=cp.Identity(), target=cp.Online(False))
    gW, _ = model.gradients(model.initial_state(jnp.asarray(W)), jnp.eye(d),
                            (jnp.asarray(X1), jnp.asarray(X2), jnp.full(B, 1.0 / B)))

    def sampled(Wv):
        Z1, Z2 = jnp.asarray(X1) @ Wv.T, jnp.asarray(X2) @ Wv.T
        M = (Z1.T @ Z1 + Z2.T @ Z2) / (2 * B)
        return -2 * jnp.mean(jnp.sum(Z1 * Z2, axis=1)) + jnp.sum(M * M)

    np.testing.assert_allclose(gW, jax.grad(sampled)(jnp.asarray(W)), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="batch"):
        cp.SpectralContrastive().per_sample(jnp.ones((2, 2)), jnp.ones((2, 2)), jnp.ones((2, 2)), jnp.eye(2))
