r"""Figures of Halvagal, Laborieux & Zenke (2023) regenerated from the per-mode ODEs (:class:`dynsim.SSLModes`).

``halvagal2023_fig2_eigenvalues``: the eigenvalues of :math:`WW^\top` over training for the toy of
halvagal2023.md §5 (N = 15, M = 10, :math:`W_0` = randn/4 with seed 0 of NumPy's generator, σ = 0.1,
:math:`W_P = WW^\top`, no EMA) in the paper's eight settings, Euclidean and cosine loss × {no stop-grad,
no predictor, plain, IsoLoss}. Time is shown in the paper's iterations, :math:`t/\mathrm{lr}`, with its
learning rates (0.01; 0.1 for the cosine runs and Euclidean no-predictor) and run lengths (1500 steps,
10⁵ without predictor). The Euclidean no-predictor panel decays as :math:`c_0e^{-2\sigma^2t}`, as the
published code's update does; the published notebook's flat panel is flagged in halvagal2023.md §2.4. The ODE is the gradient flow, i.e. the paper's runs in the limit of small steps
and exact expectations (the paper draws 50 000 samples per step). Dashed lines: the fixed points from
:mod:`dynsim.analytic.halvagal2023` (Euclidean :math:`1/k`; cosine :math:`\mathrm{tr}C_0/M`; cosine IsoLoss
:math:`(\sum c_0^2/M)^{1/2}`).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from matplotlib.figure import Figure

from dynsim.analytic import halvagal2023 as hv
from dynsim.eigenmodes import SSLModes
from dynsim.figures.registry import register
from dynsim.params import ModeData, TianParams
from dynsim.solvers import solve

TOY_SIGMA2 = 0.01
TOY_M, TOY_N, TOY_SEED = 10, 15, 0
SETTINGS = (  # (label, model options, paper lr, paper steps)
    ("no stop-grad", dict(stop_gradient=False), 0.01, 1500),
    ("no predictor", dict(predictor="identity"), 0.1, 100_000),
    ("plain", dict(), 0.01, 1500),
    ("IsoLoss", dict(iso=True), 0.01, 1500),
)
COSINE_LR = 0.1


def toy_initial_eigenvalues(M=TOY_M, N=TOY_N, seed=TOY_SEED):
    """Eigenvalues of :math:`W_0W_0^\\top` for :math:`W_0` = randn(M, N)/4 (NumPy default_rng(seed))."""
    W0 = np.random.default_rng(seed).standard_normal((M, N)) / 4
    return np.linalg.eigvalsh(W0 @ W0.T)


@register("halvagal2023_fig2_eigenvalues",
          "Halvagal 2023 Fig. 2 (eigenvalue rows): Euclidean vs cosine vs IsoLoss toy dynamics from the ODEs")
def fig2_eigenvalues(fast: bool = False):
    c0 = toy_initial_eigenvalues()
    data = ModeData.isotropic(TOY_SIGMA2, TOY_M)
    params = TianParams()
    n_save = 60 if fast else 300
    out = {"c0": c0, "sigma2": TOY_SIGMA2}
    fig = Figure(figsize=(14, 6.2), layout="constrained")
    axes = fig.subplots(2, 4, sharey=True)
    for row, loss in enumerate(("euclidean", "cosine")):
        for col, (label, opts, lr, steps) in enumerate(SETTINGS):
            if loss == "cosine" and "predictor" not in opts:
                lr = COSINE_LR
            model = SSLModes(loss=loss, n_nodes=1024 if fast else 4096, **opts)
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
                level = 1 / (1 + TOY_SIGMA2) if loss == "euclidean" else (
                    float(hv.cosine_iso_end_level(c0, 1.0)) if label == "IsoLoss" else float(hv.cosine_end_level(c0)))
                ax.axhline(level, color="k", ls="--", lw=0.9)
                out[f"level_{loss}_{col}"] = level
            out[f"t_{loss}_{col}"], out[f"c_{loss}_{col}"] = np.asarray(sol.ts), c
    for row in range(2):
        axes[row, 0].set_ylabel(r"eigenvalues of $WW^\top$")
    fig.suptitle(r"Halvagal et al. 2023, Fig. 2 (eigenvalues): linear toy, $N=15$, $M=10$, $\sigma=0.1$, "
                 r"$W_P = WW^\top$, per-mode ODEs (cosine: exact Gaussian expectation); dashed: predicted fixed points")
    return fig, out
