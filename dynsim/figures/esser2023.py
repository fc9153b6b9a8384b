r"""Figure for Esser, Mukherjee & Ghoshdastidar (2023) from [`dynsim.grassmann`][dynsim.grassmann] (Esser et al. 2023 protocol:
d = 30, n = 2000, h = 4, contrastive $A = 2\operatorname{sym}(C)$, $W_0 = \mathrm{qf}(N(0,1))$, seed 0).
The paper's own figure settings are unknown; these settings are a proposed reproduction.

`esser2023_grassmann`, four panels:

(a) naive collapse: singular values of $e^{tA}W_0$ relative to the largest, with the predicted rates
    $e^{-t(\lambda_1-\lambda_i)}$ (dashed) and the stable rank (right axis) going to 1;
(b) constrained flow vs Riemannian GD: principal angles to the top-h eigenspace, exact (lines) vs QR-RGD
    at $\eta = 0.1$ (markers);
(c) error $\|P_K - P(T)\|_F$ at T = 6 against $\eta$ for every method, slope-1 guide;
(d) tangent-kernel drift $\|K_t - K_0\|_F/\|K_0\|_F$ for width-m random ReLU features of 8 data pairs
    (alignment loss, h = 2, mean of 3 seeds): every width reaches the same O(1) level, later for wider models.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from dynsim import grassmann as gr
from dynsim.figures._registry import register
from dynsim import grassmann as ga


def grassmann_data(fast: bool = False) -> dict:
    """The numbers behind the figure (also used by its test)."""
    A, W0 = ga.protocol_problem("contrastive")
    lam = np.asarray(gr.eigh_desc(A)[0])
    h = W0.shape[1]
    t_naive = np.linspace(0.0, 10.0, 41)
    naive = gr.collapse_diagnostics(gr.naive_solution(A, W0, t_naive, sphere=True))
    sv = np.asarray(naive["singular_values"])
    lr_rgd = 0.1
    n_rgd = 12 if fast else 120
    rgd = gr.riemannian_gd(A, W0, lr_rgd, n_rgd, n_saves=12)
    U1 = np.asarray(gr.eigh_desc(A)[1])[:, :h]
    ang_rgd = np.asarray(gr.principal_angles(rgd.ys, np.broadcast_to(U1, (13,) + U1.shape)))
    t_theory = np.linspace(0.0, float(rgd.ts[-1]), 121)
    ang_theory = np.arctan(np.asarray(gr.principal_tangents(A, W0, t_theory)))[:, ::-1]
    lrs = (0.2, 0.1) if fast else (0.2, 0.1, 0.05, 0.025, 0.0125)
    res = ga.rgd_agreement(A, W0, 6.0 if not fast else 1.2, lrs=lrs, n_saves=1)
    rng = np.random.default_rng(1)
    n_pairs = 8
    X = rng.standard_normal((5, n_pairs))
    Xp = X + 0.3 * rng.standard_normal((5, n_pairs))
    widths = (16, 256) if fast else (16, 128, 1024, 8192)
    t_drift = np.geomspace(0.01, 100.0, 9 if fast else 41)
    drift = gr.drift_vs_width((X, Xp), "alignment", widths, t_drift, h=2, seeds=(0,) if fast else (0, 1, 2))
    return {"lam": lam, "t_naive": t_naive, "singular_values": sv, "stable_rank": np.asarray(naive["stable_rank"]),
            "t_rgd": np.asarray(rgd.ts), "angles_rgd": ang_rgd, "t_theory": t_theory, "angles_theory": ang_theory,
            "lrs": res["lrs"], "methods": np.array(res["methods"]), "final_error": res["final"],
            "orders": res["orders"], "widths": np.array(widths), "t_drift": t_drift, "drift": drift.mean(axis=1)}


@register("esser2023_grassmann",
          "Esser 2023: naive collapse, Grassmann flow vs Riemannian GD, error vs step, tangent-kernel drift vs width", cost=35)
def esser2023_grassmann(fast: bool = False):
    r"""Draw the four panels of the module docstring from [`grassmann_data`][dynsim.figures.esser2023.grassmann_data]."""
    d = grassmann_data(fast)
    fig = Figure(figsize=(12, 8.2), layout="constrained")
    (a, b), (c, e) = fig.subplots(2, 2)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
    rel = d["singular_values"] / d["singular_values"][:, :1]
    for i in range(1, rel.shape[1]):
        a.semilogy(d["t_naive"], rel[:, i], color=colors[i], lw=1.8, label=rf"$\sigma_{i + 1}/\sigma_1$")
        a.semilogy(d["t_naive"], rel[-1, i] * np.exp(-(d["lam"][0] - d["lam"][i]) * (d["t_naive"] - d["t_naive"][-1])),
                   "--", color=colors[i], lw=0.9)
    a.set_xlabel("t")
    a.set_ylabel("singular values of $e^{tA}W_0$ / largest")
    a2 = a.twinx()
    a2.plot(d["t_naive"], d["stable_rank"], color="k", lw=1.2)
    a2.set_ylabel(r"stable rank $\|W\|_F^2/\|W\|_2^2$ (black)")
    a.plot([], [], color="k", lw=1.2, label="stable rank (right)")
    a.legend(fontsize=8, frameon=False, loc="lower left")
    a.set_title(r"(a) naive flow $\dot W = AW$: collapse to rank one (dashed: $e^{-t(\lambda_1-\lambda_i)}$)", fontsize=10)
    for i in range(d["angles_theory"].shape[1]):
        b.plot(d["t_theory"], np.degrees(d["angles_theory"][:, i]), color=colors[i], lw=1.6,
               label="exact flow" if i == 0 else None)
        b.plot(d["t_rgd"], np.degrees(d["angles_rgd"][:, i]), "o", color=colors[i], mfc="none", ms=5,
               label=r"QR-RGD, $\eta = 0.1$" if i == 0 else None)
    b.set_xlabel(r"t = $\eta k$")
    b.set_ylabel("principal angles to top-h eigenspace (deg)")
    b.legend(fontsize=8, frameon=False)
    b.set_title(r"(b) Grassmann flow $\dot W = (I - WW^\top)AW$ vs Riemannian GD", fontsize=10)
    markers = {"qr": "o-", "polar": "s--", "exp": "^:", "subspace_iteration": "d-", "exact": "x-"}
    for i, m in enumerate(d["methods"]):
        c.loglog(d["lrs"], np.maximum(d["final_error"][i], 1e-16), markers[str(m)], label=str(m), ms=5)
    c.loglog(d["lrs"], d["final_error"][0, -1] * d["lrs"] / d["lrs"][-1], color="0.6", lw=0.8, label="slope 1")
    c.xaxis.set_minor_formatter(NullFormatter())
    c.set_xticks(d["lrs"], [f"{x:g}" for x in d["lrs"]])
    c.set_xlabel(r"step size $\eta$")
    c.set_ylabel(r"$\|P_K - P(T)\|_F$")
    c.legend(fontsize=8, frameon=False, ncol=2)
    c.set_title("(c) error at T = 6: every retraction first order, qf($e^{\\eta A}W$) exact", fontsize=10)
    for i, m in enumerate(d["widths"]):
        e.semilogx(d["t_drift"], d["drift"][i], color=colors[i % 5], lw=1.6, label=f"m = {m}")
    e.set_xlabel("t")
    e.set_ylabel(r"$\|K_t - K_0\|_F / \|K_0\|_F$")
    e.legend(fontsize=8, frameon=False)
    e.set_title("(d) tangent-kernel drift stays O(1) at every width m", fontsize=10)
    fig.suptitle("Orthogonality-constrained SSL dynamics (Esser, Mukherjee & Ghoshdastidar 2023)")
    return fig, d
