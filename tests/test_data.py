"""Real data and augmentations (dynsim.data; docs/theory/views.md#augmentations): exact moments of finite
augmentation families against brute-force averaging, sampled moments within their standard errors, SGD on actual
augmented digits against the expected-gradient flow of the exact moments, the flow against the mode theory where the
moments commute, and the surviving modes under weight decay on digits against their thresholds."""

import builtins

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dynsim import compare
from dynsim import data as dd
from dynsim.networks import NetParams, SSLNet, train

SHAPE = (8, 8)


@pytest.fixture(scope="module")
def digits():
    images, labels = dd.load_digits()
    assert images.shape == (1797, 8, 8) and labels.shape == (1797,) and images.max() == 1.0
    return images


def test_exact_moments_equal_brute_force_averages(digits):
    """Asymmetric pipelines on 30 digits (all 9 one-pixel translations against 4 tile masks with a 20 % chance of no
    mask, the composition translations-then-masks, isotropic noise 0.1 on the second view): the enumerated moments
    equal the average of the outer products of every augmented pair (i, a, b), formed here from the operators'
    images, to 1e-12 relative."""
    X = digits[:30].reshape(30, -1)
    shifts = dd.Augmentation.translations(SHAPE, 1)
    masks = dd.Augmentation.masks(SHAPE, 4, keep_one=0.2)
    for view1, view2 in ((shifts, masks.with_noise(0.1)), (shifts.then(masks), shifts)):
        m = dd.exact_moments(X, view1, view2)
        v1 = np.einsum("aij,bj->abi", view1.operators, X)  # (K1, N, n): every augmented input
        v2 = np.einsum("aij,bj->abi", view2.operators, X)
        p1, p2, N = view1.probabilities, view2.probabilities, len(X)
        want = {"S11": np.einsum("a,abi,abj->ij", p1, v1, v1) / N + view1.noise * np.eye(64),
                "S12": np.einsum("a,c,abi,cbj->ij", p1, p2, v1, v2) / N,
                "S22": np.einsum("a,abi,abj->ij", p2, v2, v2) / N + view2.noise * np.eye(64),
                "mean1": np.einsum("a,abi->i", p1, v1) / N, "mean2": np.einsum("a,abi->i", p2, v2) / N}
        for key, value in want.items():
            np.testing.assert_allclose(getattr(m, key), value, rtol=0, atol=1e-12 * np.abs(value).max(), err_msg=key)
    assert len(shifts.names) == 9 and shifts.names[4] == "shift(+0,+0)"
    np.testing.assert_array_equal(shifts.operators[4], np.eye(64))


def test_sampled_moments_are_within_their_standard_errors(digits):
    """The sampled estimate (2^15 pairs, translations drawn by a user function) lies within 5 standard errors of the
    exact moments in every entry with a non-zero standard error, and its errors shrink like n^(-1/2); projecting
    carries the standard errors exactly where each projected entry is one original entry."""
    X = digits.reshape(len(digits), -1)
    shifts = dd.Augmentation.translations(SHAPE, 1)

    def draw(rng, x):
        return shifts.apply(x, rng.integers(0, 9, len(x)))

    exact = dd.exact_moments(X, shifts)
    est = dd.sampled_moments(X, draw, n_samples=2**15, seed=1)
    small = dd.sampled_moments(X, draw, n_samples=2**13, seed=2)
    for key, se, se_small in zip(("S11", "S12", "S22"), est.stderr, small.stderr):
        z = np.abs(getattr(est, key) - getattr(exact, key))[se > 0] / se[se > 0]
        assert z.max() < 5.0, (key, z.max())
        ratio = np.median(se_small[se > 0] / se[se > 0])
        assert 1.8 < ratio < 2.2, ratio  # sqrt(4)
    # projected standard errors: for a scaled permutation each projected entry is one scaled entry, where the
    # propagation (entries as independent) is exact: se'_ij = |a_i a_j| se_(p_i p_j)
    perm, scale = np.random.default_rng(3).permutation(64), np.linspace(0.5, 2.0, 64)
    A = scale[:, None] * np.eye(64)[perm]
    projected = est.project(A)
    for se, se_p in zip(est.stderr, projected.stderr):
        np.testing.assert_allclose(se_p, np.outer(scale, scale) * se[np.ix_(perm, perm)], rtol=1e-12)
    np.testing.assert_allclose(projected.S12, A @ est.S12 @ A.T, rtol=1e-12)


def test_missing_extra_names_it(monkeypatch):
    """Without scikit-learn, dynsim.data imports and load_digits names the extra to install."""
    real = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("no sklearn")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ImportError, match=r"dynsim\[data\]"):
        dd.load_digits()


def _views(digits, k=16, view=None):
    shifts = dd.Augmentation.translations(SHAPE, 1) if view is None else view
    m = dd.exact_moments(digits.reshape(len(digits), -1), shifts)
    return dd.AugmentedViews.from_images(digits, shifts, projection=m.centred().principal_components(k), moments=m)


def test_sgd_on_augmented_digits_follows_the_flow_within_its_noise(digits):
    """BYOL (Euclidean, trainable predictor, EMA target) on the 16 leading principal components of translated digits:
    SGD on actual augmented pairs (16 seeds, lr 0.05, 200 steps) against GD on the exact moments at the same lr. The
    RMS deviation of WW^T shrinks 1.5-2.8x from batch 64 to 256 (2x for noise, batch^(-1/2); measured 2.35), the
    seeds' mean deviates less than one run (measured 0.40 of it: the Euclidean loss is quadratic, so a minibatch's
    expected gradient is exact and there is no O(1/B) bias), one run deviates by under a tenth of WW^T's size
    (measured 0.003, the weights having moved by 0.28 of it); and GD follows the flow at first order in lr (fitted
    orders within 0.1 of 1; measured 1.04, 1.02)."""
    views = _views(digits)
    net = SSLNet(loss="euclidean", predictor="trainable", target="ema")
    args = (NetParams(alpha_p=1.0, beta=0.5, wd=0.01, wd_p=0.01), views)
    rng = np.random.default_rng(0)
    y0 = net.initial_state(jnp.asarray(0.5 * rng.standard_normal((4, 16))), jnp.asarray(0.5 * np.eye(4)), args=args)
    gd = np.asarray(train(net, y0, args, 0.05, 200).final.W)
    ref = gd @ gd.T
    scale = np.sqrt(np.mean(ref**2))
    rms, mean = {}, {}
    for batch in (64, 256):
        Ws = np.asarray(train(net, y0, args, 0.05, 200, batch=batch, seed=list(range(16))).final.W)
        dev = np.einsum("sij,skj->sik", Ws, Ws) - ref
        rms[batch] = np.sqrt(np.mean(dev**2)) / scale
        mean[batch] = np.sqrt(np.mean(dev.mean(0) ** 2)) / scale
    assert 1.5 < rms[64] / rms[256] < 2.8, rms
    assert mean[256] < rms[256] and rms[256] < 0.1, (mean, rms)
    order = compare.gd_order(net, y0, args, 4.0, lrs=(0.04, 0.02, 0.01), reference="flow")
    assert np.all(np.abs(order["orders"] - 1.0) < 0.1), order


def test_flow_equals_the_mode_theory_where_the_moments_commute(digits):
    """Digits with isotropic noise as the only augmentation (sigma^2 = 0.05 per pixel): the moments commute (the
    basis error is round-off), and the network flow from a start aligned with their eigenvectors equals the per-mode
    theory built from `ViewMoments.modes` to 1e-9 relative (SimSiam, Euclidean loss, trainable predictor; measured
    2e-15). With translations the moments do not commute and `modes` says by how much (0.61 here)."""
    noise = dd.Augmentation.identity(64, noise=0.05)
    m = dd.exact_moments(digits.reshape(len(digits), -1), noise).centred()
    A = m.principal_components(12)
    mode_data, V, err = m.project(A).modes()
    assert err < 1e-12
    views = dd.AugmentedViews.from_images(digits, noise, projection=A)
    net = SSLNet(loss="euclidean", predictor="trainable", target="online")
    args = (NetParams(alpha_p=1.0, wd=0.005, wd_p=0.005), views)
    d = 4
    W0 = np.diag([0.6, 0.5, 0.4, 0.3]) @ V[:, :d].T
    y0 = net.initial_state(jnp.asarray(W0), jnp.asarray(0.8 * np.eye(d)), args=args)
    assert compare.agreement(net, y0, args, 5.0, method="flow").max_rel_error < 1e-9
    _, _, err_shift = dd.exact_moments(digits.reshape(len(digits), -1),
                                       dd.Augmentation.translations(SHAPE, 1)).centred().modes()
    assert err_shift > 0.1


def test_surviving_modes_under_weight_decay_match_the_thresholds_on_digits(digits):
    """Barlow Twins (d = 6) trained by SGD on actual translated digits (16 principal components, batch 1024, lr 0.5,
    600 steps) at six weight decays between consecutive thresholds 4 gamma_j (gamma_j the eigenvalues of the exact
    symmetrised cross-view moment; a mode dies above its threshold, docs/theory/simon2023.md#closed-form): the number
    of eigenvalues of W Gamma W^T above 0.01 equals min(d, #{4 gamma_j > eta}) at every one."""
    views = _views(digits)
    G = np.asarray(views.data_cov)
    thresholds = 4 * np.linalg.eigvalsh(G)[::-1][:6]
    etas = np.concatenate([[0.5 * thresholds[-1]], 0.5 * (thresholds[1:] + thresholds[:-1])[::-1]])
    net = SSLNet(loss="barlow_twins", predictor="identity", target="online", stop_gradient=False)
    W0 = jnp.asarray(0.3 * np.random.default_rng(0).standard_normal((6, 16)))
    counts, predicted = [], []
    for eta in etas:
        args = (NetParams(wd=float(eta)), views)
        W = np.asarray(train(net, net.initial_state(W0, args=args), args, 0.5, 600, batch=1024, seed=0).final.W)
        counts.append(int(np.sum(np.linalg.eigvalsh(W @ G @ W.T) > 0.01)))
        predicted.append(min(6, int(np.sum(thresholds > eta))))
    assert counts == predicted == [6, 5, 4, 3, 2, 1], (counts, predicted, etas)


def test_augmented_views_refuse_what_they_cannot_do(digits):
    """Different pipelines give a non-symmetric cross moment: the expected-gradient path refuses it and says why;
    a moment sampler is refused; bad probabilities and shapes are named."""
    X = digits.reshape(len(digits), -1)
    with pytest.raises(ValueError, match="not symmetric"):
        dd.exact_moments(X, dd.Augmentation.translations(SHAPE, 1), dd.Augmentation.masks(SHAPE, 4)).view_data()
    with pytest.raises(ValueError, match="probabilities"):
        dd.Augmentation(np.stack([np.eye(4)] * 2), np.array([0.7, 0.7]))
    with pytest.raises(ValueError, match="block"):
        dd.Augmentation.masks(SHAPE, 3)
    with pytest.raises(ValueError, match="actual samples"):
        _views(digits[:50], k=4).moment_batch(jax.random.key(0), 16)


def test_empirical_expectation_is_the_moments_for_euclidean_and_measures_the_cosine_gap(digits):
    """The expectation over every (input, shift, shift) of the digits (145,557 pairs, `expectation="empirical"`)
    against the exact moments: BYOL's Euclidean GD is the same to 1e-12 (the loss is quadratic, so the moments carry
    it exactly), while the cosine loss's Gaussian-moment expectation (`"exact"`, exact for Gaussian views of these
    moments) differs from the data's own by a small, non-zero amount over 100 steps of lr 0.1 (between 1e-4 and 5e-2
    of the spectrum of WW^T: the non-Gaussian shape of real views; measured 5.2e-3)."""
    views = _views(digits)
    args = (NetParams(alpha_p=1.0, beta=0.5, wd=0.01, wd_p=0.01), views)
    rng = np.random.default_rng(0)
    W0, P0 = jnp.asarray(0.5 * rng.standard_normal((4, 16))), jnp.asarray(0.5 * np.eye(4))
    runs = {}
    for loss in ("euclidean", "cosine"):
        for expectation in ("exact", "empirical"):
            net = SSLNet(loss=loss, predictor="trainable", target="ema", expectation=expectation)
            W = np.asarray(train(net, net.initial_state(W0, P0, args=args), args, 0.1, 100, n_saves=10).ys.W)
            runs[loss, expectation] = np.linalg.eigvalsh(W @ np.swapaxes(W, -1, -2))
    a, b = runs["euclidean", "exact"], runs["euclidean", "empirical"]
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-12 * np.abs(a).max())
    a, b = runs["cosine", "exact"], runs["cosine", "empirical"]
    gap = np.abs(a - b).max() / np.abs(b).max()
    assert 1e-4 < gap < 5e-2, gap
    with pytest.raises(ValueError, match="without noise"):
        dd.AugmentedViews.from_images(digits[:20], dd.Augmentation.identity(64, noise=0.1)).empirical_nodes()


def test_mode_predictions_are_barlow_twins_closed_forms(digits):
    """`mode_predictions` on the noisy digits' 12 leading components (commuting moments): Barlow Twins' per-mode
    theory ends at s_j^2 = 1/gamma_j (1e-6) with escape times at the step times ln(1/(gamma_j w0^2) - 1)/(8 gamma_j)
    of the closed form (docs/theory/simon2023.md#step-times; 2e-3 relative: the half-way point is interpolated between
    800 saves); with weight decay 1.0 exactly the modes with 4 gamma_j < 1 die."""
    import dynsim as ds
    from dynsim.analytic import simon2023 as bt

    noise = dd.Augmentation.identity(64, noise=0.05)
    m = dd.exact_moments(digits.reshape(len(digits), -1), noise).centred()
    m = m.project(m.principal_components(12))
    model = ds.SSLModes(loss="barlow_twins", predictor="identity", target="online", stop_gradient=False)
    p = dd.mode_predictions(m, model, ds.TianParams(), 200.0, w0=0.05, saves=800)
    g = np.asarray(p["mode_data"].lambda_d)
    assert p["commuting_error"] < 1e-12 and np.all(np.diff(g) <= 0)
    np.testing.assert_allclose(p["strength"], 1 / g, rtol=1e-6)
    np.testing.assert_allclose(p["escape_time"], bt.step_times(g * 0.05**2, g), rtol=2e-3)
    decayed = dd.mode_predictions(m, model, ds.TianParams(eta=1.0), 200.0, w0=0.05)
    np.testing.assert_array_equal(decayed["survives"], 4 * g > 1.0)
    assert np.all(np.isnan(decayed["escape_time"][~decayed["survives"]]))


def test_whitened_views_commute_and_simsiam_keeps_the_modes_its_thresholds_say(digits):
    """Whitening the views (16 principal components of translated digits) makes S11 = S22 = I, so the moments commute
    whatever the augmentation (`modes` error at round-off) and the eigenmode theory is exact. SimSiam with W_p = WW^T
    (Euclidean loss) keeps mode j under weight decay eta iff eta < gamma_j^2/4 (Halvagal et al. 2023's quadratic,
    docs/theory/halvagal2023.md; from a start above its unstable root: c0 = 0.5 > gamma_j/2). At seven weight decays
    between and around the six thresholds, `mode_predictions` (t = 2000) and the network trained by GD on the exact
    moments from W(0) = sqrt(c0) V_6^T (8000 steps of lr 0.05) keep the same modes as the thresholds, 6 down to 0."""
    import dynsim as ds

    shifts = dd.Augmentation.translations(SHAPE, 1)
    m = dd.exact_moments(digits.reshape(len(digits), -1), shifts)
    A = m.centred().principal_components(16, whiten=True)
    mw = m.centred().project(A)
    mode_data, V, err = mw.modes()
    assert err < 1e-12
    np.testing.assert_allclose(np.asarray(mode_data.lambda_s), 1.0, rtol=1e-12)
    g = np.asarray(mode_data.lambda_d)
    eta_c = g[:7] ** 2 / 4
    etas = np.concatenate([[0.5 * (eta_c[6] + eta_c[5])], 0.5 * (eta_c[1:6] + eta_c[:5])[::-1], [1.5 * eta_c[0]]])
    views = dd.AugmentedViews.from_images(digits, shifts, projection=A, moments=m)
    model = ds.SSLModes(loss="euclidean", predictor="power", target="online", predictor_input="WWt")
    net = SSLNet(loss="euclidean", predictor="power", target="online", predictor_input="WWt")
    W0 = jnp.asarray(np.sqrt(0.5) * V[:, :6].T)
    kept_theory, kept_net, predicted = [], [], []
    for eta in etas:
        p = dd.mode_predictions(mw, model, ds.TianParams(eta=float(eta)), 2000.0, w0=np.sqrt(0.5))
        args = (NetParams(wd=float(eta)), views)
        W = np.asarray(train(net, net.initial_state(W0, args=args), args, 0.05, 8000).final.W)
        kept_theory.append(int(p["survives"][:6].sum()))
        kept_net.append(int(np.sum(np.linalg.eigvalsh(W @ W.T) > 1e-3)))
        predicted.append(int(np.sum(eta_c[:6] > eta)))
    assert kept_net == kept_theory == predicted == [6, 5, 4, 3, 2, 1, 0], (kept_net, kept_theory, predicted)
