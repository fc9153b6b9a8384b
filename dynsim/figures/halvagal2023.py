r"""Figures of Halvagal, Laborieux & Zenke (2023) regenerated from the per-mode ODEs ([`dynsim.SSLModes`][dynsim.eigenmodes.SSLModes]).

`halvagal2023_fig2_eigenvalues`: the eigenvalues of $WW^\top$ over training for the toy of
Halvagal et al. 2023 (N = 15, M = 10, σ = 0.1, $W_P = WW^\top$, no EMA) in the paper's eight settings,
Euclidean and cosine loss × {no stop-grad, no predictor, plain, IsoLoss}, with the views of the authors'
update rule: the online view clean, the target view $x + \sigma\xi$
(`dynsim.ModeData.clean_online`: $\ell_{11} = \ell_{12} = 1$, $\ell_{22} = 1 + \sigma^2$,
`docs/theory/views.md`), and a start with the published run's spectrum statistics (smallest eigenvalue
0.020, $\mathrm{tr}\,C_0 = 7.882$: `PAPER_SEED`, `PAPER_TRACE`). Time is shown in the
paper's iterations, $t/\mathrm{lr}$, with its learning rates (0.01; 0.1 for the cosine runs and
Euclidean no-predictor) and run lengths (1500 steps, 10⁵ without predictor). Under this law the Euclidean
level is $1/k$ with $k = \ell_{11}/\ell_{12} = 1$, the Euclidean no-predictor panel is flat (zero
expected drift) and without stop-gradient every mode decays at rate $(\lambda-1)^2 + \sigma^2$. The
cosine panel without stop-gradient uses the exact gradient of the loss through both branches (the published
toy's update for that panel is not the gradient of its loss). The ODE is the gradient flow, i.e. the paper's
runs in the limit of small steps and exact expectations (the paper draws 50 000 samples per step). Dashed
lines: the fixed points from [`dynsim.analytic.halvagal2023`][dynsim.analytic.halvagal2023] (Euclidean $1/k$; cosine
$\mathrm{tr}C_0/M$; cosine IsoLoss $(\sum c_0^2/M)^{1/2}$).

`halvagal2023_fig2_eigenvalues_symmetric`: the same with both views noised (`dynsim.ModeData.isotropic`,
dynsim's default data model and Tian et al.'s) from $W_0$ = randn/4 of seed 0: Euclidean level
$1/(1+\sigma^2)$, the no-predictor panel decays as $c_0e^{-2\sigma^2t}$.

`halvagal2023_fig2_trajectories`: the top rows of Fig. 2, the N = 6, M = 2 toy ($W_0$ = randn(2, 6)/4,
seed 0; σ = 0.1 in the target view, the online view clean as in the authors' update, lr 0.01, 1500 steps,
$W_P = WW^\top$) trained as a **network** by GD on the
exact expected gradient ([`dynsim.networks.SSLNet`][dynsim.networks.SSLNet]; cosine: the exact Gaussian expectation) in the eight
settings: the outputs $Wx$ of the 20 highest-norm of 5 000 Gaussian inputs over training, and below each
the eigenvalues of $WW^\top$ from the network (markers) against the per-mode ODE (lines). Where they differ
it is the network's discrete steps, not the theory: cosine IsoLoss recruits the small mode within a few
steps, so lr 0.01 overshoots the flow's level $(\sum c_0^2/M)^{1/2}$ and drifts slowly (the conserved
$\sum c^2$ is conserved by the flow only). Cosine without stop-gradient collapses to rank one; there the
exact expected gradient is singular (for a one-dimensional $z$, $E[1/\|z\|]$ diverges), so GD on it
explodes after the collapse, and this one panel's network uses 4096 fixed Gaussian nodes (`NODES_AFTER_COLLAPSE`),
whose gradient stays finite: after the collapse the surviving eigenvalue jumps (the cosine loss is scale-free,
so the size of a rank-one W is arbitrary).

`halvagal2023_fig5`: two neurons (N = 6, M = 2, σ = 0.1, lr 0.01, 1500 steps, $W_P = WW^\top$) from
three starts, $W_0$ = randn/4, $2W_0$ and a fresh randn/2: Euclidean loss (every eigenvalue to
$1/(1+\sigma^2)$) against cosine loss (both eigenvalues meet at the start-dependent level
$\mathrm{tr}\,C_0/M$), network GD (markers) and per-mode ODE (lines) with the predicted levels dashed.
"""

from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from dynsim import compare as cp
from dynsim.analytic import halvagal2023 as hv
from dynsim.eigenmodes import SSLModes
from dynsim.figures._registry import register
from dynsim.networks import NetParams, SSLNet, ViewData, train
from dynsim.params import ModeData, TianParams
from dynsim.solvers import solve

TOY_SIGMA2 = 0.01
TOY_M, TOY_N, TOY_SEED = 10, 15, 0
#: a draw of $W_0$ = randn(10, 15)/4 (NumPy default_rng) whose spectrum, scaled to the published run's
#: $\mathrm{tr}\,C_0$ = `PAPER_TRACE`, has its smallest eigenvalue too (0.0200 vs 0.020)
PAPER_SEED, PAPER_TRACE = 16409, 7.882
#: the views of each variant (`docs/theory/views.md`); both views noised is written with its
#: $\ell_{22} = \ell_{11}$ given (the numbers of `ModeData.isotropic`), so that both variants build the
#: same compiled programs
FIG2_VIEWS = {"clean_online": ModeData.clean_online,
              "symmetric": lambda sigma2, n_modes: ModeData.views(sigma2, sigma2, n_modes)}
SETTINGS = (  # (label, model options, paper lr, paper steps)
    ("no stop-grad", dict(stop_gradient=False), 0.01, 1500),
    ("no predictor", dict(predictor="identity"), 0.1, 100_000),
    ("plain", dict(), 0.01, 1500),
    ("IsoLoss", dict(iso=True), 0.01, 1500),
)
COSINE_LR = 0.1


def toy_initial_eigenvalues(M=TOY_M, N=TOY_N, seed=TOY_SEED, trace=None):
    """Eigenvalues of $W_0W_0^\\top$ for $W_0$ = randn(M, N)/4 (NumPy default_rng(seed)), scaled to sum to
    `trace` if given."""
    W0 = np.random.default_rng(seed).standard_normal((M, N)) / 4
    c = np.linalg.eigvalsh(W0 @ W0.T)
    return c if trace is None else c * (trace / np.sum(c))


@register("halvagal2023_fig2_eigenvalues",
          "Halvagal 2023 Fig. 2 (eigenvalue rows), the authors' views (online view clean): toy dynamics from the ODEs", cost=31,
          group="halvagal2023_fig2_eigenvalues")
def fig2_eigenvalues(fast: bool = False):
    r"""Eigenvalue rows of Fig. 2 from the per-mode ODEs (module docstring); data: `c_{loss}_{col}`, `t_{loss}_{col}`."""
    return _fig2(fast, "clean_online", toy_initial_eigenvalues(seed=PAPER_SEED, trace=PAPER_TRACE))


@register("halvagal2023_fig2_eigenvalues_symmetric",
          "Halvagal 2023 Fig. 2 (eigenvalue rows) with both views noised: toy dynamics from the ODEs", cost=27,
          group="halvagal2023_fig2_eigenvalues")
def fig2_eigenvalues_symmetric(fast: bool = False):
    r"""Fig. 2's eigenvalue rows with the symmetric data model (module docstring)."""
    return _fig2(fast, "symmetric", toy_initial_eigenvalues())


def _fig2(fast: bool, views: str, c0):
    data = FIG2_VIEWS[views](TOY_SIGMA2, TOY_M)
    params = TianParams()
    n_save = 60 if fast else 300
    k = float(data.l11[0] / data.l12[0])
    out = {"c0": c0, "sigma2": TOY_SIGMA2, "views": views, "l11": np.asarray(data.l11), "l12": np.asarray(data.l12),
           "l22": np.asarray(data.l22)}
    fig = Figure(figsize=(14, 6.2), layout="constrained")
    axes = fig.subplots(2, 4, sharey=True)
    for row, loss in enumerate(("euclidean", "cosine")):
        for col, (label, opts, lr, steps) in enumerate(SETTINGS):
            if loss == "cosine" and "predictor" not in opts:
                lr = COSINE_LR
            model = SSLModes(loss=loss, **opts)  # the cosine expectation is exact (no nodes)
            t1 = lr * steps
            sol = solve(model, model.initial_state(jnp.sqrt(c0)), (params, data), t1, saveat=n_save,
                        method="rk45", rtol=1e-7, atol=1e-10, max_steps=200_000)
            c = np.asarray(sol.ys.w) ** 2
            it = np.asarray(sol.ts) / lr
            ax = axes[row, col]
            ax.plot(it, np.clip(c, 1e-3, None), color="#1f77b4", lw=1.2)
            ax.set_yscale("log")
            ax.set_ylim(1e-2, 10)
            ax.set_title(f"{loss}, {label}", fontsize=10)
            ax.set_xlabel(f"iteration (lr = {lr:g})", fontsize=9)
            if label in ("plain", "IsoLoss"):
                level = 1 / k if loss == "euclidean" else (
                    float(hv.cosine_iso_end_level(c0, 1.0)) if label == "IsoLoss" else float(hv.cosine_end_level(c0)))
                ax.axhline(level, color="k", ls="--", lw=0.9)
                out[f"level_{loss}_{col}"] = level
            out[f"t_{loss}_{col}"], out[f"c_{loss}_{col}"] = np.asarray(sol.ts), c
    for row in range(2):
        axes[row, 0].set_ylabel(r"eigenvalues of $WW^\top$")
    law = ("online view clean, target view noised" if views == "clean_online" else "both views noised")
    fig.suptitle(r"Halvagal et al. 2023, Fig. 2 (eigenvalues): linear toy, $N=15$, $M=10$, $\sigma=0.1$, "
                 rf"$W_P = WW^\top$ ({law}), per-mode ODEs (cosine: exact Gaussian expectation); "
                 "dashed: predicted fixed points")
    return fig, out


# --- networks: Fig. 2 trajectories and Fig. 5 --------------------------------------------------
NET_N, NET_M, NET_LR, NET_STEPS = 6, 2, 0.01, 1500
#: the expectation of the cosine no-stop-gradient network panel (module docstring: the exact gradient is singular
#: once W has collapsed to rank one)
NODES_AFTER_COLLAPSE = "nodes"
NET_SETTINGS = (  # (label, network options); the mode model follows from the network (compare.mode_theory)
    ("no stop-grad", dict(stop_gradient=False)),
    ("no predictor", dict(predictor="identity")),
    ("plain", dict()),
    ("IsoLoss", dict(iso=True)),
)


#: the network's views (`docs/theory/views.md`); both views noised is written with its target noise given (the
#: numbers of `ViewData.isotropic`), so that Fig. 5 builds the programs Fig. 2's trajectories compiled
NET_VIEWS = {"clean_online": ViewData.clean_online,
             "symmetric": lambda n1, sigma2: ViewData.views(n1, sigma2, sigma2)}


def _net(loss: str, iso: bool = False, **opts) -> SSLNet:
    """Halvagal's toy network: closed-form $W_P = WW^\\top$ (unless `predictor` is given), no EMA."""
    opts.setdefault("predictor", "power")
    return SSLNet(loss=loss + ("_iso" if iso else ""), target="online", predictor_input="WWt", **opts)


def network_vs_modes(W0, loss: str, net_opts: dict, n_steps: int, n_saves: int, sigma2: float = TOY_SIGMA2,
                     n_nodes: int = 4096, views: str = "symmetric"):
    """Network GD on the expected gradient (`n_nodes`: only where the network uses nodes; `views`: `"symmetric"`
    or `"clean_online"`, `docs/theory/views.md`) and the per-mode ODE that [`dynsim.compare.mode_theory`][dynsim.compare.mode_theory] maps
    the same network configuration to (started from the eigenvalues of $W_0W_0^\\top$).

    Returns `(t, W_net, c_net, c_ode)`: `W_net` (T, M, N); `c_net`, `c_ode` (T, M) ascending."""
    data = NET_VIEWS[views](W0.shape[1], sigma2)
    args = (NetParams(), data)
    net = _net(loss, n_nodes=n_nodes, **net_opts)
    y0 = net.initial_state(jnp.asarray(W0), args=args)
    sol = train(net, y0, args, NET_LR, n_steps, n_saves=n_saves)
    W = np.asarray(sol.ys.W)
    c_net = np.linalg.eigvalsh(W @ np.swapaxes(W, -1, -2))
    modes, margs, y0m = cp.mode_theory(net, y0, args)
    ms = solve(modes, y0m, margs, NET_LR * n_steps, saveat=np.asarray(sol.ts), method="rk45", rtol=1e-9, atol=1e-12)
    c_ode = np.sort(np.asarray(ms.ys.w) ** 2, axis=-1)
    return np.asarray(sol.ts), W, c_net, c_ode


def display_points(n_points: int = 20, n_draws: int = 5000, N: int = NET_N, seed: int = TOY_SEED):
    """The 20 highest-norm of 5 000 standard Gaussian inputs (Halvagal et al. 2023), shape (N, 20)."""
    x = np.random.default_rng(seed + 1).standard_normal((n_draws, N))
    return x[np.argsort(-np.linalg.norm(x, axis=1))[:n_points]].T


def fig2_trajectories_data(fast: bool = False) -> dict:
    r"""Network GD and mode ODE for the eight settings of Fig. 2 on the N = 6, M = 2 toy."""
    W0 = np.random.default_rng(TOY_SEED).standard_normal((NET_M, NET_N)) / 4
    X = display_points()
    steps, n_saves = (500, 25) if fast else (NET_STEPS, 75)
    out = {"W0": W0, "X": X, "sigma2": TOY_SIGMA2, "lr": NET_LR, "views": "clean_online"}
    for loss in ("euclidean", "cosine"):
        for col, (_, net_opts) in enumerate(NET_SETTINGS):
            nodes = loss == "cosine" and net_opts.get("stop_gradient") is False  # singular exact gradient at rank one
            if nodes:
                net_opts = dict(net_opts, expectation=NODES_AFTER_COLLAPSE)
            with warnings.catch_warnings():
                if nodes:  # chosen on purpose (module docstring): their error warning would only repeat that
                    warnings.simplefilter("ignore", UserWarning)
                t, W, c_net, c_ode = network_vs_modes(W0, loss, net_opts, steps, n_saves,
                                                      n_nodes=1024 if fast else 4096, views="clean_online")
            out[f"t_{loss}_{col}"], out[f"W_{loss}_{col}"] = t, W
            out[f"c_net_{loss}_{col}"], out[f"c_ode_{loss}_{col}"] = c_net, c_ode
    return out


@register("halvagal2023_fig2_trajectories",
          "Halvagal 2023 Fig. 2 (trajectory rows): N = 6, M = 2 network outputs in 8 settings, network vs mode ODE", cost=49,
          group="halvagal2023_network")
def fig2_trajectories(fast: bool = False):
    r"""Draw [`fig2_trajectories_data`][dynsim.figures.halvagal2023.fig2_trajectories_data]: outputs of the display points, and eigenvalues network vs ODE."""
    d = fig2_trajectories_data(fast)
    fig = Figure(figsize=(14, 12.5), layout="constrained")
    axes = fig.subplots(4, 4)
    for r, loss in enumerate(("euclidean", "cosine")):
        for col, (label, _) in enumerate(NET_SETTINGS):
            ax, ex = axes[2 * r, col], axes[2 * r + 1, col]
            Z = d[f"W_{loss}_{col}"] @ d["X"]  # (T, M, 20)
            for i in range(Z.shape[-1]):
                ax.plot(Z[:, 0, i], Z[:, 1, i], color="0.6", lw=0.7)
            ax.plot(Z[0, 0], Z[0, 1], "o", color="#9ecae1", ms=3.5, label="start")
            ax.plot(Z[-1, 0], Z[-1, 1], "o", color="#08519c", ms=4, label="end")
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_title(f"{loss}, {label}", fontsize=10)
            it = d[f"t_{loss}_{col}"] / NET_LR
            for j in range(Z.shape[1]):
                ex.plot(it, d[f"c_ode_{loss}_{col}"][:, j], color="#1f77b4", lw=1.4, label="mode ODE" if j == 0 else None)
                ex.plot(it[::3], d[f"c_net_{loss}_{col}"][::3, j], "o", color="#d62728", ms=3, mfc="none",
                        label="network GD" if j == 0 else None)
            ex.set_xlabel("iteration", fontsize=9)
        axes[2 * r, 0].set_ylabel("$Wx$, 2nd output")
        axes[2 * r + 1, 0].set_ylabel(r"eigenvalues of $WW^\top$")
    axes[0, 0].legend(fontsize=8, frameon=False)
    axes[1, 0].legend(fontsize=8, frameon=False)
    fig.suptitle(r"Halvagal et al. 2023, Fig. 2 (top rows): $N = 6$, $M = 2$, $\sigma = 0.1$ (online view clean), "
                 r"lr 0.01, $W_P = WW^\top$, no EMA; outputs of 20 inputs over training (grey), network vs per-mode ODE")
    return fig, d


FIG5_STARTS = ("randn/4", "2 x randn/4", "fresh randn/2")


def fig5_starts(seed: int = TOY_SEED):
    r"""The three starts of Fig. 5: $W_0$ = randn(2, 6)/4, $2W_0$ and a fresh randn(2, 6)/2."""
    rng = np.random.default_rng(seed)
    W0 = rng.standard_normal((NET_M, NET_N)) / 4
    return (W0, 2 * W0, rng.standard_normal((NET_M, NET_N)) / 2)


def fig5_data(fast: bool = False) -> dict:
    r"""Network GD and mode ODE from each start of [`fig5_starts`][dynsim.figures.halvagal2023.fig5_starts], Euclidean and cosine, with the predicted levels."""
    n_saves = 15 if fast else 75
    out = {"sigma2": TOY_SIGMA2, "lr": NET_LR}
    for i, W0 in enumerate(fig5_starts()):
        c0 = np.linalg.eigvalsh(W0 @ W0.T)
        out[f"c0_{i}"] = c0
        out[f"level_euclidean_{i}"] = 1 / (1 + TOY_SIGMA2)
        out[f"level_cosine_{i}"] = float(hv.cosine_end_level(c0))
        for loss in ("euclidean", "cosine"):
            t, _, c_net, c_ode = network_vs_modes(W0, loss, {}, NET_STEPS, n_saves, n_nodes=1024 if fast else 4096)
            out["t"], out[f"c_net_{loss}_{i}"], out[f"c_ode_{loss}_{i}"] = t, c_net, c_ode
    return out


@register("halvagal2023_fig5", "Halvagal 2023 Fig. 5: two neurons, Euclidean vs cosine fixed points from three starts", cost=10,
          group="halvagal2023_network")
def fig5_two_neurons(fast: bool = False):
    r"""Draw [`fig5_data`][dynsim.figures.halvagal2023.fig5_data]: eigenvalues over iterations, network markers on ODE lines, levels dashed."""
    d = fig5_data(fast)
    fig = Figure(figsize=(11, 4.3), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c"]
    it = d["t"] / NET_LR
    for ax, loss in zip(axes, ("euclidean", "cosine")):
        for i, name in enumerate(FIG5_STARTS):
            for j in range(2):
                ax.plot(it, d[f"c_ode_{loss}_{i}"][:, j], color=colors[i], lw=1.5, label=name if j == 0 else None)
                ax.plot(it[::3], d[f"c_net_{loss}_{i}"][::3, j], "o", color=colors[i], ms=3, mfc="none")
            ax.axhline(d[f"level_{loss}_{i}"], color=colors[i], ls="--", lw=0.9)
        ax.set_yscale("log")
        ax.set_xlabel("iteration (lr = 0.01)")
        ax.set_title("Euclidean: one fixed point $1/(1+\\sigma^2)$" if loss == "euclidean" else
                     r"cosine: isotropic at the start's $\mathrm{tr}\,C_0/M$", fontsize=10)
    axes[0].set_ylabel(r"eigenvalues of $WW^\top$")
    axes[0].legend(fontsize=8, frameon=False, title="start (lines: mode ODE, o: network GD)", title_fontsize=8)
    fig.suptitle(r"Halvagal et al. 2023, Fig. 5: two neurons ($N = 6$, $M = 2$, $\sigma = 0.1$, "
                 r"$W_P = WW^\top$); dashed: predicted fixed points")
    return fig, d
