r"""Figures for Richemond et al. (2023) and Li, Efros & Pathak (2022).

`richemond2023_filters`: the finite-iteration predictors as **spectral filters** at their iteration counts
(`docs/theory/richemond_li_wang.md#filters`): the eigenvalues of the matrix predictors of `dynsim.networks.predictors` (NS, n = 9; NS²,
7 + 7; Stiefel, n = 9; Visser, 50 steps of h = 0.5, both **unconfirmed** defaults) applied to a rotated
$\Sigma$ with eigenvalues log-spaced over 10 decades, against the scalar recurrences (markers) and
the limits $\sqrt\lambda$ (NS, Visser), $\lambda^{1/4}$ (NS²) and the flat identity (Stiefel).
Left: predictor eigenvalue / largest against $\lambda/\lambda_{\max}$; right: the same divided by
$\sqrt{\lambda/\lambda_{\max}}$, where a converged square root is flat. NS is a square root on the top
of the spectrum and linear (DirectCopy-like) below about $2.25^{-n}$ of the Frobenius scale.

`li2022_auc`: Li et al.'s collapse metric (cumulative explained variance of the un-squared singular values,
`docs/theory/richemond_li_wang.md#auc`) on the eigenmode theory: SimSiam-like per-mode dynamics (Eqs. 11-12, fixed τ = 1, α_p = 1, σ² = 0.5)
on data with a power-law spectrum $\lambda_{d,j} = 1/j$, from the parabola at $p_j(0) = 0.3$,
for several weight decays η. Mode j survives iff $\eta < \lambda_{d,j}/(4(1+\sigma^2))$ (Obs. 5 with
$\lambda_d$), so a wider model adds modes that collapse: AUC rises with the width m. Modes are decoupled
(aligned start), so a width-m model is exactly the first m modes of the widest one, which is solved once.
Dashed: the AUC from the closed-form end state (survivors at $s_j = p^{*2}_{+,j}$).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from dynsim.analytic import tian2021 as th
from dynsim.eigenmodes import TianModes
from dynsim.figures._registry import register
from dynsim.networks import NetParams
from dynsim import components as cf
from dynsim.networks import closed_form_predictor
from dynsim.params import ModeData, TianParams
from dynsim.solvers import solve_batch
from dynsim.sweeps import auc_flat, collapse_auc

FILTERS = (("ns", 9), ("ns2", 7), ("stiefel", 9), ("visser", 50))
FILTER_LABELS = {"ns": "NS (n = 9)", "ns2": "NS² (7 + 7)", "stiefel": "Stiefel (n = 9)", "visser": "Visser (50 × h = 0.5)"}
COLORS = {"ns": "#1f77b4", "ns2": "#ff7f0e", "stiefel": "#2ca02c", "visser": "#d62728"}


def scalar_filter(kind: str, s, n: int, h: float = 0.5):
    """The scalar recurrence each iterative predictor applies to the eigenvalues `s` of a PSD Σ
    (Richemond et al. 2023; NS² is NS on NS's output, each stage renormalised by its own
    Frobenius norm, the unconfirmed reading (`docs/theory/richemond_li_wang.md#filters`) that [`dynsim.networks.predictors.closed_form_predictor`][dynsim.networks.closed_form_predictor]
    implements)."""
    s = jnp.asarray(s, float)

    def ns(x):
        fro = jnp.sqrt(jnp.sum(x * x))
        return cf.ns_filter(x / fro, n)[0] * jnp.sqrt(fro)

    if kind == "ns":
        return ns(s)
    if kind == "ns2":
        return ns(ns(s))
    if kind == "stiefel":
        return cf.stiefel_filter(s, n)
    if kind == "visser":
        return cf.visser_filter(s, n, h)
    raise ValueError(f"no scalar filter for {kind!r}")


def filters_data(fast: bool = False) -> dict:
    """Matrix predictors on a rotated Σ (eigenvalues read back in Σ's eigenbasis) and the scalar filters."""
    d = 24 if fast else 61
    lam = np.geomspace(1e-10, 1.0, d)[::-1]
    U = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))[0]
    S = jnp.asarray((U * lam) @ U.T)
    pred = NetParams()  # visser_step 0.5, ridge 0
    out = {"lam": lam}
    for kind, n in FILTERS:
        Wp = closed_form_predictor(kind, S, S, pred, n_iter=n)
        out[f"matrix_{kind}"] = np.einsum("ij,ik,kj->j", U, np.asarray(Wp), U)  # diag(U^T W_p U)
        out[f"offdiag_{kind}"] = float(np.abs(U.T @ np.asarray(Wp) @ U - np.diag(out[f"matrix_{kind}"])).max())
        out[f"scalar_{kind}"] = np.asarray(scalar_filter(kind, lam, n, float(pred.visser_step)))
    return out


@register("richemond2023_filters", "Richemond 2023: NS, NS^2, Stiefel and Visser predictors as spectral filters", cost=7)
def richemond_filters(fast: bool = False):
    r"""Draw [`filters_data`][dynsim.figures.richemond_li.filters_data] (module docstring)."""
    d = filters_data(fast)
    x = d["lam"] / d["lam"].max()
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    a, b = fig.subplots(1, 2)
    for kind, _ in FILTERS:
        y = d[f"matrix_{kind}"] / d[f"matrix_{kind}"].max()
        ys = d[f"scalar_{kind}"] / d[f"scalar_{kind}"].max()
        a.loglog(x, y, color=COLORS[kind], lw=1.8, label=FILTER_LABELS[kind])
        a.loglog(x[::3], ys[::3], "o", color=COLORS[kind], ms=3.5, mfc="none")
        b.loglog(x, y / np.sqrt(x), color=COLORS[kind], lw=1.8)
    for p, style, lab in ((0.5, "k--", r"$\sqrt{\lambda}$"), (0.25, "k:", r"$\lambda^{1/4}$"), (1.0, "k-.", r"$\lambda$ (DirectCopy)")):
        a.loglog(x, x**p, style, lw=0.9, label=lab)
    a.set_xlabel(r"$\lambda / \lambda_{\max}$ (eigenvalue of $\Sigma$)")
    a.set_ylabel("predictor eigenvalue / largest")
    a.set_ylim(1e-8, 2)
    a.legend(fontsize=8, frameon=False, loc="lower right")
    a.set_title("lines: matrix iterations on a rotated $\\Sigma$; o: scalar recurrences", fontsize=10)
    b.axhline(1, color="k", ls="--", lw=0.9)
    b.set_xlabel(r"$\lambda / \lambda_{\max}$")
    b.set_ylabel(r"(predictor / largest) / $\sqrt{\lambda/\lambda_{\max}}$")
    b.set_title("flat = square root; NS turns linear below ~$2.25^{-n}$", fontsize=10)
    fig.suptitle("Richemond et al. 2023: finite-iteration predictors are spectral filters")
    return fig, d


# --- Li et al. 2022 ----------------------------------------------------------------------------
LI_SIGMA2, LI_P0 = 0.5, 0.3
# eta_c(j) = 1/(6j): these keep every mode >= 2.5 % away from its threshold (k + 1/2 modes survive, k = 20, 6, 2)
LI_ETAS = (0.001, 1 / 123, 1 / 39, 1 / 15)
LI_WIDTHS = (2, 4, 8, 16, 32, 64)


def li_end_state(lambda_d, eta, sigma2=LI_SIGMA2, p0=LI_P0):
    r"""Closed-form end state of a mode started on the parabola at $p_0$ with fixed τ = 1, α_p = 1
    (Tian et al. 2021 with $\lambda_d$): $s = p_+^{*2}$ if $\eta < \eta_c$ and
    $p_0 > p^*_-$, else 0."""
    fp = th.parabola_fixed_points(1.0, eta, lambda_d * (1 + sigma2), lambda_d)
    keep = np.asarray(fp.exists) & (p0 > np.nan_to_num(np.asarray(fp.p_minus), nan=np.inf))
    return np.where(keep, np.nan_to_num(np.asarray(fp.p_plus)) ** 2, 0.0)


def li_auc_data(fast: bool = False) -> dict:
    r"""End states of the widest model for each η, the AUC per width, and the same from [`li_end_state`][dynsim.figures.richemond_li.li_end_state]."""
    widths = LI_WIDTHS[:4] if fast else LI_WIDTHS
    m = widths[-1]
    lam_d = 1.0 / np.arange(1, m + 1)
    data = ModeData(lambda_s=jnp.asarray(lam_d * (1 + LI_SIGMA2)), lambda_d=jnp.asarray(lam_d))
    model = TianModes(target="fixed_tau")
    etas = np.array(LI_ETAS)
    ones = jnp.ones(len(etas))
    params = TianParams(alpha_p=ones, beta=ones, eta=jnp.asarray(etas), tau=ones)  # beta unused (fixed tau)
    y0 = model.from_pst(p=jnp.full(m, LI_P0), s=jnp.full(m, LI_P0**2), tau=1.0)
    t1 = 3000.0 if fast else 20000.0
    sol = solve_batch(model, y0, (params, data), t1, batch_args=(0, None), method="rk45", rtol=1e-9, atol=1e-12)
    s = np.asarray(sol.ys.w).reshape(len(etas), m) ** 2  # final s_j, (n_eta, m)
    var = s * lam_d  # eigenvalues of W Sigma_x W^T for aligned modes
    auc = np.array([[float(collapse_auc(jnp.sqrt(v[:w]))) for w in widths] for v in var])
    s_theory = np.stack([li_end_state(lam_d, e) for e in etas])
    auc_theory = np.array([[float(collapse_auc(jnp.sqrt((st * lam_d)[:w]))) for w in widths] for st in s_theory])
    sv = np.sqrt(np.sort(var, axis=-1)[:, ::-1])
    cev = np.cumsum(sv, axis=-1) / sv.sum(axis=-1, keepdims=True)
    return {"widths": np.array(widths), "etas": etas, "lambda_d": lam_d, "sigma2": LI_SIGMA2, "t1": t1,
            "s_final": s, "s_theory": s_theory, "auc": auc, "auc_theory": auc_theory, "cev": cev}


@register("li2022_auc", "Li 2022: cumulative explained variance and collapse AUC against model width (eigenmode theory)", cost=12)
def li2022_auc(fast: bool = False):
    r"""Draw [`li_auc_data`][dynsim.figures.richemond_li.li_auc_data]: CEV curves at the largest width and AUC against width."""
    d = li_auc_data(fast)
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    a, b = fig.subplots(1, 2)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    m = d["cev"].shape[1]
    k = np.arange(1, m + 1)
    for i, eta in enumerate(d["etas"]):
        a.plot(k / m, d["cev"][i], color=colors[i], lw=1.8, label=rf"$\eta = {eta:.3g}$, AUC {d['auc'][i, -1]:.3f}")
        b.semilogx(d["widths"], d["auc"][i], "o-", color=colors[i], lw=1.6, label=rf"$\eta = {eta:.3g}$")
        b.semilogx(d["widths"], d["auc_theory"][i], "--", color=colors[i], lw=0.9)
    a.plot([0, 1], [0, 1], color="0.6", lw=0.8, label="flat spectrum")
    a.set_xlabel(f"sorted singular value index / d (d = width = {m})")
    a.set_ylabel(r"cumulative explained variance $\sum_{i \leq k}\sigma_i/\sum_i\sigma_i$")
    a.legend(fontsize=8, frameon=False, loc="lower right")
    b.plot(d["widths"], [auc_flat(int(w)) for w in d["widths"]], color="0.6", lw=1.2, label="flat spectrum, (d+1)/(2d)")
    b.xaxis.set_minor_formatter(NullFormatter())
    b.set_xticks(d["widths"], [str(w) for w in d["widths"]])
    b.set_xlabel("model width m (output units)")
    b.set_ylabel("collapse AUC (Li et al.; 1 = rank one)")
    b.set_title("dashed: AUC of the closed-form end state", fontsize=10)
    b.legend(fontsize=8, frameon=False)
    fig.suptitle(r"Li et al. 2022 collapse metric on the eigenmode theory: data spectrum $\lambda_{d,j} = 1/j$, "
                 rf"$\sigma^2 = {LI_SIGMA2}$, fixed $\tau = 1$; mode $j$ survives iff $\eta < \lambda_{{d,j}}/(4(1+\sigma^2))$")
    return fig, d
