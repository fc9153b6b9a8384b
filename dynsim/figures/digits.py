r"""Figure for real data: what linear SSL networks learn from scikit-learn's digits and their one-pixel
translations, predicted from the views' exact moments and checked by training on the actual augmented samples
(`docs/theory/views.md#augmentations`, `docs/guide/data.md`). Needs the extra `dynsim[data]`.

`digits_augmentations`: views are the 1,797 digits under the nine one-pixel shifts (zero padding), centred, on the
16 leading principal components of the views, whitened (so each view has unit second moment along every direction
and the eigenvalues $\gamma_j$ of the cross-view moment $\Gamma$ are the fractions of each direction the two views
share; [`dynsim.data`][dynsim.data]).

(a) SimSiam with the closed-form predictor $W_p = WW^\top$ (Euclidean loss, online target, weight decay 0.01,
    $4\times16$, from $W(0) = 0.1Z$): the eigenvalues of $WW^\top$ under the expected-gradient flow of the exact
    moments (lines) and SGD on actual augmented pairs (batch 64, lr 0.05, mean of 8 seeds, markers; the band is their
    spread). The modes are learned one after another. The Euclidean loss depends on second moments only, so the flow
    is the population dynamics of the samples;
(b) the directions Barlow Twins learns ($d = 6$, SGD on the samples, no weight decay), as $8\times8$ images in pixel
    space (row 2), against the theory's: the top eigenvectors of the symmetrised cross-view moment $\Gamma$ (row 1;
    `docs/theory/simon2023.md#closed-form`), each with $|\cos|$ between them;
(c) which features weight decay removes first: the end eigenvalues of $W\Gamma W^\top$ of Barlow Twins trained by
    SGD at several weight decays $\eta$ (markers) against $1 - \eta/(4\gamma_j)$ (lines; a mode dies above
    $4\gamma_j$, the least shared directions, the finest strokes, first);
(d) the cosine loss (the same SimSiam) where the theory is not exact: the expectation over every pair of the
    data's views (solid), the Gaussian-moment expectation of the same moments (dashed) and SGD (markers).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from dynsim.figures._registry import register

K, SEEDS = 16, 8


def _setup():
    from dynsim import data as dd

    images, _ = dd.load_digits()
    shifts = dd.Augmentation.translations((8, 8), 1)
    m = dd.exact_moments(images.reshape(len(images), -1), shifts)
    A = m.centred().principal_components(K, whiten=True)
    return dd.AugmentedViews.from_images(images, shifts, projection=A, moments=m), A


def digits_data(fast: bool = False) -> dict:
    """The runs of the four panels (module docstring)."""
    from dynsim.networks import NetParams, SSLNet, flow, train

    views, A = _setup()
    G = np.asarray(views.data_cov)
    gamma, V = np.linalg.eigh(G)
    gamma, V = gamma[::-1], V[:, ::-1]
    out = {"gamma": gamma, "projection": A}
    seeds = list(range(2 if fast else SEEDS))
    rng = np.random.default_rng(0)
    W0 = jnp.asarray(0.1 * rng.standard_normal((4, K)))

    def spectrum(W):
        W = np.asarray(W)
        return np.linalg.eigvalsh(W @ np.swapaxes(W, -1, -2))

    # (a) SimSiam with W_p = W W^T, Euclidean: the flow of the exact moments against SGD on the samples
    steps = 450 if fast else 1200
    lr = 0.05
    simsiam = SSLNet(loss="euclidean", predictor="power", target="online")
    args = (NetParams(wd=0.01), views)
    y0 = simsiam.initial_state(W0, args=args)
    ts = np.linspace(0.0, steps * lr, 31)
    out["t_a"] = ts
    out["flow_a"] = spectrum(flow(simsiam, y0, args, float(ts[-1]), saveat=ts, method="rk45", rtol=1e-8,
                                  atol=1e-10).ys.W)
    out["sgd_a"] = spectrum(train(simsiam, y0, args, lr, steps, batch=512, seed=seeds, n_saves=30).ys.W)

    # (b) Barlow Twins without weight decay: the learned input directions against Gamma's eigenvectors
    bt = SSLNet(loss="barlow_twins", predictor="identity", target="online", stop_gradient=False)
    Wb0 = jnp.asarray(0.3 * rng.standard_normal((6, K)))
    bt_steps = 300 if fast else 600
    args = (NetParams(), views)
    W = np.asarray(train(bt, bt.initial_state(Wb0, args=args), args, 0.2, bt_steps, batch=1024, seed=0).final.W)
    _, _, Vt = np.linalg.svd(W, full_matrices=False)  # rows: the learned input directions
    Vt = Vt[np.argsort(-np.einsum("ji,ik,jk->j", Vt, G, Vt))]  # by the share of each direction, as Gamma's modes
    overlap = Vt @ V[:, :6]
    learned = np.sign(np.diag(overlap))[:, None] * Vt
    out["theory_pixels"] = (A.T @ V[:, :6]).T.reshape(6, 8, 8)
    out["learned_pixels"] = (A.T @ learned.T).T.reshape(6, 8, 8)
    out["overlap"] = np.abs(np.diag(overlap))

    # (c) Barlow Twins at several weight decays, between and around the thresholds 4 gamma_j
    etas = np.linspace(0.1, 3.1, 6 if fast else 13)
    end = []
    for eta in etas:
        args = (NetParams(wd=float(eta)), views)
        Wc = np.asarray(train(bt, bt.initial_state(Wb0, args=args), args, 0.2, bt_steps, batch=1024, seed=0).final.W)
        end.append(np.sort(np.linalg.eigvalsh(Wc @ G @ Wc.T))[::-1])
    out["etas"], out["end_c"] = etas, np.array(end)

    # (d) the same SimSiam with the cosine loss: the data's own expectation, the Gaussian-moment one, SGD
    cos_steps = 150 if fast else 600
    lr = 0.05
    ts = np.linspace(0.0, cos_steps * lr, 31)
    out["t_d"] = ts
    args = (NetParams(wd=0.01), views)
    for name, expectation in (("empirical", "empirical"), ("gaussian", "exact")):
        net = SSLNet(loss="cosine", predictor="power", target="online", expectation=expectation)
        out[f"{name}_d"] = spectrum(train(net, net.initial_state(W0, args=args), args, lr, cos_steps,
                                          n_saves=30).ys.W)
    net = SSLNet(loss="cosine", predictor="power", target="online")
    out["sgd_d"] = spectrum(train(net, net.initial_state(W0, args=args), args, lr, cos_steps, batch=1024,
                                  seed=seeds, n_saves=30).ys.W)
    return out


@register("digits_augmentations", "Real data: what linear SSL networks learn from translated digits, predicted "
          "from the views' exact moments and checked by SGD on the augmented samples", cost=30, requires="sklearn",
          extra="data")
def digits_augmentations(fast: bool = False):
    r"""Draw [`digits_data`][dynsim.figures.digits.digits_data] (module docstring)."""
    d = digits_data(fast)
    fig = Figure(figsize=(16.5, 8.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.35, 1.0])
    a, c, e = top.subplots(1, 3)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    for j in range(4):
        a.plot(d["t_a"], d["flow_a"][:, j], color=colors[j], lw=1.6)
        mean, lo, hi = (f(d["sgd_a"][..., j], axis=0) for f in (np.mean, np.min, np.max))
        a.fill_between(d["t_a"], lo, hi, color=colors[j], alpha=0.2, lw=0)
        a.plot(d["t_a"], mean, "o", color=colors[j], ms=3.5, mfc="none")
    a.set_xlabel("t = lr × step")
    a.set_ylabel(r"eigenvalues of $WW^\top$")
    a.set_title(r"(a) SimSiam, $W_p = WW^\top$, Euclidean: flow of the exact moments" "\n(lines) vs SGD on "
                f"augmented pairs (o: mean of {d['sgd_a'].shape[0]} seeds, band: spread)", fontsize=10)
    g = d["gamma"]
    eta_line = np.linspace(0.0, float(d["etas"][-1]), 200)
    for j in range(6):
        c.plot(eta_line, np.maximum(1 - eta_line / (4 * g[j]), 0.0), color=colors[j], lw=1.4,
               label=rf"$4\gamma_{j + 1} = {4 * g[j]:.2f}$")
        c.plot(d["etas"], d["end_c"][:, j], "o", color=colors[j], ms=4, mfc="none")
    c.set_xlabel(r"weight decay $\eta$")
    c.set_ylabel(r"end eigenvalues of $W\Gamma W^\top$")
    c.set_ylim(-0.05, 1.05)
    c.legend(fontsize=8, frameon=False)
    c.set_title("(c) Barlow Twins: weight decay removes the least shared\ndirections first (o: SGD on the samples; "
                r"lines: $1 - \eta/4\gamma_j$)", fontsize=10)
    for j in range(4):
        e.plot(d["t_d"], d["empirical_d"][:, j], color=colors[j], lw=1.6)
        e.plot(d["t_d"], d["gaussian_d"][:, j], "--", color="k", lw=0.9)
        e.plot(d["t_d"], d["sgd_d"][..., j].mean(axis=0), "o", color=colors[j], ms=3.5, mfc="none")
    gap = np.abs(d["gaussian_d"] - d["empirical_d"]).max() / np.abs(d["empirical_d"]).max()
    e.set_xlabel("t = lr × step")
    e.set_ylabel(r"eigenvalues of $WW^\top$")
    e.set_title("(d) SimSiam, cosine: the data's own expectation (lines), Gaussian-\nmoment expectation (dashed, "
                f"max gap {gap:.1e}), SGD (o)", fontsize=10)
    axes = bottom.subplots(2, 6)
    for j in range(6):
        for row, key in enumerate(("theory_pixels", "learned_pixels")):
            img = d[key][j]
            lim = np.abs(img).max()
            axes[row, j].imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
            axes[row, j].set_xticks([])
            axes[row, j].set_yticks([])
        axes[0, j].set_title(rf"$\gamma_{j + 1} = {g[j]:.3f}$", fontsize=9)
        axes[1, j].set_xlabel(rf"$|\cos| = {d['overlap'][j]:.3f}$", fontsize=9)
    axes[0, 0].set_ylabel("theory:\neigenvectors of Γ", fontsize=9)
    axes[1, 0].set_ylabel("Barlow Twins,\ntrained by SGD", fontsize=9)
    bottom.suptitle("(b) the directions a linear network keeps, in pixel space", fontsize=10)
    fig.suptitle("Real data: scikit-learn's digits under one-pixel translations (16 whitened principal components of "
                 "the centred views)")
    return fig, d
