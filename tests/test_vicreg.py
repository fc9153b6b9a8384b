"""VICReg (Bardes, Ponce & LeCun 2022) as a loss of the component family: the per-mode model against the derived
per-mode flow, the network flow from an aligned start against the per-mode model, the end states against their
closed forms, and the batch gradient against an independent autodiff of the sampled loss (docs/theory/bardes2022.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dynsim as ds
from dynsim import components as cp
from dynsim.analytic import bardes2022 as vb
from dynsim.networks import NetParams, SSLNet, ViewData, flow

LAM = np.array([2.0, 1.0, 0.5, 0.25])  # data variances along the modes
SIGMA2 = 0.3  # isotropic view noise: l11 = l22 = LAM + SIGMA2, l12 = LAM


def _modes():
    return ds.SSLModes(loss="vicreg", predictor="identity", target="online", stop_gradient=False)


def _mode_model(loss):
    return ds.Modes(loss=loss, predictor=cp.Identity(), target=cp.Online(False))


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_mode_model_is_the_derived_per_mode_flow(smoothing):
    """The per-mode model (autodiff of the batch loss on second-moment nodes) equals the derived right-hand side
    s' = -(2 lambda Delta + eta) s + (mu/d) sum_v l_vv s / sigma_v h'(gamma - sigma_v) (docs/theory/bardes2022.md#modes),
    written in NumPy, to 1e-12: views that differ (target noisier), weight decay, strengths on both sides of the
    hinge's kink (sigma_v above and below gamma = 1), with the hinge and with its smoothing."""
    l11, l12, l22 = LAM + SIGMA2, LAM, LAM + 2 * SIGMA2
    data = ds.ModeData(lambda_s=jnp.asarray(l11), lambda_d=jnp.asarray(l12), lambda_2=jnp.asarray(l22))
    model = _mode_model(cp.VICReg(smoothing=smoothing))
    s = np.array([0.3, 0.9, 0.01, 1.8])  # sigma_1 = 0.45, 0.93 | 1.04 ...: both sides of the kink
    for eta in (0.0, 0.7):
        rhs = ds.Modes(loss=model.loss, predictor=model.predictor, target=model.target, weight_decay=eta)(
            0.0, model.initial_state(jnp.asarray(s), data=data), data).w
        want = vb.mode_rate(s, l11, l12, l22, dim=4, smoothing=smoothing, eta=eta)
        np.testing.assert_allclose(rhs, want, rtol=1e-12, atol=1e-12)


def test_network_flow_from_an_aligned_start_is_the_mode_model():
    """Network flow from W(0) = P diag(s0) V^T (P a signed permutation: VICReg's variance and covariance terms act per
    embedding coordinate, so an aligned state has each output along one mode) on views with isotropic noise: its
    singular values equal the per-mode model's strengths to 1e-9 relative over t in [0, 0.5] (the covariance term and its gradient vanish on aligned
    states, docs/theory/bardes2022.md#modes). The paper's weights (lambda = mu = 25): every mode's end standard deviation
    sigma_A = 2 mu l / (d 2 lambda Delta) is below gamma, so the flow never reaches the hinge's kink."""
    net = SSLNet(loss="vicreg", predictor="identity", target="online", stop_gradient=False)
    n1, d = 6, 4
    cov = np.concatenate([LAM, [0.1, 0.05]])
    args = (NetParams(), ViewData(data_cov=jnp.diag(jnp.asarray(cov)), noise_cov=SIGMA2 * jnp.eye(n1)))
    U = np.eye(d)[[2, 0, 3, 1]] * np.array([1.0, -1.0, 1.0, 1.0])  # a signed permutation: each output is one mode
    s0 = np.array([0.03, 0.02, 0.05, 0.04])
    ts = np.linspace(0.0, 0.5, 26)
    sol = flow(net, net.initial_state(jnp.asarray(U @ np.diag(s0) @ np.eye(n1)[:d]), args=args), args, 0.5,
               saveat=ts, method="rk45", rtol=1e-12, atol=1e-14)
    sv = np.linalg.svd(np.asarray(sol.ys.W), compute_uv=False)
    data = ds.ModeData(lambda_s=jnp.asarray(LAM + SIGMA2), lambda_d=jnp.asarray(LAM))
    model = _modes()
    modes = ds.solve(model, model.initial_state(jnp.asarray(s0)), (ds.TianParams(), data), 0.5, saveat=ts,
                     method="rk45", rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.sort(sv, axis=-1), np.sort(np.asarray(modes.ys.w), axis=-1), rtol=1e-9)
    assert np.all(vb.end_std(LAM + SIGMA2, LAM, dim=d) < 1.0)  # the regime the docstring names


@pytest.mark.parametrize("smoothing,sigma2", [(0.0, 0.3), (0.2, 0.02)])
def test_end_state_is_the_closed_form(smoothing, sigma2):
    """The per-mode model run to its end (t = 40) against the end state (docs/theory/bardes2022.md#end-state): the closed
    form for equal view moments, sigma* = sigma_A below gamma - tau, else gamma sigma_A / (sigma_A + tau) on the
    smoothed kink, and the bisection of s'/s = 0 for any moments, to 1e-8. With little view noise (sigma2 = 0.02)
    the larger modes end on the kink; the test checks that some do."""
    l = LAM + sigma2
    data = ds.ModeData(lambda_s=jnp.asarray(l), lambda_d=jnp.asarray(LAM))
    model = _mode_model(cp.VICReg(smoothing=smoothing))
    sol = ds.solve(model, model.initial_state(jnp.full(4, 0.05), data=data), data, 40.0, method="rk45", rtol=1e-12,
                   atol=1e-14)
    sigma = vb.end_std(l, LAM, dim=4, smoothing=smoothing)
    assert (smoothing > 0) == bool(np.any(sigma > 1.0 - smoothing - 1e-12))
    want = np.sqrt((sigma**2 - 1e-4) / l)
    np.testing.assert_allclose(np.asarray(sol.final.w), want, rtol=1e-8)
    np.testing.assert_allclose(vb.end_strengths(l, LAM, l, dim=4, smoothing=smoothing), want, rtol=1e-10)


def test_weight_decay_threshold_and_boundary_search():
    """With weight decay eta a mode dies when sigma_A falls to sqrt(eps): eta_c = 2 mu l / (d sqrt eps) - 2 lambda
    Delta (docs/theory/bardes2022.md#end-state). With eps = 0.04 (sqrt eps = 0.2), data_decay = 1 and sigma2 = 0.3 (the
    sweeps' views: l12_j = 1/(j+1), l_j = 1.3 l12_j), the smallest mode's eta_c is 2*25*0.325/(4*0.2) - 2*25*0.15
    = 12.8125. `dynsim boundary`'s bisection of "fewer than 4 modes survive" finds it within the
    finite-time allowance (near zero a mode at eta_c + delta has c' = -2 delta c: from c0 = w0^2 = 0.25 it falls below
    the threshold 1e-6 by t1 = 1000 once delta > ln(0.25 / 1e-6) / (2 t1) = 0.0062 < 0.01)."""
    from dynsim import sweeps

    lam = 1.0 / np.arange(1, 5)
    eta_c = vb.threshold_weight_decay(1.3 * lam, lam, dim=4, eps=0.04)
    np.testing.assert_allclose(eta_c[-1], 12.8125, rtol=1e-14)
    res = sweeps.find_boundary({
        "model": {"kind": "modes", "n_modes": 4, "loss": {"kind": "vicreg"}, "predictor": "identity",
                  "target": {"kind": "online", "stop_gradient": False}},
        "params": {"w0": 0.5, "data_decay": 1.0, "sigma2": 0.3, "loss": {"eps": 0.04}},
        "solve": {"t1": 1000.0, "saves": 2, "rtol": 1e-9, "atol": 1e-12},
        "metrics": {"collapse": "none"},
        "boundary": {"parameter": "weight_decay", "bracket": [10.0, 16.0], "rtol": 1e-6,
                     "criterion": "surviving_modes", "level": 4}})
    s = res.summaries
    assert s["flag"][0] == sweeps.Flag.OK and not s["below"][0]
    assert eta_c[-1] <= s["lower"][0] and s["upper"][0] <= eta_c[-1] + 0.01


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_network_gradient_on_a_batch_is_the_sampled_losss(smoothing):
    """On a batch of pairs with weights 1/B the network's gradient equals jax.grad of the paper's loss (Eq. 6) with
    uncentred second moments, written here from scratch on the batch matrices, to 1e-12; a third of the embedding
    dimensions sit below the hinge's kink, so every term is active."""
    rng = np.random.default_rng(2)
    B, n1, d = 40, 5, 3
    x = rng.standard_normal((B, n1))
    X1, X2 = x + 0.3 * rng.standard_normal((B, n1)), x + 0.3 * rng.standard_normal((B, n1))
    W = 0.6 * rng.standard_normal((d, n1))
    loss = cp.VICReg(invariance=3.0, variance=5.0, covariance=2.0, gamma=1.3, eps=1e-3, smoothing=smoothing)
    model = ds.Network(loss=loss, predictor=cp.Identity(), target=cp.Online(False))
    gW, _ = model.gradients(model.initial_state(jnp.asarray(W)), jnp.eye(d),
                            (jnp.asarray(X1), jnp.asarray(X2), jnp.full(B, 1.0 / B)))

    def hinge(x):
        if smoothing == 0:
            return jnp.maximum(x, 0.0)
        return jnp.where(x <= 0, 0.0, jnp.where(x < smoothing, x**2 / (2 * smoothing), x - smoothing / 2))

    def reg(Z):
        C = Z.T @ Z / B
        std = jnp.sqrt(jnp.diag(C) + 1e-3)
        return 5.0 * jnp.mean(hinge(1.3 - std)) + 2.0 * (jnp.sum(C**2) - jnp.sum(jnp.diag(C) ** 2)) / d

    def sampled(Wv):
        Z1, Z2 = jnp.asarray(X1) @ Wv.T, jnp.asarray(X2) @ Wv.T
        return 3.0 * jnp.mean(jnp.sum((Z1 - Z2) ** 2, axis=1)) + reg(Z1) + reg(Z2)

    stds = np.sqrt(np.diag(np.asarray(X1 @ W.T).T @ np.asarray(X1 @ W.T)) / B + 1e-3)
    assert np.any(stds < 1.3) and np.any(stds > 1.3)
    np.testing.assert_allclose(gW, jax.grad(sampled)(jnp.asarray(W)), rtol=1e-12, atol=1e-13)


def test_vicreg_refuses_bad_values():
    """A negative weight, a non-positive gamma, IsoLoss and a per-sample value are errors that name what is wrong."""
    with pytest.raises(ValueError, match="VICReg.gamma"):
        cp.VICReg(gamma=0.0).check()
    with pytest.raises(ValueError, match="VICReg.smoothing"):
        cp.VICReg(smoothing=-0.1).check()
    with pytest.raises(ValueError, match="IsoLoss"):
        cp.VICReg(iso=True)
    with pytest.raises(ValueError, match="batch"):
        cp.VICReg().per_sample(jnp.ones((2, 2)), jnp.ones((2, 2)), jnp.ones((2, 2)), jnp.eye(2))


def test_compare_runs_vicreg_network_against_its_mode_theory():
    """`dynsim.compare` (and `dynsim compare --loss vicreg --predictor identity --target online --no-stop-gradient`):
    the network's flow from the aligned default start equals the per-mode theory it maps to, to 1e-9 relative."""
    from dynsim import compare

    net, y0, args = compare.default_setup(loss="vicreg", predictor="identity", target="online", stop_gradient=False)
    assert compare.agreement(net, y0, args, 1.0, method="flow").max_rel_error < 1e-9
