"""Plots of a loaded sweep ([`SweepResult`][dynsim.sweeps.SweepResult]): phase diagrams over two swept
parameters with the analytic boundary where theory gives one, and spectra over time."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from dynsim.solvers import GOOD_STATUSES
from dynsim.sweeps._bisect import Flag
from dynsim.sweeps._models import build_model

LABELS = {
    "collapsed": "collapsed fraction", "auc": "collapse AUC (Li et al. 2022)", "surviving_modes": "surviving modes",
    "effective_rank": "effective rank", "collapse_time": "collapse time", "time_to_fraction": "time to fixed point",
}
SYMBOLS = {"eta": r"$\eta$", "sigma2": r"$\sigma^2$", "tau": r"$\tau$", "beta": r"$\beta$", "alpha_p": r"$\alpha_p$",
           "wd": r"weight decay $\eta$", "wd_p": r"$\eta_p$", "power": r"$\alpha$", "eps": r"$\varepsilon$"}


def _edges(v, log: bool = False):
    v = np.asarray(v, float)
    if log:
        return np.exp(_edges(np.log(v)))
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])


def _is_log(res, name) -> bool:
    spec = res.config.raw.get("grid", {}).get(name)
    return isinstance(spec, dict) and bool(spec.get("log", False))


def _axis_of(res, name):
    for k, ax in enumerate(res.config.axes):
        if name in ax.values:
            return k, ax
    raise KeyError(f"{name!r} is not swept; swept parameters: {', '.join(res.config.swept)}")


def failed_mask(res) -> np.ndarray:
    """`True` where a configuration's solve failed (status other than success or event; [`Status`][dynsim.solvers.Status]),
    on the sweep's axes: its summaries are not results."""
    return ~np.isin(res.grid("status"), GOOD_STATUSES)


def phase_data(res, x: str, y: str, metric: str = "collapsed"):
    """`(xs, ys, Z)`: the metric averaged over every other axis (non-finite values and failed solves ignored,
    `failed_mask`; a cell whose every configuration failed is NaN), `Z` of shape `(len(ys), len(xs))`,
    for two parameters swept on *different* axes."""
    kx, ax_x = _axis_of(res, x)
    ky, ax_y = _axis_of(res, y)
    if kx == ky:
        raise ValueError(f"{x} and {y} are swept together (axis {ax_x.name!r}); a phase diagram needs two axes")
    grid = res.config.raw.get("grid", {})
    if x not in grid or y not in grid:
        raise ValueError(f"a phase diagram needs two [grid] parameters (ordered values); got {x}, {y}")
    Z = res.grid(metric).astype(float)
    if Z.ndim != len(res.shape):
        raise ValueError(f"{metric!r} is not a scalar summary")
    Z = np.where(np.isfinite(Z) & ~failed_mask(res), Z, np.nan)
    if metric not in ("collapsed", "collapse_time"):  # shape metrics of a vanishing spectrum mean nothing
        Z = np.where(res.grid("collapsed"), np.nan, Z)
    others = tuple(k for k in range(Z.ndim) if k not in (kx, ky))
    with np.errstate(all="ignore"):
        Z = np.nanmean(Z, axis=others) if others else Z
    Z = Z if kx > ky else Z.T  # rows = y
    return np.asarray(ax_x.values[x]), np.asarray(ax_y.values[y]), Z


def phase_diagram(res, x: str, y: str, metric: str = "collapsed", ax=None):
    """Colour map of `metric` over `(x, y)` with the analytic boundary (dashed) when the model has one."""
    import matplotlib.pyplot as plt

    xs, ys, Z = phase_data(res, x, y, metric)
    n_failed = int(failed_mask(res).sum())
    if n_failed:
        warnings.warn(f"{n_failed} of {res.config.n_configs} configurations failed to solve (see the 'status' summary); "
                      f"they are left out, and cells with no result are grey", RuntimeWarning, stacklevel=2)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.2), constrained_layout=True)
    vmin, vmax = (0, 1) if metric == "collapsed" else (None, None)
    lx, ly = _is_log(res, x), _is_log(res, y)
    mesh = ax.pcolormesh(_edges(xs, lx), _edges(ys, ly), Z, cmap="magma" if metric != "collapsed" else "RdYlBu_r",
                         vmin=vmin, vmax=vmax, shading="flat")
    ax.set_facecolor("0.85")
    grey = ([] if metric in ("collapsed", "collapse_time") else ["collapsed"]) + (["failed"] if n_failed else [])
    label = LABELS.get(metric, metric) + (f" (grey: {' or '.join(grey)})" if grey else "")
    ax.figure.colorbar(mesh, ax=ax, label=label)
    if lx:
        ax.set_xscale("log")
    if ly:
        ax.set_yscale("log")
    model = build_model(res.config.model)
    curve = model.boundary(x, y, res.config.fixed)
    if curve is not None:
        xx = np.linspace(_edges(xs, lx)[0], _edges(xs, lx)[-1], 200)
        clean = res.config.model.get("views") == "clean_online"  # the online view's noise sets the threshold
        formula = r"$\eta = \tau^2/4$" if clean else r"$\eta = \tau^2/(4(1+\sigma^2))$"
        ax.plot(xx, curve(xx), "k--", lw=2, label=f"theory: {formula}")
        ax.set_ylim(_edges(ys, ly)[0], _edges(ys, ly)[-1])
        ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    ax.set_xlabel(SYMBOLS.get(x, x))
    ax.set_ylabel(SYMBOLS.get(y, y))
    shown = {"tau", "alpha_p", "sigma2", "eta", "beta"} & model.used_parameters()
    fixed = ", ".join(f"{SYMBOLS.get(k, k)}={v:g}" for k, v in res.config.fixed.items() if k in shown)
    ax.set_title(f"{res.config.model['kind']} ({res.config.model.get('target', '')}): {fixed}", fontsize=9)
    return ax


def metric_curve(res, x: str, metric: str = "auc", ax=None):
    """`metric` against one `[grid]` parameter: mean over every other axis, with its min-max band."""
    import matplotlib.pyplot as plt

    k, axis = _axis_of(res, x)
    Z = np.moveaxis(res.grid(metric).astype(float), k, 0).reshape(axis.size, -1)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 3.8), constrained_layout=True)
    xs = np.asarray(axis.values[x])
    with np.errstate(all="ignore"):
        ax.fill_between(xs, np.nanmin(Z, axis=1), np.nanmax(Z, axis=1), alpha=0.25, lw=0, label="min-max")
        ax.plot(xs, np.nanmean(Z, axis=1), "o-", ms=3, label="mean")
    ax.set_xlabel(SYMBOLS.get(x, x))
    ax.set_ylabel(LABELS.get(metric, metric))
    ax.legend(fontsize=8)
    ax.set_title(f"{res.config.model['kind']}: {metric} over {x}", fontsize=9)
    return ax


def pick_configs(res, n: int, metric: str = "auc") -> np.ndarray:
    """`n` configurations spread over the range of `metric` (quantiles), for the spectra figure."""
    vals = np.asarray(res.summaries[metric], float)
    ok = np.flatnonzero(np.isfinite(vals) & res.done)
    if ok.size == 0:
        return ok
    order = ok[np.argsort(vals[ok], kind="stable")]
    return np.unique(order[np.linspace(0, order.size - 1, min(n, order.size)).round().astype(int)])


def spectra_over_time(res, indices, axes=None):
    """Per configuration, the mode strengths $s_j(t)$ (log scale) with the collapse threshold."""
    import matplotlib.pyplot as plt

    indices = list(indices)
    if axes is None:
        _, axes = plt.subplots(1, len(indices), figsize=(3.2 * len(indices), 3.0), sharey=True,
                               constrained_layout=True, squeeze=False)
        axes = axes[0]
    thr = float(res.config.metrics["collapse_threshold"])
    for ax, i in zip(axes, indices):
        s = res.summaries["spectrum"][i]
        cmap = plt.get_cmap("viridis")
        for j in range(s.shape[1]):
            ax.semilogy(res.ts, np.maximum(s[:, j], thr / 100), color=cmap(j / max(1, s.shape[1] - 1)), lw=1.2)
        ax.axhline(thr, color="0.5", ls=":", lw=1)
        t_c = float(res.summaries["collapse_time"][i])
        if np.isfinite(t_c):
            ax.axvline(t_c, color="C3", ls="--", lw=1, label=f"collapse, t = {t_c:.4g}")
            ax.legend(loc="upper right", fontsize=7)
        label = ", ".join(f"{SYMBOLS.get(p, p)}={res.params[p][i]:.3g}" for p in res.config.swept)
        ax.set_title(f"#{i}: {label}\nAUC={res.summaries['auc'][i]:.3f}", fontsize=8)
        ax.set_xlabel("t")
    axes[0].set_ylabel(r"mode strength $s_j$ (eigenvalues of $WW^\top$)")
    return axes


def plot_run(res, out: Path, x=None, y=None, metric="collapsed", n_spectra=4) -> list[Path]:
    """Write `phase.png/.pdf` (a phase diagram over two `[grid]` parameters, or the metric against the
    only one) and `spectra.png/.pdf` into `out`."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    grid = list(res.config.raw.get("grid", {}))
    x = x or (grid[0] if grid else None)
    y = y or (next((p for p in grid if p != x), None))
    if x is not None:
        ax = phase_diagram(res, x, y, metric) if y is not None else metric_curve(res, x, metric)
        for ext in ("png", "pdf"):
            ax.figure.savefig(out / f"phase.{ext}", dpi=150)
            paths.append(out / f"phase.{ext}")
        plt.close(ax.figure)
    idx = pick_configs(res, n_spectra)
    if idx.size:
        axes = spectra_over_time(res, idx)
        for ext in ("png", "pdf"):
            axes[0].figure.savefig(out / f"spectra.{ext}", dpi=150)
            paths.append(out / f"spectra.{ext}")
        plt.close(axes[0].figure)
    return paths


def plot_boundary(res, grid=None, ax=None, label: str = "bisection"):
    """Plot a boundary search `res` (a [`SweepResult`][dynsim.sweeps.SweepResult] with one ray axis holding one
    parameter): the boundary per ray (markers; open where the search did not end `OK`, with its bracket as an error
    bar), the model's closed form where it has one (dashed), and, when `grid` (a grid sweep's result over the ray
    parameter and the searched one) is given, its phase diagram underneath."""
    import matplotlib.pyplot as plt

    cfg = res.config
    name = cfg.boundary["parameter"]
    if len(cfg.axes) != 1 or len(cfg.axes[0].values) != 1:
        raise ValueError("plot_boundary needs rays along one swept parameter (one [grid] entry)")
    (x, xs), = cfg.axes[0].values.items()
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.2), constrained_layout=True)
    if grid is not None:
        phase_diagram(grid, x, name, "collapsed", ax=ax)
    else:
        curve = build_model(cfg.model).boundary(x, name, cfg.fixed)
        if curve is not None:
            xx = np.linspace(np.min(xs), np.max(xs), 200)
            ax.plot(xx, curve(xx), "k--", lw=2, label="closed form")
    s = res.summaries
    good = s["flag"] == Flag.OK
    b = s["boundary"]
    ax.errorbar(np.asarray(xs)[good], b[good], yerr=np.abs(s["upper"] - s["lower"])[good] / 2, fmt="o", ms=3.5,
                color="tab:cyan" if grid is not None else "tab:blue", label=label)
    if (~good).any():
        ax.plot(np.asarray(xs)[~good], np.where(np.isfinite(b), b, np.nan)[~good], "o", mfc="none", color="tab:red",
                label="flagged (dynsim.sweeps.Flag)")
    ax.set_xlabel(SYMBOLS.get(x, x))
    ax.set_ylabel(SYMBOLS.get(name, name))
    lo, hi = cfg.boundary["bracket"]
    if cfg.boundary["log"]:
        ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    b_cfg = cfg.boundary
    ax.set_title(f"{cfg.model['kind']} ({cfg.model.get('target', '')}): {b_cfg['criterion']} boundary, "
                 f"rtol {b_cfg['rtol']:g}", fontsize=9)
    return ax


def plot_curve(cfg, curve: dict, ax=None):
    """Plot a boundary curve from [`trace_boundary`][dynsim.sweeps.trace_boundary] for its configuration `cfg`: the
    curve through its rays, the anchors (filled) and the rays added where it bends (small, open), rays without a
    boundary at the bracket's edge in red, and the model's closed form where it has one (dashed)."""
    import matplotlib.pyplot as plt

    x, name = curve["axis"], curve["parameter"]
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.2), constrained_layout=True)
    s, b = np.asarray(curve["s"]), np.asarray(curve["boundary"])
    closed = build_model(cfg.model).boundary(x, name, cfg.fixed)
    if closed is not None:
        xx = np.linspace(s.min(), s.max(), 200)
        ax.plot(xx, closed(xx), "k--", lw=2, label="closed form")
    good = np.asarray(curve["flag"]) == Flag.OK
    warm = np.asarray(curve["warm"], bool)
    ax.plot(s[good], b[good], "-", color="tab:blue", lw=1.2)
    ax.plot(s[good & ~warm], b[good & ~warm], "o", color="tab:blue", ms=4.5, label="anchors (whole bracket)")
    ax.plot(s[good & warm], b[good & warm], "o", mfc="none", color="tab:blue", ms=3,
            label="added where the curve bends (warm bracket)")
    lo, hi = cfg.boundary["bracket"]
    if (~good).any():
        ax.plot(s[~good], np.full((~good).sum(), hi), "x", color="tab:red", label="no boundary in the bracket")
    ax.set_xlabel(SYMBOLS.get(x, x))
    ax.set_ylabel(SYMBOLS.get(name, name))
    if cfg.boundary["log"]:
        ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    ax.set_title(f"{cfg.model['kind']}: {cfg.boundary['criterion']} boundary by continuation, {s.size} rays",
                 fontsize=9)
    return ax
