r"""Figure from a parameter sweep ([`dynsim.sweeps`][dynsim.sweeps]): the packaged `tian_boundary` example.

`sweep_tian_boundary`: (a) complete collapse of the Tian per-mode system with a fixed target ratio
τ = 1 (Tian et al. 2021, Obs. 5) over (σ², η), with the analytic boundary η = τ²/(4(1+σ²)) dashed;
(b) mode strengths over time for two configurations on either side of the boundary at σ² = 1
(η_c = 1/8). `fast` uses a coarser grid.
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
