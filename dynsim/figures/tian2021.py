r"""Phase-portrait figures of Tian, Chen & Ganguli (2021) from dynsim's ODEs and closed forms
(the time-course figures 5, 7 and 9 are in [`dynsim.figures.tian2021_training`][dynsim.figures.tian2021_training]).

`tian2021_fig3`: the (p, s) phase portrait of Eqs. 11-12 at fixed τ = 1, α_p = 1 for no
(η = 0), weak (η = 0.01) and strong (η = 1) weight decay. The paper does not state σ²;
we use σ² = 0.5, the value of the tests' oracles, for which
η_c = τ²/(4(1+σ²)) = 1/6, so η = 0.01 has both non-zero fixed points and η = 1 collapses
everywhere. Red: stable fixed points; green: unstable; blue: flow lines; dashed black: the
invariant parabola s = p²/α_p; thick lines: trajectories integrated with [`dynsim.solve_batch`][dynsim.solvers.solve_batch].

`tian2021_fig4`: the 1-D fixed-point diagrams of Eq. 16 on the parabola,
$\dot p = -(1+\sigma^2)\,p\,(p - p^*_-)(p - p^*_+)$ (the paper's caption drops the positive factor
$1+\sigma^2$, Tian et al. 2021), for η = 0 (p = 0 half-stable), 0 < η < η_c (0 and p*₊ stable,
p*₋ unstable) and η > η_c (only 0), at τ = 1, σ² = 0.5 (η_c = 1/6; the figure is a schematic in the paper).

`tian2021_fig10`: the scalar BYOL flows of App. D.4 at λ_s = 1, λ_d = 1/2, α_p = β = 1, η = 0 (stated in
the paper), arrows normalised to unit length: (a) the (w, w_p) plane at fixed w_a = 1 with the hyperbola of
fixed points $w_pw = w_a\lambda_d/\lambda_s$; (b) the invariant plane w = w_p against w_a, nullclines
w_a = w and $w^2 = w_a\lambda_d/\lambda_s$, the stable point w = w_a = λ_d/λ_s and the origin,
unstable for w > 0 (the paper's panel) but reached from w < 0 (the line w = 0 is invariant, half-filled marker); (c) no predictor (w_p ≡ 1): every trajectory collapses (Tian et al. 2021).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from dynsim.analytic import tian2021 as th
from dynsim.eigenmodes import ModeState, PSTState, TianModes, TianPST
from dynsim.figures._registry import register
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
                      method="rk45", rtol=1e-8, atol=1e-10)
    p, s, _ = model.to_pst(sol.ys)
    return np.asarray(p[..., 0]), np.asarray(s[..., 0])


@register("tian2021_fig3", "Tian 2021 Fig. 3: (p, s) phase portraits for no, weak and strong weight decay", cost=9)
def fig3_phase_portraits(fast: bool = False):
    r"""Draw Fig. 3 (module docstring); data: the fields, trajectories and fixed points per panel."""
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


# --- Fig. 4 ------------------------------------------------------------------------------------
FIG4_ETAS = (0.0, 0.05, 0.25)  # none; weak (< eta_c = 1/6 at sigma2 = 0.5, tau = 1); strong (> eta_c)


def fig4_data(fast: bool = False) -> dict:
    """Eq. 16 on the parabola in closed form and from the (p, s) right-hand side of Eqs. 11-12 at
    $s = p^2/\\alpha_p$ (an independent evaluation), with the closed-form fixed points."""
    p = np.linspace(-0.12, 0.8, 93 if fast else 461)
    lam_s = 1.0 + FIG3_SIGMA2
    data = ModeData.isotropic(FIG3_SIGMA2)
    out = {"p": p, "etas": np.array(FIG4_ETAS), "sigma2": FIG3_SIGMA2, "tau": FIG3_TAU,
           "eta_c": float(th.collapse_threshold_eta(FIG3_TAU, lam_s))}
    for k, eta in enumerate(FIG4_ETAS):
        params = TianParams(alpha_p=FIG3_ALPHA_P, eta=eta, tau=FIG3_TAU)
        out[f"rate_eq16_{k}"] = np.asarray(th.parabola_rate(p, FIG3_TAU, eta, lam_s))
        out[f"rate_ode_{k}"] = _vector_field(params, data, p, p**2 / FIG3_ALPHA_P)[0]
        fp = th.parabola_fixed_points(FIG3_TAU, eta, lam_s)
        out[f"fixed_points_{k}"] = (np.array([0.0, float(fp.p_minus), float(fp.p_plus)]) if bool(fp.exists)
                                    else np.array([0.0, np.nan, np.nan]))
    return out


@register("tian2021_fig4", "Tian 2021 Fig. 4: 1-D fixed-point diagrams of Eq. 16 for eta = 0, below and above eta_c", cost=3)
def fig4_fixed_point_diagrams(fast: bool = False):
    r"""Draw [`fig4_data`][dynsim.figures.tian2021.fig4_data]: Eq. 16 per weight decay with its fixed points and the direction of motion."""
    d = fig4_data(fast)
    p = d["p"]
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    titles = (r"(a) $\eta = 0$: $p = 0$ half-stable",
              rf"(b) $0 < \eta = {FIG4_ETAS[1]:g} < \eta_c$: $p^*_-$ unstable",
              rf"(c) $\eta = {FIG4_ETAS[2]:g} > \eta_c = {d['eta_c']:.3g}$: only collapse")
    for k, ax in enumerate(axes):
        rate = d[f"rate_eq16_{k}"]
        ax.axhline(0, color="0.4", lw=0.8)
        ax.plot(p, rate, color=FLOW, lw=2)
        ax.plot(p[::12], d[f"rate_ode_{k}"][::12], "x", color="k", ms=4,
                label="Eqs. 11-12 at $s = p^2/\\alpha_p$" if k == 0 else None)
        # direction of motion along the axis
        for x0 in np.linspace(p[4], p[-5], 9):
            r = float(np.interp(x0, p, rate))
            if abs(r) > 1e-4:
                ax.annotate("", (x0 + 0.025 * np.sign(r), 0), (x0 - 0.025 * np.sign(r), 0),
                            arrowprops=dict(arrowstyle="->", color="0.3", lw=1.2))
        zero, pm, pp = d[f"fixed_points_{k}"]
        if k == 0:
            ax.plot([0], [0], "o", ms=10, color=STABLE, fillstyle="left", mec=STABLE, zorder=5)
            p_star = FIG3_TAU / (1 + FIG3_SIGMA2)
            ax.plot([p_star], [0], "o", ms=10, color=STABLE, zorder=5)
            ax.annotate(r"$\tau/(1+\sigma^2)$", (p_star, 0), xytext=(p_star - 0.12, 0.02), fontsize=9)
        else:
            ax.plot([0], [0], "o", ms=10, color=STABLE, zorder=5)
            if np.isfinite(pm):
                ax.plot([pm], [0], "o", ms=10, mfc="white", mec=UNSTABLE, mew=2, zorder=5)
                ax.plot([pp], [0], "o", ms=10, color=STABLE, zorder=5)
                ax.annotate(r"$p^*_-$", (pm, 0), xytext=(pm + 0.01, 0.012), color=UNSTABLE, fontsize=10)
                ax.annotate(r"$p^*_+$", (pp, 0), xytext=(pp - 0.02, 0.012), color=STABLE, fontsize=10)
        ax.set_title(titles[k], fontsize=10)
        ax.set_xlabel("$p$ (on the parabola $s = p^2/\\alpha_p$)")
    axes[0].set_ylabel(r"$\dot p = -(1+\sigma^2)\,p\,(p-p^*_-)(p-p^*_+)$")
    axes[0].legend(fontsize=8, frameon=False, loc="lower left")
    fig.suptitle(rf"Tian et al. 2021, Fig. 4: fixed points of Eq. 16, $\tau = 1$, $\sigma^2 = {FIG3_SIGMA2}$ "
                 r"(red: stable, open green: unstable; the caption's missing factor $1+\sigma^2$ restored)")
    return fig, d


# --- Fig. 10 -----------------------------------------------------------------------------------
FIG10_DATA = dict(lambda_s=1.0, lambda_d=0.5)
FIG10_PARAMS = dict(alpha_p=1.0, beta=1.0, eta=0.0)
FIG10_T1 = 200.0


def _mode_rhs(model, w, w_p, w_a):
    params, data = TianParams(**FIG10_PARAMS), ModeData(**FIG10_DATA)
    d = model(0.0, ModeState(jnp.asarray(w), jnp.asarray(w_p), jnp.asarray(w_a)), (params, data))
    return np.asarray(d.w), np.asarray(d.w_p), np.asarray(d.w_a)


def fig10_data(fast: bool = False) -> dict:
    """Vector fields of the scalar system (App. D.4, [`dynsim.TianModes`][dynsim.eigenmodes.TianModes] with EMA, η = 0) on the three
    planes of the figure, and trajectories integrated in the full 3-D system (planes (b), (c) are invariant)."""
    n = 21 if fast else 31
    byol, nopred = TianModes(target="ema"), TianModes(target="ema", predictor="identity")
    g = np.linspace(-1.5, 1.5, n)
    A, B = np.meshgrid(g, g)  # x-axis, y-axis of each panel
    ones = np.ones_like(A)
    out = {"grid_x": A, "grid_y": B, **{k: v for k, v in FIG10_DATA.items()}, **FIG10_PARAMS}
    dw, dwp, _ = _mode_rhs(byol, A, B, ones)  # (a): x = w, y = w_p, w_a = 1
    out["a_dx"], out["a_dy"] = dw, dwp
    dw, dwp, dwa = _mode_rhs(byol, A, A, B)  # (b): x = w = w_p, y = w_a
    out["b_dx"], out["b_dy"], out["b_dwp"] = dw, dwa, dwp
    dw, _, dwa = _mode_rhs(nopred, A, ones, B)  # (c): x = w, y = w_a, no predictor
    out["c_dx"], out["c_dy"] = dw, dwa
    starts = np.array([[0.2, 1.2], [1.3, 0.6], [-0.8, 1.0], [0.05, 0.05], [-1.2, -0.7], [1.0, -1.0]])
    for key, model, wp in (("b", byol, None), ("c", nopred, 1.0)):
        w0, wa0 = starts[:, 0], starts[:, 1]
        y0 = ModeState(jnp.asarray(w0)[:, None], jnp.asarray(w0 if wp is None else np.ones_like(w0))[:, None],
                       jnp.asarray(wa0)[:, None])
        sol = solve_batch(model, y0, (TianParams(**FIG10_PARAMS), ModeData(**FIG10_DATA)), FIG10_T1,
                          saveat=120 if fast else 400, batch_y0=True, batch_args=None, method="rk45",
                          rtol=1e-9, atol=1e-11)
        out[f"{key}_traj_w"], out[f"{key}_traj_wa"] = np.asarray(sol.ys.w[..., 0]), np.asarray(sol.ys.w_a[..., 0])
        out[f"{key}_traj_wp"] = np.asarray(sol.ys.w_p[..., 0])
    out["starts"] = starts
    return out


def _unit_quiver(ax, X, Y, U, V, color=FLOW):
    norm = np.hypot(U, V)
    safe = np.where(norm == 0, 1.0, norm)
    ax.quiver(X, Y, U / safe, V / safe, color=color, angles="xy", scale=28, width=0.004, alpha=0.75)


@register("tian2021_fig10", "Tian 2021 Fig. 10: scalar BYOL flows (w-w_p plane, invariant plane w = w_p, no predictor)", cost=7)
def fig10_scalar_flows(fast: bool = False):
    r"""Draw [`fig10_data`][dynsim.figures.tian2021.fig10_data]: the three planes of App. D.4 with unit arrows, fixed points and trajectories."""
    d = fig10_data(fast)
    X, Y = d["grid_x"], d["grid_y"]
    k = d["lambda_d"] / d["lambda_s"]
    fig = Figure(figsize=(13.5, 4.5), layout="constrained")
    a, b, c = fig.subplots(1, 3)
    _unit_quiver(a, X, Y, d["a_dx"], d["a_dy"])
    w = np.linspace(-1.5, 1.5, 600)
    with np.errstate(divide="ignore"):
        hyper = np.where(np.abs(w) > 0.2, k / w, np.nan)
    a.plot(w, hyper, color=STABLE, lw=3, label=r"fixed points $w_pw = w_a\lambda_d/\lambda_s$")
    a.set_xlabel("$w$")
    a.set_ylabel("$w_p$")
    a.set_title(r"(a) $w_a = 1$ fixed", fontsize=10)
    a.legend(fontsize=8, frameon=False, loc="lower left")
    _unit_quiver(b, X, Y, d["b_dx"], d["b_dy"])
    b.plot(w, w, "--", color="0.3", lw=1.2, label=r"nullcline $w_a = w$")
    b.plot(w, w**2 / k, ":", color="0.3", lw=1.5, label=r"nullcline $w^2 = w_a\lambda_d/\lambda_s$")
    for key, ax in (("b", b), ("c", c)):
        for tw, ta in zip(d[f"{key}_traj_w"], d[f"{key}_traj_wa"]):
            ax.plot(tw, ta, color="#08306b", lw=1.6)
            ax.plot(tw[0], ta[0], "o", color="#08306b", ms=3.5)
    b.plot([0], [0], "o", ms=9, color=STABLE, fillstyle="left", mec=STABLE, zorder=5)
    b.plot([k], [k], "o", ms=9, color=STABLE, zorder=5)
    b.set_xlabel("$w = w_p$")
    b.set_ylabel("$w_a$")
    b.set_title(r"(b) invariant plane $w = w_p$ ($\alpha_p = 1$): stable at $\lambda_d/\lambda_s$", fontsize=10)
    b.legend(fontsize=8, frameon=False, loc="lower right")
    _unit_quiver(c, X, Y, d["c_dx"], d["c_dy"])
    c.plot([0], [0], "o", ms=9, color=STABLE, zorder=5)
    c.set_xlabel("$w$")
    c.set_ylabel("$w_a$")
    c.set_title(r"(c) no predictor ($w_p \equiv 1$): only collapse", fontsize=10)
    for ax in (a, b, c):
        ax.set_xlim(-1.5, 1.5)
        ax.set_ylim(-1.5, 1.5)
        ax.set_aspect("equal")
    fig.suptitle(r"Tian et al. 2021, Fig. 10: scalar BYOL (App. D.4), $\lambda_s = 1$, $\lambda_d = 1/2$, "
                 r"$\alpha_p = \beta = 1$, $\eta = 0$; arrows of unit length")
    return fig, d
