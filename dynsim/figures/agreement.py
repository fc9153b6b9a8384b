r"""Theory vs simulation figure ([`dynsim.compare`][dynsim.compare]).

`theory_vs_simulation`: the setting of Tian et al. 2021's check (n1 = 8, n2 = 4, σ² = 0.5, α_p = 1, η = 0.01, β = 0.4,
aligned start, Euclidean loss, trainable predictor, EMA target from 0): the mode spectrum of
$WW^\top$ from the per-mode ODEs (lines) against GD with exact expected gradients and minibatch
SGD (batch 4096) at lr 0.01 (markers), and the GD error at t = 10 for halving learning rates with a
slope-1 guide (first order, Euler).
"""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from dynsim import compare as cp
from dynsim.figures._registry import register


def agreement_data(fast: bool = False) -> dict:
    """The numbers behind the figure (also used by its test)."""
    net, y0, args = cp.default_setup()
    t1 = 10.0
    gd = cp.agreement(net, y0, args, t1, method="gd", lr=0.01, n_saves=20)
    sgd = cp.agreement(net, y0, args, t1, method="sgd", lr=0.01, batch=1024 if fast else 4096, n_saves=20)
    lrs = (0.04, 0.02, 0.01) if fast else (0.04, 0.02, 0.01, 0.005, 0.0025)
    order = cp.gd_order(net, y0, args, t1, lrs=lrs)
    return {"t": gd.ts, "theory": gd.theory, "gd": gd.simulation, "sgd": sgd.simulation,
            "gd_error": gd.max_rel_error, "sgd_error": sgd.max_rel_error,
            "lrs": order["lrs"], "lr_errors": order["errors"], "orders": order["orders"]}


@register("theory_vs_simulation", "Per-mode theory vs GD and SGD of the linear network (Tian 2021 setting), error vs lr", cost=19)
def theory_vs_simulation(fast: bool = False):
    r"""Draw [`agreement_data`][dynsim.figures.agreement.agreement_data]: spectra of theory, GD and SGD, and the GD error against the learning rate."""
    d = agreement_data(fast)
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax, ax2 = fig.subplots(1, 2, width_ratios=(1.6, 1))
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    for j in range(d["theory"].shape[1]):
        c = colors[j % len(colors)]
        ax.plot(d["t"], d["theory"][:, j], color=c, lw=1.6, label="theory (mode ODEs)" if j == 0 else None)
        ax.plot(d["t"], d["gd"][:, j], "o", color=c, ms=4, mfc="none", label="GD, exact gradients" if j == 0 else None)
        ax.plot(d["t"], d["sgd"][:, j], "x", color=c, ms=4, label="SGD, batch 4096" if j == 0 else None)
    ax.set_xlabel(r"time $t = \mathrm{lr}\cdot$step (lr = 0.01)")
    ax.set_ylabel(r"eigenvalues of $WW^\top$")
    ax.set_title(f"max rel. error: GD {d['gd_error']:.1e}, SGD {d['sgd_error']:.1e}", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    ax2.loglog(d["lrs"], d["lr_errors"], "o-", color="k", label="GD error at t = 10")
    ax2.loglog(d["lrs"], d["lr_errors"][-1] * d["lrs"] / d["lrs"][-1], "--", color="0.6", label="slope 1")
    ax2.xaxis.set_minor_formatter(NullFormatter())
    ax2.set_xticks(d["lrs"], [f"{x:g}" for x in d["lrs"]])
    ax2.set_xlabel("learning rate")
    ax2.set_ylabel("max rel. spectrum error")
    ax2.set_title(f"fitted orders {', '.join(f'{o:.2f}' for o in d['orders'])}", fontsize=10)
    ax2.legend(fontsize=8, frameon=False)
    fig.suptitle(r"Linear BYOL network vs eigenmode theory: $n_1=8$, $n_2=4$, $\sigma^2=0.5$, $\alpha_p=1$, "
                 r"$\eta=0.01$, $\beta=0.4$ (Tian et al. 2021)")
    return fig, d
