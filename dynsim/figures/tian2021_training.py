r"""Time-course figures of Tian, Chen & Ganguli (2021): training dynamics of the decoupled modes and of the
full matrix system. Parameters the paper leaves unstated are module constants,
named in each figure's title and listed here.

`tian2021_fig5`: the decoupled per-mode dynamics (Eqs. 11-13; [`dynsim.TianModes`][dynsim.eigenmodes.TianModes] with an EMA target,
the symmetric-predictor reduction) iterated by Euler steps at the paper's lr α = 0.01 with
[`dynsim.gradient_descent`][dynsim.solvers.gradient_descent]. Columns: $\lambda_{\min}(K)$ of Theorem 3 (diagonal in the mode basis,
$K_j = \lambda_s(\tfrac{\alpha_p}{2}s_j + p_j^2) - \tau_j\lambda_d p_j + \tfrac32\eta$), $p_j$ and
$s_j$ over iterations. Top row: η ∈ {0, 0.04, 0.12, 0.2} at β = 0.4 (the paper's baseline is η = 0.04,
β = 0.4); bottom row: β ∈ {0.4, 0.1, 0.02} at η = 0.04. Unstated, chosen here: α_p = 1, σ² = 0.5
(η_c = 1/6), four modes from $p_j(0) = 0.3$, $s_j(0)$ ∈ {0.2, 0.1, 0.05, 0.02}, τ(0) = 0.

`tian2021_fig7`: Assumption 1 checked on the full matrix flow (Eqs. 2-4, [`dynsim.TianMatrixFlow`][dynsim.analytic.reference.TianMatrixFlow],
non-symmetric predictor) with X = I, X' = σ²I, σ = 0.03 as printed: the normalised correlation
$\langle W_a, W\rangle_F/(\|W_a\|_F\|W\|_F)$ over iterations (lr 0.01) for EMA decays
γ_a ∈ {0.9, 0.99, 0.996} (β = (1−γ_a)/lr) and η ∈ {0, 0.01, 0.1}, mean ± std over 10 seeds, W_a(0) = 0.
Unstated, chosen here: n1 = 16, n2 = 8, W(0) and W_p(0) with i.i.d. N(0, 0.01/n1) and N(0, 0.01/n2)
entries (a small start), α_p = 1, 5000 iterations. In this setting the correlation stays above 0.98 for every
γ_a and η (lowest for γ_a = 0.996 while W grows); the paper reports about 0.9 for its (unstated) setting.

`tian2021_fig9`: the commutator $\|[F, W_p]\|_F$ over time for the symmetrised dynamics
(Eqs. 7-8, [`dynsim.TianCorrelationFlow`][dynsim.analytic.reference.TianCorrelationFlow]) at constant τ ∈ {0.5, 1} and η ∈ {0, 0.01, 0.1}. Unstated,
chosen here: n = 5, α_p = 1, σ² = 0.5, F(0) = G Gᵀ/100 and W_p(0) = I/3 + (H + Hᵀ)/20 for Gaussian G, H
(seed 0), a start with K(0) indefinite, so the bound of Theorem 3 does not hold
at first and ‖L‖ can grow before it decays).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from dynsim.analytic import tian2021 as th
from dynsim.eigenmodes import TianModes
from dynsim.figures._registry import register
from dynsim.networks import CorrelationState, TianCorrelationFlow, TianMatrixFlow
from dynsim.params import ModeData, MomentData, TianParams
from dynsim.solvers import gradient_descent, solve, solve_batch

LR = 0.01
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]

# --- Fig. 5 ------------------------------------------------------------------------------------
FIG5_SIGMA2, FIG5_ALPHA_P = 0.5, 1.0
FIG5_P0 = 0.3
FIG5_S0 = (0.2, 0.1, 0.05, 0.02)
FIG5_ETAS = (0.0, 0.04, 0.12, 0.2)  # at beta = 0.4
FIG5_BETAS = (0.4, 0.1, 0.02)  # at eta = 0.04


def mode_K(p, s, tau, params: TianParams, data: ModeData):
    r"""Theorem 3's $K$ in the mode basis (diagonal): $K_j = \lambda_s(\tfrac{\alpha_p}{2}s_j +
    p_j^2) - \tau_j\lambda_d p_j + \tfrac32\eta$, i.e. [`dynsim.analytic.tian2021.theorem3_K`][dynsim.analytic.tian2021.theorem3_K] of each mode
    as a 1×1 system ($F = s_j$, $W_p = p_j$) with its own τ_j. Shapes broadcast; returns `K_j`."""
    one = lambda x: np.asarray(x)[..., None, None]  # noqa: E731  (each mode a 1x1 matrix)
    K = th.theorem3_K(one(s), one(p), one(tau), params.eta, params.alpha_p, data.lambda_s, data.lambda_d)
    return np.asarray(K)[..., 0, 0]


def fig5_data(fast: bool = False) -> dict:
    """Euler iterations of Eqs. 11-13 for every η (top row) and β (bottom row) of the figure."""
    model = TianModes(target="ema")
    data = ModeData.isotropic(FIG5_SIGMA2)
    s0 = np.array(FIG5_S0)
    y0 = model.from_pst(p=np.full_like(s0, FIG5_P0), s=s0, tau=0.0)
    n_steps = 20_000 if fast else 60_000
    out = {"lr": LR, "sigma2": FIG5_SIGMA2, "alpha_p": FIG5_ALPHA_P, "etas": np.array(FIG5_ETAS),
           "betas": np.array(FIG5_BETAS), "s0": s0, "p0": FIG5_P0,
           "eta_c": float(th.collapse_threshold_eta(1.0, 1 + FIG5_SIGMA2))}
    runs = [("eta", i, TianParams(alpha_p=FIG5_ALPHA_P, beta=0.4, eta=e)) for i, e in enumerate(FIG5_ETAS)]
    runs += [("beta", i, TianParams(alpha_p=FIG5_ALPHA_P, beta=b, eta=0.04)) for i, b in enumerate(FIG5_BETAS)]
    for row, i, params in runs:
        sol = gradient_descent(model, y0, (params, data), LR, n_steps, n_saves=n_steps // 50)
        p, s, tau = (np.asarray(a) for a in model.to_pst(sol.ys))
        tau = np.nan_to_num(tau)  # undefined where a mode has collapsed to w = 0 exactly
        K = np.asarray(mode_K(p, s, tau, params, data))
        out[f"{row}_{i}_iter"] = np.asarray(sol.ts) / LR
        out[f"{row}_{i}_p"], out[f"{row}_{i}_s"], out[f"{row}_{i}_tau"] = p, s, tau
        out[f"{row}_{i}_lambda_min_K"] = K.min(axis=-1)
    return out


@register("tian2021_fig5", "Tian 2021 Fig. 5: decoupled dynamics (Eqs. 11-13), lambda_min(K), p_j, s_j for several eta, beta", cost=8)
def fig5_decoupled(fast: bool = False):
    r"""Draw [`fig5_data`][dynsim.figures.tian2021_training.fig5_data]: λ_min(K), p_j and s_j over iterations for each η (top) and β (bottom)."""
    d = fig5_data(fast)
    fig = Figure(figsize=(13.5, 7.2), layout="constrained")
    axes = fig.subplots(2, 3, sharex="row")
    for r, (row, values, sym) in enumerate((("eta", FIG5_ETAS, r"\eta"), ("beta", FIG5_BETAS, r"\beta"))):
        for i, v in enumerate(values):
            c = PALETTE[i]
            it = d[f"{row}_{i}_iter"][1:]  # log axis: from the first save (50 iterations)
            axes[r, 0].plot(it, d[f"{row}_{i}_lambda_min_K"][1:], color=c, lw=1.6, label=rf"${sym} = {v:g}$")
            axes[r, 1].plot(it, d[f"{row}_{i}_p"][1:], color=c, lw=1.2)
            axes[r, 2].plot(it, d[f"{row}_{i}_s"][1:], color=c, lw=1.2)
        axes[r, 0].axhline(0, color="0.5", lw=0.8)
        axes[r, 0].set_ylabel(r"$\lambda_{\min}(K)$")
        axes[r, 1].set_ylabel("$p_j$ (predictor)")
        axes[r, 2].set_ylabel("$s_j$ (online, $WW^\\top$)")
        axes[r, 0].legend(fontsize=8, frameon=False)
        for ax in axes[r]:
            ax.set_xscale("log")
            ax.set_xlabel("iteration (Euler, lr = 0.01)")
    axes[0, 1].set_title(rf"top: vary $\eta$ at $\beta = 0.4$ ($\eta_c = {d['eta_c']:.3g}$)", fontsize=10)
    axes[1, 1].set_title(r"bottom: vary $\beta$ at $\eta = 0.04$ (small $\beta$: slow, and a small mode is lost)",
                         fontsize=10)
    fig.suptitle(r"Tian et al. 2021, Fig. 5: decoupled dynamics (Eqs. 11-13), EMA target from $\tau(0) = 0$; "
                 rf"unstated, chosen: $\alpha_p = 1$, $\sigma^2 = {FIG5_SIGMA2}$, $p_j(0) = {FIG5_P0}$, "
                 rf"$s_j(0) \in \{{{', '.join(f'{x:g}' for x in FIG5_S0)}\}}$")
    return fig, d


# --- Fig. 7 ------------------------------------------------------------------------------------
FIG7_SIGMA = 0.03
FIG7_GAMMAS = (0.9, 0.99, 0.996)
FIG7_ETAS = (0.0, 0.01, 0.1)
FIG7_N1, FIG7_N2, FIG7_SEEDS, FIG7_STEPS = 16, 8, 10, 5000
FIG7_INIT = 0.1  # W(0), W_p(0) entries ~ FIG7_INIT * N(0, 1/n): a small start, so that W turns while it grows


def correlation(W_a, W):
    r"""Normalised correlation $\langle W_a, W\rangle_F / (\|W_a\|_F\|W\|_F)$ over the last two axes
    (0 where W_a = 0)."""
    num = np.sum(W_a * W, axis=(-2, -1))
    den = np.linalg.norm(W_a, axis=(-2, -1)) * np.linalg.norm(W, axis=(-2, -1))
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def fig7_data(fast: bool = False) -> dict:
    """The matrix flow for every (γ_a, η) and seed; stores the correlation and the weights at the saves."""
    n_seeds = 3 if fast else FIG7_SEEDS
    rng = np.random.default_rng(0)
    W0 = FIG7_INIT * rng.standard_normal((n_seeds, FIG7_N2, FIG7_N1)) / np.sqrt(FIG7_N1)
    Wp0 = FIG7_INIT * rng.standard_normal((n_seeds, FIG7_N2, FIG7_N2)) / np.sqrt(FIG7_N2)
    model = TianMatrixFlow(target="ema")
    y0 = jax.vmap(model.initial_state)(jnp.asarray(W0), jnp.asarray(Wp0))
    data = MomentData.isotropic(FIG7_N1, FIG7_SIGMA**2)
    steps = 1000 if fast else FIG7_STEPS
    n_save = 50 if fast else 200
    out = {"gammas": np.array(FIG7_GAMMAS), "etas": np.array(FIG7_ETAS), "sigma": FIG7_SIGMA, "lr": LR,
           "n1": FIG7_N1, "n2": FIG7_N2, "n_seeds": n_seeds}
    for g, gamma in enumerate(FIG7_GAMMAS):
        for e, eta in enumerate(FIG7_ETAS):
            params = TianParams(alpha_p=1.0, beta=(1 - gamma) / LR, eta=eta)
            sol = solve_batch(model, y0, (params, data), LR * steps, saveat=n_save, batch_y0=True, batch_args=None,
                              method="rk45", rtol=1e-8, atol=1e-10)
            W, W_a = np.asarray(sol.ys.W), np.asarray(sol.ys.W_a)
            out[f"corr_{g}_{e}"] = correlation(W_a, W)  # (seeds, T)
            out[f"W_{g}_{e}"], out[f"W_a_{g}_{e}"] = W, W_a
            out["t"] = np.asarray(sol.ts[0])
    out["iter"] = out["t"] / LR
    return out


@register("tian2021_fig7", "Tian 2021 Fig. 7: correlation of W_a and W under the full matrix dynamics (Eqs. 2-4)", cost=13)
def fig7_correlation(fast: bool = False):
    r"""Draw [`fig7_data`][dynsim.figures.tian2021_training.fig7_data]: mean ± std over seeds of corr(W_a, W) per η panel and γ_a."""
    d = fig7_data(fast)
    fig = Figure(figsize=(13, 4), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    for e, (ax, eta) in enumerate(zip(axes, FIG7_ETAS)):
        for g, gamma in enumerate(FIG7_GAMMAS):
            corr = d[f"corr_{g}_{e}"]
            m, sd = corr.mean(axis=0), corr.std(axis=0)
            ax.plot(d["iter"][1:], m[1:], color=PALETTE[g], lw=1.6, label=rf"$\gamma_a = {gamma:g}$")
            ax.fill_between(d["iter"][1:], (m - sd)[1:], (m + sd)[1:], color=PALETTE[g], alpha=0.25, lw=0)
        ax.set_xscale("log")
        ax.set_title(rf"$\eta = {eta:g}$", fontsize=10)
        ax.set_xlabel("iteration (lr = 0.01)")
        ax.set_ylim(min(0.95, float(np.min(m[1:] - sd[1:])) - 0.005), 1.002)
    axes[0].set_ylabel(r"corr$(W_a, W) = \langle W_a, W\rangle / \|W_a\|\|W\|$")
    axes[0].legend(fontsize=8, frameon=False, loc="lower right")
    fig.suptitle(rf"Tian et al. 2021, Fig. 7: Assumption 1 on the full matrix flow (Eqs. 2-4), $X = I$, "
                 rf"$\sigma = {FIG7_SIGMA}$, mean ± std of {d['n_seeds']} seeds; unstated, chosen: "
                 rf"$n_1 = {FIG7_N1}$, $n_2 = {FIG7_N2}$, $\alpha_p = 1$, $W(0) \sim N(0, {FIG7_INIT**2:g}/n_1)$")
    return fig, d


# --- Fig. 9 ------------------------------------------------------------------------------------
FIG9_N, FIG9_SIGMA2 = 5, 0.5
FIG9_TAUS = (0.5, 1.0)
FIG9_ETAS = (0.0, 0.01, 0.1)


def fig9_start(n: int = FIG9_N, seed: int = 0) -> CorrelationState:
    """F(0) = G Gᵀ/100 and W_p(0) = I/3 + (H + Hᵀ)/20 (Tian et al. 2021)."""
    rng = np.random.default_rng(seed)
    G, H = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    return CorrelationState(jnp.asarray(G @ G.T / 100), jnp.asarray(np.eye(n) / 3 + (H + H.T) / 20))


def positive_from(lam_min) -> int:
    """First save index from which every later `lam_min` is > 0 (`len` if the last one is not)."""
    bad = np.nonzero(np.asarray(lam_min) <= 0)[0]
    return 0 if bad.size == 0 else int(bad[-1]) + 1


def fig9_data(fast: bool = False) -> dict:
    """Eqs. 7-8 from [`fig9_start`][dynsim.figures.tian2021_training.fig9_start] for every (τ, η); ‖[F, W_p]‖_F and λ_min(K) at the saves."""
    model = TianCorrelationFlow()
    data = ModeData.isotropic(FIG9_SIGMA2)
    y0 = fig9_start()
    t1 = 40.0
    out = {"taus": np.array(FIG9_TAUS), "etas": np.array(FIG9_ETAS), "sigma2": FIG9_SIGMA2, "n": FIG9_N}
    for a, tau in enumerate(FIG9_TAUS):
        for e, eta in enumerate(FIG9_ETAS):
            params = TianParams(alpha_p=1.0, eta=eta, tau=tau)
            sol = solve(model, y0, (params, data), t1, saveat=200 if fast else 800, method="rk45",
                        rtol=1e-10, atol=1e-13)
            F, Wp = sol.ys.F, sol.ys.W_p
            L = th.commutator(F, Wp)
            K = th.theorem3_K(F, Wp, tau, eta, 1.0, data.lambda_s, data.lambda_d)
            out["t"] = np.asarray(sol.ts)
            out[f"F_{a}_{e}"], out[f"W_p_{a}_{e}"] = np.asarray(F), np.asarray(Wp)
            out[f"commutator_{a}_{e}"] = np.asarray(jnp.linalg.norm(L, axis=(-2, -1)))
            out[f"lambda_min_K_{a}_{e}"] = np.asarray(jnp.linalg.eigvalsh(K)[..., 0])
    return out


@register("tian2021_fig9", "Tian 2021 Fig. 9: commutator ||[F, W_p]|| over time (Eqs. 7-8) for constant tau and eta", cost=7)
def fig9_commutator(fast: bool = False):
    r"""Draw [`fig9_data`][dynsim.figures.tian2021_training.fig9_data]: ‖[F, W_p]‖_F over time per τ panel and η, ticked where K stays positive definite."""
    d = fig9_data(fast)
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for a, (ax, tau) in enumerate(zip(axes, FIG9_TAUS)):
        for e, eta in enumerate(FIG9_ETAS):
            L = d[f"commutator_{a}_{e}"]
            ax.semilogy(d["t"], np.maximum(L, 1e-16), color=PALETTE[e], lw=1.6, label=rf"$\eta = {eta:g}$")
            k = positive_from(d[f"lambda_min_K_{a}_{e}"])
            if 0 < k < len(L):  # K positive definite from here on: Theorem 3's bound applies
                ax.plot(d["t"][k], L[k], "|", color=PALETTE[e], ms=14, mew=2)
        ax.set_title(rf"$\tau = {tau:g}$ (ticks: $K \succ 0$ from here on)", fontsize=10)
        ax.set_xlabel("t")
        ax.legend(fontsize=8, frameon=False)
    axes[0].set_ylabel(r"$\|[F, W_p]\|_F$")
    fig.suptitle(rf"Tian et al. 2021, Fig. 9: eigenspace alignment under Eqs. 7-8 ($n = {FIG9_N}$, "
                 rf"$\sigma^2 = {FIG9_SIGMA2}$, $\alpha_p = 1$); unstated, chosen: $W_p(0) \approx I/3$, small $F(0)$")
    return fig, d
