r"""Figures of Tian, Chen & Ganguli (2021) regenerated from dynsim's ODEs and closed forms.

``tian2021_fig3``: the (p, s) phase portrait of Eqs. 11-12 at fixed τ = 1, α_p = 1 for no
(η = 0), weak (η = 0.01) and strong (η = 1) weight decay. The paper does not state σ²
(tian2021.md §5, flag 8); we use σ² = 0.5, the value of the theory notes' oracles, for which
η_c = τ²/(4(1+σ²)) = 1/6, so η = 0.01 has both non-zero fixed points and η = 1 collapses
everywhere. Red: stable fixed points; green: unstable; blue: flow lines; dashed black: the
invariant parabola s = p²/α_p; thick lines: trajectories integrated with :func:`dynsim.solve_batch`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from dynsim.analytic import tian2021 as th
from dynsim.eigenmodes import PSTState, TianModes, TianPST
from dynsim.figures.registry import register
from dynsim.params import ModeData, TianParams
from dynsim.solvers import solve_batch

FIG3_SIGMA2 = 0.5
FIG3_ETAS = (0.0, 0.01, 1.0)
FIG3_TAU = 1.0
FIG3_ALPHA_P = 1.0
FIG3_STARTS = np.array([  # (p0, s0) of the drawn trajectories
    [-0.35, 0.9], [0.02, 0.05], [0.15, 0.9], [0.35, 0.15], [0.9, 0.35], [1.15, 1.1], [0.6, 1.15], [-0.2, 0.2],
])
STABLE, UNSTABLE, FLOW = "#d62728", "#2ca02c", "#1f77b4"
LABEL_BOX = dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.9)


def _vector_field(params, data, P, S):
    rhs = TianPST(target="fixed_tau")
    y = PSTState(jnp.asarray(P), jnp.asarray(S), jnp.full_like(jnp.asarray(P), params.tau))
    d = rhs(0.0, y, (params, data))
    return np.asarray(d.p), np.asarray(d.s)


def _trajectories(params, data, t1, n_save):
    model = TianModes(target="fixed_tau")
    y0 = model.from_pst(FIG3_STARTS[:, 0], FIG3_STARTS[:, 1], params.tau)
    y0 = jax.tree.map(lambda x: x[:, None], y0)  # batch of one-mode systems
    sol = solve_batch(model, y0, (params, data), t1, saveat=n_save, batch_y0=True, batch_args=None,
                      rtol=1e-8, atol=1e-10)
    p, s, _ = model.to_pst(sol.ys)
    return np.asarray(p[..., 0]), np.asarray(s[..., 0])


@register("tian2021_fig3", "Tian 2021 Fig. 3: (p, s) phase portraits for no, weak and strong weight decay")
def fig3_phase_portraits(fast: bool = False):
    n_grid = 25 if fast else 61
    p_lim, s_lim = (-0.45, 1.25), (0.0, 1.25)
    P, S = np.meshgrid(np.linspace(*p_lim, n_grid), np.linspace(*s_lim, n_grid))
    data = ModeData.isotropic(FIG3_SIGMA2)
    lam_s = 1.0 + FIG3_SIGMA2
    eta_c = float(th.collapse_threshold_eta(FIG3_TAU, lam_s))
    out = {"p_grid": P, "s_grid": S, "etas": np.array(FIG3_ETAS), "sigma2": FIG3_SIGMA2, "tau": FIG3_TAU,
           "alpha_p": FIG3_ALPHA_P, "eta_c": eta_c, "starts": FIG3_STARTS}

    fig = Figure(figsize=(13.5, 4.4), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    p_line = np.linspace(*p_lim, 400)
    for k, (ax, eta) in enumerate(zip(axes, FIG3_ETAS)):
        params = TianParams(alpha_p=FIG3_ALPHA_P, eta=eta, tau=FIG3_TAU)
        dP, dS = _vector_field(params, data, P, S)
        speed = np.hypot(dP, dS)
        ax.streamplot(P, S, dP, dS, color=FLOW, density=0.9 if fast else 1.3, linewidth=0.6, arrowsize=0.7)
        tp, ts_ = _trajectories(params, data, t1=60.0, n_save=200 if fast else 600)
        for pi, si in zip(tp, ts_):
            ax.plot(pi, si, color="#08306b", lw=1.8, alpha=0.85)
            ax.plot(pi[0], si[0], "o", color="#08306b", ms=3.5)
        ax.plot(p_line, p_line**2 / FIG3_ALPHA_P, "k--", lw=1.2, label=r"$s = p^2/\alpha_p$")
        if eta == 0:
            p_star = FIG3_TAU / lam_s
            seg = np.linspace(*p_lim, 800)
            stable_s0 = (seg < 0) | (seg > p_star)  # linearised ds/dt = 2 p (tau - lam_s p) s
            ax.plot(np.where(stable_s0, seg, np.nan), 0 * seg, color=STABLE, lw=4, solid_capstyle="butt")
            ax.plot(np.where(~stable_s0, seg, np.nan), 0 * seg, color=UNSTABLE, lw=4, solid_capstyle="butt")
            ax.axvline(p_star, color=STABLE, lw=3)
            fixed = np.array([[p_star, np.nan, np.nan]])
            title = r"no weight decay, $\eta = 0$"
        else:
            fp = th.parabola_fixed_points(FIG3_TAU, eta, lam_s)
            ax.plot([0], [0], "o", color=STABLE, ms=9, zorder=5)
            if bool(fp.exists):
                pm, pp = float(fp.p_minus), float(fp.p_plus)
                ax.plot([pm], [pm**2 / FIG3_ALPHA_P], "o", color=UNSTABLE, ms=7, mec="white", zorder=6)
                ax.plot([pp], [pp**2 / FIG3_ALPHA_P], "o", color=STABLE, ms=9, zorder=5)
                ax.annotate(rf"$p^*_- = {pm:.3f}$ (saddle)", (pm, pm**2), xytext=(0.12, 0.3),
                            arrowprops=dict(arrowstyle="->", color=UNSTABLE), color=UNSTABLE, fontsize=9, bbox=LABEL_BOX)
                ax.annotate(rf"$p^*_+ = {pp:.3f}$", (pp, pp**2), xytext=(0.78, 0.25),
                            arrowprops=dict(arrowstyle="->", color=STABLE), color=STABLE, fontsize=9, bbox=LABEL_BOX)
                fixed = np.array([[0.0, pm, pp]])
                title = rf"weak weight decay, $\eta = {eta:g}$"
            else:
                fixed = np.array([[0.0, np.nan, np.nan]])
                title = rf"strong weight decay, $\eta = {eta:g} > \eta_c = {eta_c:.3g}$"
        ax.set_title(title)
        ax.set_xlim(p_lim)
        ax.set_ylim(-0.02, s_lim[1])
        ax.set_xlabel(r"predictor eigenvalue $p_j$")
        out[f"dp_{k}"], out[f"ds_{k}"], out[f"speed_{k}"] = dP, dS, speed
        out[f"traj_p_{k}"], out[f"traj_s_{k}"] = tp, ts_
        out[f"fixed_points_{k}"] = fixed
    axes[0].set_ylabel(r"online eigenvalue $s_j$ of $WW^\top$")
    axes[0].legend(loc="upper left", frameon=False)
    fig.suptitle(rf"Tian et al. 2021, Fig. 3: per-mode flow (Eqs. 11-12), $\tau = 1$, $\alpha_p = 1$, "
                 rf"$\sigma^2 = {FIG3_SIGMA2}$; red stable, green unstable fixed points")
    return fig, out
