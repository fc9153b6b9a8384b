r"""Figure for Simon et al. (2023), the stepwise learning of linear Barlow Twins, and the loss families side by side
(`docs/theory/simon2023.md`, `docs/theory/haochen2021.md`).

`simon2023_stepwise`, three panels, on views $x_i = x + n_i$ with $\Sigma_x = \mathrm{diag}(4, 2, 1, 0.5, 0.3, 0.2,
0.1, 0.05)$ and isotropic noise $\sigma^2 = 0.3$, so $\Gamma = \Sigma_x$ (chosen here, as the paper's linear
experiment used image crops):

(a) the staircase: a $4\times8$ network trained by GD (lr 0.01) from a generic start $10^{-6}Z$: the eigenvalues of
    $C = W\Gamma W^\top$ (markers) against the logistic steps of the effective aligned start (lines,
    [`dynsim.analytic.simon2023`][dynsim.analytic.simon2023]), and the loss $\Vert C - I\Vert_F^2$ stepping down from
    4 through 3, 2, 1 to 0 (right axis);
(b) step times against the start's scale $\alpha$: the times at which each $\lambda_j$ of the trained network crosses ½
    (markers) against the effective-start prediction of the flow (lines), which grows like $\ln(1/\alpha)/(4\gamma_j)$.
    GD's steps come later by about $2\,\mathrm{lr}\,\gamma_j$ relative (7 % for $\gamma_1 = 4$): its growth per step
    is $\ln(1 + 4\,\mathrm{lr}\,\gamma_j)$, not $4\,\mathrm{lr}\,\gamma_j$;
(c) the families on the same views, per mode (the eigenmode theory, to $t = 200$): the end strength $s_j^2$ for
    SimSiam's Euclidean loss (trained predictor, $\alpha_p = 1$, stop-gradient, from $w = w_p = 0.5$), Barlow Twins and
    the spectral contrastive loss, without weight decay (filled) and with $\eta = 0.05$ (open). Without weight decay
    SimSiam keeps every mode at $s_j = p_j^2$, $p_j = \gamma_j/(\gamma_j + \sigma^2)$; with it, the modes with
    $\gamma_j^2 < 4\eta(\gamma_j + \sigma^2)$ collapse (Tian et al. 2021, Obs. 5 per mode; the two weakest modes are
    still approaching their end values at $t = 200$). Barlow Twins and the
    spectral contrastive loss learn every mode with $\gamma_j > 0$, ending at $1/\gamma_j$ and $\gamma_j/m_j^2$
    ($m_j = \gamma_j + \sigma^2$); weight decay shrinks them (Barlow Twins: $s_j^2 = (1 - \eta/(4\gamma_j))/\gamma_j$)
    and removes a mode only where $4\gamma_j < \eta$. VICReg with the paper's weights ends inside its variance
    hinge, at the standard deviation $\sigma_A = 2\mu\ell_j/(d(2\lambda\Delta + \eta))$ per coordinate
    (`docs/theory/bardes2022.md#end-state`; $\ell_j = \gamma_j + \sigma^2$, $\Delta = 2\sigma^2$, $d = 8$): every
    mode is kept, in proportion to its variance $\ell_j$ rather than its signal $\gamma_j$, and weight decay far
    below its threshold ($\approx 625\,\ell_j - 30$ here) barely moves it.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from dynsim.analytic import simon2023 as bt
from dynsim.eigenmodes import SSLModes
from dynsim.figures._registry import register
from dynsim.networks import NetParams, SSLNet, ViewData, train
from dynsim.params import ModeData, TianParams
from dynsim.solvers import solve

GAMMA = np.array([4.0, 2.0, 1.0, 0.5, 0.3, 0.2, 0.1, 0.05])
SIGMA2, D, LR, SEED = 0.3, 4, 0.01, 0
SCALES = (1e-2, 1e-4, 1e-6, 1e-8, 1e-10)
WD = 0.05


def _net() -> SSLNet:
    return SSLNet(loss="barlow_twins", predictor="identity", target="online", stop_gradient=False)


def _args():
    n1 = GAMMA.size
    return NetParams(), ViewData(data_cov=jnp.diag(jnp.asarray(GAMMA)), noise_cov=SIGMA2 * jnp.eye(n1))


def _crossings(ts, lam):
    """First times each column of `lam` (T, d) crosses ½, interpolated in the log-odds (linear for a logistic)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.log(lam / (1.0 - lam))
    out = np.full(lam.shape[1], np.nan)
    for j in range(lam.shape[1]):
        k = int(np.argmax(odds[:, j] > 0))
        if k > 0:
            out[j] = ts[k - 1] - odds[k - 1, j] * (ts[k] - ts[k - 1]) / (odds[k, j] - odds[k - 1, j])
    return out


def stepwise_data(fast: bool = False) -> dict:
    """GD runs of the Barlow Twins network (panels a, b) and the per-mode end states of the four families (c)."""
    net, args = _net(), _args()
    n1 = GAMMA.size
    Z = np.random.default_rng(SEED).standard_normal((D, n1))
    V = np.eye(n1)[:, :D]
    scales = SCALES[1:3] if fast else SCALES
    t1 = 8.0 if fast else 15.0  # past the last step of the smallest start
    steps, saves = int(round(t1 / LR)), 100 if fast else 300
    out = {"gamma": GAMMA, "sigma2": SIGMA2, "lr": LR, "scales": np.array(scales)}
    cross, predicted = [], []
    for alpha in scales:
        W0 = alpha * Z
        run = train(net, net.initial_state(jnp.asarray(W0), args=args), args, LR, steps, n_saves=saves)
        W = np.asarray(run.ys.W)
        lam = np.linalg.eigvalsh(W @ np.diag(GAMMA) @ np.swapaxes(W, -1, -2))[:, ::-1]
        ts = np.asarray(run.ts)
        lam0 = GAMMA[:D] * bt.effective_start(W0, V) ** 2  # the effective start's lambda_j(0)
        cross.append(_crossings(ts, lam))
        predicted.append(bt.step_times(lam0, GAMMA[:D]))
        if alpha == 1e-6:
            C = W @ np.diag(GAMMA) @ np.swapaxes(W, -1, -2)
            out |= {"t": ts, "lam": lam, "loss": np.sum((C - np.eye(D)) ** 2, axis=(-2, -1)),
                    "lam_theory": bt.embedding_eigenvalues(lam0, GAMMA[:D], ts)}
    out |= {"crossings": np.array(cross), "predicted": np.array(predicted)}
    data = ModeData(lambda_s=jnp.asarray(GAMMA + SIGMA2), lambda_d=jnp.asarray(GAMMA))
    models = {"simsiam": SSLModes(loss="euclidean", predictor="trainable", target="online"),
              "barlow_twins": SSLModes(loss="barlow_twins", predictor="identity", target="online",
                                       stop_gradient=False),
              "spectral_contrastive": SSLModes(loss="spectral_contrastive", predictor="identity", target="online",
                                               stop_gradient=False),
              "vicreg": SSLModes(loss="vicreg", predictor="identity", target="online", stop_gradient=False)}
    for name, model in models.items():
        for tag, eta in (("0", 0.0), ("wd", WD)):
            params = TianParams(alpha_p=1.0, beta=1.0, eta=eta)
            w0 = jnp.full(GAMMA.size, 0.5 if name == "simsiam" else 0.05)  # SimSiam: above p*_- (on the parabola)
            y0 = model.initial_state(w0, w_p=w0) if name == "simsiam" else model.initial_state(w0)
            sol = solve(model, y0, (params, data), 200.0, method="rk45", rtol=1e-9, atol=1e-12)
            out[f"c_{name}_{tag}"] = np.asarray(sol.ys.w)[-1] ** 2
    return out


@register("simon2023_stepwise", "Simon 2023: stepwise Barlow Twins (network GD vs logistic steps, step times vs "
          "init scale) and the loss families side by side", cost=12)
def simon2023_stepwise(fast: bool = False):
    r"""Draw [`stepwise_data`][dynsim.figures.simon2023.stepwise_data] (module docstring)."""
    d = stepwise_data(fast)
    fig = Figure(figsize=(16.5, 4.4), layout="constrained")
    a, b, c = fig.subplots(1, 3)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for j in range(D):
        a.plot(d["t"], d["lam_theory"][:, j], color=colors[j], lw=1.6, label=rf"$\gamma_{j + 1} = {GAMMA[j]:g}$")
        a.plot(d["t"][::6], d["lam"][::6, j], "o", color=colors[j], ms=3, mfc="none")
    a.set_xlabel("t = lr × step")
    a.set_ylabel(r"eigenvalues of $C = W\Gamma W^\top$")
    a.legend(fontsize=8, frameon=False, loc="center right")
    a2 = a.twinx()
    a2.plot(d["t"], d["loss"], color="k", lw=1.1)
    a2.set_ylabel(r"loss $\Vert C - I\Vert_F^2$ (black)")
    a.set_title(r"(a) GD from $10^{-6}Z$ (o) vs logistic steps of the effective start", fontsize=10)
    x = np.log(1.0 / d["scales"])
    for j in range(D):
        b.plot(x, d["predicted"][:, j], "-", color=colors[j], lw=1.4)
        b.plot(x, d["crossings"][:, j], "o", color=colors[j], ms=5, mfc="none")
    b.set_xlabel(r"$\ln(1/\alpha)$, start $W(0) = \alpha Z$")
    b.set_ylabel(r"step time (where $\lambda_j = 1/2$)")
    b.set_title(r"(b) step times grow like $\ln(1/\alpha)/(4\gamma_j)$: GD (o), prediction (lines)", fontsize=10)
    modes = np.arange(1, GAMMA.size + 1)
    width = 0.21
    for k, (name, label) in enumerate((("simsiam", "SimSiam (Euclidean, trained predictor)"),
                                       ("barlow_twins", "Barlow Twins"),
                                       ("spectral_contrastive", "spectral contrastive"),
                                       ("vicreg", "VICReg (paper's weights)"))):
        x = modes + (k - 1.5) * width
        c.bar(x, d[f"c_{name}_0"], width, color=colors[k], label=label)
        c.bar(x, d[f"c_{name}_wd"], width, color="none", edgecolor="k", lw=0.8)
        gone = d[f"c_{name}_wd"] < 1e-3
        c.plot(x[gone], np.full(gone.sum(), 1.6e-3), "x", color="k", ms=6,
               label=rf"collapsed at $\eta = {WD:g}$" if k == 0 and gone.any() else None)
    c.set_yscale("log")
    c.set_ylim(1e-3, 50)
    c.set_xticks(modes, [f"{g:g}" for g in GAMMA])
    c.set_xlabel(r"mode ($\gamma_j$)")
    c.set_ylabel(r"end strength $s_j^2$ (theory, t = 200)")
    c.legend(fontsize=8, frameon=False)
    c.set_title(rf"(c) which modes each family keeps: filled $\eta = 0$, open $\eta = {WD:g}$", fontsize=10)
    fig.suptitle(r"Simon et al. 2023: linear Barlow Twins learns one eigenmode of $\Gamma$ at a time; the families "
                 rf"side by side ($\Sigma_x$ = diag(4, 2, 1, 0.5, ...), $\sigma^2 = {SIGMA2}$)")
    return fig, d
