r"""Figures from parameter sweeps and boundary searches ([`dynsim.sweeps`][dynsim.sweeps]).

`sweep_tian_boundary`: (a) complete collapse of the Tian per-mode system with a fixed target ratio
τ = 1 (Tian et al. 2021, Obs. 5) over (σ², η), with the analytic boundary η = τ²/(4(1+σ²)) dashed;
(b) mode strengths over time for two configurations on either side of the boundary at σ² = 1
(η_c = 1/8). `fast` uses a coarser grid.

`sweep_boundaries`: boundaries found by bisection where no closed form gives them (an EMA target, a
non-isotropic spectrum) and a sensitivity map (its docstring has the panels).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from dynsim.figures._registry import register


def boundary_sweep(fast: bool = False):
    """Run the `tian_boundary` example (coarser when `fast`) in a temporary folder; return the loaded result."""
    from dynsim.sweeps import load, load_config, run_sweep
    from dynsim.sweeps import example_path

    path = example_path("tian_boundary")
    over = ["grid.sigma2={start=0.0, stop=2.0, num=6}", "grid.eta={start=0.02, stop=0.3, num=8}"] if fast else []
    cfg = load_config(path, over)
    with tempfile.TemporaryDirectory() as d:
        run_sweep(cfg, Path(d) / "run", progress=False, log=lambda *_: None)
        return load(Path(d) / "run")


@register("sweep_tian_boundary", "Tian et al. (2021) Obs. 5 collapse boundary recovered by `dynsim sweep`", cost=10)
def sweep_tian_boundary(fast: bool = False):
    r"""Run the packaged `tian_boundary` sweep into a temporary folder and draw its phase diagram (module docstring)."""
    from dynsim.sweeps import phase_data, phase_diagram, spectra_over_time

    res = boundary_sweep(fast)
    fig = Figure(figsize=(11.5, 4.0), constrained_layout=True)
    gs = fig.add_gridspec(1, 3, width_ratios=[1.35, 1, 1])
    phase_diagram(res, "sigma2", "eta", "collapsed", ax=fig.add_subplot(gs[0]))
    sig, eta = res.params["sigma2"], res.params["eta"]
    s_pick = sig[np.argmin(np.abs(sig - 1.0))]
    row = np.flatnonzero(sig == s_pick)
    eta_c = 1 / (4 * (1 + s_pick))
    below = row[eta[row] < eta_c][-1]
    above = row[eta[row] > eta_c][0]
    axes = [fig.add_subplot(gs[1]), fig.add_subplot(gs[2])]
    axes[1].sharey(axes[0])
    spectra_over_time(res, [below, above], axes=axes)
    xs, ys, Z = phase_data(res, "sigma2", "eta", "collapsed")
    data = {"sigma2": xs, "eta": ys, "collapsed": Z, "t": res.ts,
            "spectrum_below": res.summaries["spectrum"][below], "spectrum_above": res.summaries["spectrum"][above],
            "eta_below": eta[below], "eta_above": eta[above], "sigma2_pick": s_pick}
    return fig, data


EMA_START = {"w0": 0.8, "wp0": 0.8, "tau0": 0.0}  #: an EMA target started at zero, Tian et al.'s tau(0) = 0


def _ema(n_modes: int, fixed: dict, t1: float = 2000.0) -> dict:
    return {"model": {"kind": "tian_modes", "target": "ema", "n_modes": n_modes},
            "params": EMA_START | fixed, "solve": {"t1": t1, "saves": 2, "rtol": 1e-9, "atol": 1e-11},
            "metrics": {"collapse": "all"}, "run": {"chunk_size": 256}}


def boundaries_data(fast: bool = False) -> dict:
    r"""The data of `sweep_boundaries` (its docstring says what each panel holds)."""
    from dynsim.sweeps import find_boundary, load, load_config, run_sweep

    rtol = 1e-4 if fast else 1e-6
    n_beta = 7 if fast else 17
    betas = np.geomspace(0.01, 10.0, n_beta)
    sig_a = np.array([0.0, 0.5, 1.0])
    alphas = np.geomspace(0.05, 10.0, 7 if fast else 15)
    # panels (a) and (b) as one zip axis of rays: one search, one compiled program
    rays_a = {"sigma2": np.repeat(sig_a, n_beta), "beta": np.tile(betas, sig_a.size),
              "alpha_p": np.ones(sig_a.size * n_beta)}
    rays_b = {"sigma2": np.full(alphas.size, 0.5), "beta": np.full(alphas.size, 0.5), "alpha_p": alphas}
    rays = {k: np.concatenate([rays_a[k], rays_b[k]]).tolist() for k in rays_a}
    n_a = sig_a.size * n_beta

    def search(bracket):
        res = find_boundary(_ema(1, {}) | {"zip": rays, "boundary": {"parameter": "eta", "bracket": bracket,
                                                                     "rtol": rtol, "atol": 1e-9}})
        return res.summaries
    upper = search([0.01, 0.3])  # a slow predictor adds a collapse window near eta = 0: start above it
    lower = search([0.0, 0.01])  # that window's edge
    sig_c = np.linspace(0.0, 2.0, 5 if fast else 9)
    n_modes, decay = 4, 1.0
    c = {}
    for k in range(1, n_modes + 1):  # the switch from k to k - 1 surviving modes
        c[k] = find_boundary(_ema(n_modes, {"beta": 0.5, "data_decay": decay}) | {
            "grid": {"sigma2": sig_c.tolist()},
            "boundary": {"parameter": "eta", "bracket": [0.0, 0.3], "rtol": rtol, "criterion": "surviving_modes",
                         "level": k}})
    n_d = 8 if fast else 24
    eta_d = np.linspace(0.005, 0.25, n_d)
    beta_d = np.geomspace(0.01, 10.0, n_d)
    cfg_d = load_config(_ema(1, {"sigma2": 0.5}) | {"grid": {"beta": beta_d.tolist(), "eta": eta_d.tolist()},
                                                   "run": {"chunk_size": n_d * n_d},
                                                   "sensitivity": {"wrt": ["eta", "beta"],
                                                                   "outcomes": ["final_spectrum"]}})
    with tempfile.TemporaryDirectory() as tmp:
        run_sweep(cfg_d, Path(tmp) / "run", progress=False, log=lambda *_: None)
        d = load(Path(tmp) / "run")
    shape = (n_d, n_d)
    data = {
        "a_sigma2": sig_a, "a_beta": betas,
        "a_boundary": upper["boundary"][:n_a].reshape(sig_a.size, n_beta),
        "a_flag": upper["flag"][:n_a].reshape(sig_a.size, n_beta),
        "a_fold": 1.0 / (4 * (1 + sig_a)),
        "a_low_flag": lower["flag"][:n_a].reshape(sig_a.size, n_beta),
        "b_alpha_p": alphas, "b_boundary": upper["boundary"][n_a:], "b_flag": upper["flag"][n_a:],
        "b_low_boundary": lower["boundary"][n_a:], "b_low_flag": lower["flag"][n_a:], "b_fold": 1.0 / 6,
        "c_sigma2": sig_c, "c_lambda_d": np.arange(1, n_modes + 1, dtype=float) ** (-decay),
        "c_boundary": np.stack([c[k].summaries["boundary"] for k in range(1, n_modes + 1)]),
        "c_flag": np.stack([c[k].summaries["flag"] for k in range(1, n_modes + 1)]),
        "d_beta": beta_d, "d_eta": eta_d,
        "d_strength": d.summaries["final_spectrum"][:, 0].reshape(shape),
        "d_ds_deta": d.summaries["d_final_spectrum_d_eta"][:, 0].reshape(shape),
        "d_ds_dbeta": d.summaries["d_final_spectrum_d_beta"][:, 0].reshape(shape),
        "d_collapsed": d.summaries["collapsed"].reshape(shape),
        "rtol": rtol,
    }
    return data


@register("sweep_boundaries", "Collapse boundaries no closed form gives, by bisection, and a "
          "sensitivity map", cost=25)
def sweep_boundaries(fast: bool = False):
    r"""Boundaries found by bisection along rays (`dynsim boundary`) where no closed form gives them, Tian et al.'s
    per-mode system with an EMA target started at zero ($\tau(0) = 0$, $w = w_p = 0.8$; collapse by $t_1 = 2000$):

    (a) the weight decay $\eta$ above which every mode collapses, against the EMA rate $\beta$, for three noise
    levels; dashed: the fold $\eta_c = 1/(4(1+\sigma^2))$ of the fixed points (Obs. 5), which an EMA target shares
    (its fixed points have $\tau = 1$). A slow target ($\beta \lesssim 0.3$) collapses well below the fold.
    (b) The predictor rate $\alpha_p$ at $\beta = 0.5$, $\sigma^2 = 0.5$: the boundary above which the mode collapses
    rises to the fold as the predictor speeds up; a slow predictor ($\alpha_p \lesssim 0.3$) also collapses in a window
    $0 \le \eta < \eta_\text{low}$, so it survives only between the two curves (searched in the brackets [0.01, 0.3]
    and [0, 0.01]; why a little weight decay rescues it is not analysed here).
    (c) Non-isotropic data, 4 modes with $\lambda_{d,j} = 1/(j+1)$, $\beta = 0.5$: the weight decay at which the number
    of surviving modes drops from $k$ to $k - 1$; dashed: each mode's fold $\lambda_{d,j}/(4(1+\sigma^2))$.
    (d) The sensitivity $-\partial s/\partial\eta$ of the final strength over $(\beta, \eta)$ at $\sigma^2 = 0.5$, from a
    sweep's `[sensitivity]` table (forward mode through the solve), with (a)'s boundary: where the boundary is the
    fold ($\beta \gtrsim 0.3$), $s$ is most sensitive just below it, where $p_+^*$ has its square-root singularity
    ($\partial s^*/\partial\eta = -2p_+^*/\sqrt{1 - 4\eta(1+\sigma^2)}$, `docs/theory/tian2021.md#bottleneck`)."""
    from matplotlib.colors import LogNorm

    d = boundaries_data(fast)
    fig = Figure(figsize=(17.0, 4.0), constrained_layout=True)
    ax = fig.subplots(1, 4)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    for i, s2 in enumerate(d["a_sigma2"]):
        ok = d["a_flag"][i] == 0
        ax[0].semilogx(d["a_beta"][ok], d["a_boundary"][i][ok], "o-", ms=3.5, color=colors[i],
                       label=rf"$\sigma^2 = {s2:g}$")
        ax[0].axhline(d["a_fold"][i], color=colors[i], ls="--", lw=1)
    ax[0].set_xlabel(r"EMA rate $\beta$")
    ax[0].set_ylabel(r"collapse boundary $\eta$")
    ax[0].set_title("(a) EMA target: boundary vs the fold (dashed)", fontsize=9)
    ax[0].legend(fontsize=8)
    ok = d["b_flag"] == 0
    ax[1].semilogx(d["b_alpha_p"][ok], d["b_boundary"][ok], "o-", ms=3.5, color="tab:orange",
                   label="collapse above")
    low = d["b_low_flag"] == 0
    ax[1].semilogx(d["b_alpha_p"][low], d["b_low_boundary"][low], "s-", ms=3.5, color="tab:purple",
                   label=r"collapse below (window at $\eta \to 0$)")
    ax[1].axhline(d["b_fold"], color="tab:orange", ls="--", lw=1)
    ax[1].set_xlabel(r"predictor rate $\alpha_p$")
    ax[1].set_ylabel(r"$\eta$")
    ax[1].set_yscale("log")
    ax[1].set_ylim(3e-7, 0.3)
    ax[1].set_title(r"(b) predictor rate ($\beta = 0.5$, $\sigma^2 = 0.5$): survives between", fontsize=9)
    ax[1].legend(fontsize=8)
    for j in range(d["c_boundary"].shape[0]):
        ok = d["c_flag"][j] == 0
        ax[2].plot(d["c_sigma2"][ok], d["c_boundary"][j][ok], "o-", ms=3.5, color=colors[j],
                   label=f"{j + 1} -> {j} surviving")
        ax[2].plot(d["c_sigma2"], d["c_lambda_d"][j] / (4 * (1 + d["c_sigma2"])), "--", color=colors[j], lw=1)
    ax[2].set_xlabel(r"$\sigma^2$")
    ax[2].set_ylabel(r"$\eta$")
    ax[2].set_title(r"(c) 4 modes, $\lambda_{d,j} = 1/(j+1)$, $\beta = 0.5$ (dashed: folds)", fontsize=9)
    ax[2].legend(fontsize=8)
    Z = np.where(d["d_collapsed"], np.nan, -d["d_ds_deta"]).T
    mesh = ax[3].pcolormesh(d["d_beta"], d["d_eta"], Z, cmap="magma", shading="nearest",
                            norm=LogNorm(vmin=np.nanmin(Z[Z > 0]), vmax=np.nanmax(Z)))
    ax[3].set_xscale("log")
    ax[3].set_facecolor("0.85")
    fig.colorbar(mesh, ax=ax[3], label=r"$-\partial s(t_1)/\partial\eta$ (grey: collapsed)")
    k = int(np.argmin(np.abs(d["a_sigma2"] - 0.5)))
    ok = d["a_flag"][k] == 0
    ax[3].plot(d["a_beta"][ok], d["a_boundary"][k][ok], "k-", lw=1.5, label="boundary (bisection)")
    ax[3].set_xlim(d["d_beta"][0], d["d_beta"][-1])
    ax[3].set_ylim(d["d_eta"][0], d["d_eta"][-1])
    ax[3].set_xlabel(r"EMA rate $\beta$")
    ax[3].set_ylabel(r"$\eta$")
    ax[3].set_title(r"(d) sensitivity of the final strength, $\sigma^2 = 0.5$", fontsize=9)
    ax[3].legend(fontsize=8, loc="upper left")
    return fig, d
