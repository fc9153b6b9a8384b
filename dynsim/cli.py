"""The `dynsim` command line. It runs in float64 unless `--float32` is given."""

from __future__ import annotations

import argparse
import os
import sys
import time


def _set_precision(float32: bool) -> None:
    import jax

    jax.config.update("jax_enable_x64", not float32)


def _set_compile_cache(off: bool) -> None:
    """The persistent compilation cache ([`dynsim.cache`][dynsim.cache]): on in its default folder unless turned off. A folder
    that cannot be created only costs the speed-up: the command runs without the cache and says so."""
    from dynsim import cache

    folder = None if off else cache.configured_dir()
    if folder is not None:
        try:
            cache.enable(folder)
        except OSError as e:
            print(f"dynsim: no compilation cache ({type(e).__name__}: {e}); set {cache.ENV}=FOLDER or "
                  f"{cache.ENV}=off", file=sys.stderr)


def _cmd_figures(args) -> int:
    from dynsim.figures import FIGURES, figure_names, generate

    if args.list:
        names = figure_names()
        width = max(map(len, names))
        for name in names:
            print(f"{name:{width}s}  {FIGURES[name].description}")
        return 0
    t0 = time.perf_counter()
    _usable_folder(args.out)
    timings = {} if args.timings else None
    try:
        paths = generate(args.names, out_dir=args.out, fast=args.fast, timings=timings, jobs=args.jobs)
    except KeyError as e:
        print(f"dynsim figures: {e.args[0]}", file=sys.stderr)
        return 2
    for p in paths:
        print(f"wrote {p}")
    if timings:
        width = max(map(len, timings))
        print(f"{'figure':{width}s}  {'total s':>8s}  {'compile s':>9s}  {'run s':>7s}")
        for name, t in timings.items():
            print(f"{name:{width}s}  {t['total']:8.2f}  {t['compile']:9.2f}  {t['total'] - t['compile']:7.2f}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


def _default_jobs() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 8))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _usable_folder(out) -> None:
    """Create the output folder `out` now (if given), so an unusable one fails before any computation."""
    from pathlib import Path

    if out:
        Path(out).mkdir(parents=True, exist_ok=True)


def _write_compare(out, args, arrays: dict, summary: dict) -> None:
    """`compare.npz` (arrays) and `compare.json` (config, metadata, summary) in the folder `out`."""
    import json
    from pathlib import Path

    import numpy as np

    from dynsim.provenance import run_metadata

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "compare.npz", **arrays)
    (out / "compare.json").write_text(json.dumps({"config": vars(args) | {"func": None}, "metadata": run_metadata()}
                                                 | summary, indent=2, default=str))
    print(f"wrote {out / 'compare.npz'} and {out / 'compare.json'}")


def _cmd_compare_grassmann(args) -> int:
    import numpy as np

    from dynsim import grassmann as ga
    from dynsim.grassmann import LOSSES as GRASSMANN_LOSSES

    loss = args.loss or "contrastive"
    t1 = 6.0 if args.t1 is None else args.t1
    try:
        if loss not in GRASSMANN_LOSSES:
            raise ValueError(f"--model grassmann takes --loss {', '.join(GRASSMANN_LOSSES)}, got {loss!r}")
        lrs = _decreasing_lrs(args.lrs or "0.1,0.05,0.025")
        A, W0 = ga.protocol_problem(loss, d=args.d, h=args.h, n=args.n, seed=args.seed)
        print(f"dynsim compare --model grassmann: loss={loss} d={args.d} h={args.h} n={args.n} t1={t1:g} "
              f"seed={args.seed} (Esser et al. 2023)")
        res = ga.rgd_agreement(A, W0, t1, lrs=lrs)
    except ValueError as e:
        print(f"dynsim compare: {e}", file=sys.stderr)
        return 2
    print("error of Riemannian GD vs the exact flow: ||P_k - P(t)||_F at t = T, max over saves of it, "
          "and of the principal angles to the top-h eigenspace")
    print(f"{'method':20s} {'lr':>8s} {'||P-P*||(T)':>12s} {'max ||P-P*||':>13s} {'max |dtheta|':>13s}")
    for i, m in enumerate(res["methods"]):
        for j, lr in enumerate(res["lrs"]):
            print(f"{m:20s} {lr:8g} {res['final'][i, j]:12.3e} {res['projection'][i, j]:13.3e} "
                  f"{res['angles'][i, j]:13.3e}")
    print("fitted orders (expected ~1; 'exact' is exact to round-off):")
    for i, m in enumerate(res["methods"]):
        print(f"  {m:20s} " + ", ".join(f"{o:.3f}" for o in res["orders"][i]))
    if args.out:
        _write_compare(args.out, args, {k: np.asarray(res[k]) for k in ("lrs", "projection", "angles", "final", "orders")}
                       | {"methods": np.array(res["methods"])},
                       {"final_errors": {m: res["final"][i].tolist() for i, m in enumerate(res["methods"])},
                        "orders": {m: res["orders"][i].tolist() for i, m in enumerate(res["methods"])}})
    return 0


def _decreasing_lrs(text: str) -> tuple:
    lrs = tuple(float(x) for x in text.split(","))
    if len(lrs) < 2 or any(b >= a for a, b in zip(lrs, lrs[1:])):
        raise ValueError(f"--lrs needs at least two decreasing learning rates, got {text!r}")
    return lrs


def _cmd_compare(args) -> int:
    import numpy as np

    from dynsim import compare as cp

    _usable_folder(args.out)
    from dynsim.networks import LOSSES as NETWORK_LOSSES

    if args.model == "grassmann":
        return _cmd_compare_grassmann(args)
    args.loss = args.loss or "euclidean"
    args.t1 = 10.0 if args.t1 is None else args.t1
    try:
        if args.loss not in NETWORK_LOSSES:
            raise ValueError(f"--model network takes --loss {', '.join(NETWORK_LOSSES)}, got {args.loss!r}")
        net, y0, nargs = cp.default_setup(n1=args.n1, n2=args.n2, seed=args.seed, loss=args.loss,
                                          predictor=args.predictor, target=args.target, sigma2=args.sigma2,
                                          alpha_p=args.alpha_p, beta=args.beta, wd=args.wd,
                                          predictor_input=args.predictor_input, power=args.power, eps=args.eps,
                                          n_nodes=args.nodes, views=args.views, sigma2_target=args.sigma2_target,
                                          stop_gradient=not args.no_stop_gradient)
        lrs = _decreasing_lrs(args.lrs or "0.04,0.02,0.01")
        print(f"dynsim compare: loss={args.loss} predictor={args.predictor} target={args.target}"
              f"{' (no stop-gradient)' if args.no_stop_gradient else ''} "
              f"n1={args.n1} n2={args.n2} sigma2={args.sigma2} views={args.views} t1={args.t1}")
        rows = [("flow", cp.agreement(net, y0, nargs, args.t1, method="flow")),
                (f"gd lr={args.lr:g}", cp.agreement(net, y0, nargs, args.t1, method="gd", lr=args.lr)),
                (f"sgd lr={args.lr:g} batch={args.batch}",
                 cp.agreement(net, y0, nargs, args.t1, method="sgd", lr=args.lr, batch=args.batch, seed=args.seed))]
        order = cp.gd_order(net, y0, nargs, args.t1, lrs=lrs)
    except ValueError as e:
        print(f"dynsim compare: {e}", file=sys.stderr)
        return 2
    print(f"{'simulation':32s} max rel. spectrum error vs theory")
    for name, a in rows:
        print(f"{name:32s} {a.max_rel_error:.3e}")
    print(f"GD error at t={args.t1:g} vs {order['reference']}:")
    for lr, err in zip(order["lrs"], order["errors"]):
        print(f"  lr={lr:<10g} {err:.3e}")
    print("fitted order(s): " + ", ".join(f"{o:.3f}" for o in order["orders"]) + "  (expected ~1)")
    if args.out:
        arrays = {f"{k}_{i}": v for i, (_, a) in enumerate(rows) for k, v in
                  (("t", a.ts), ("theory", a.theory), ("simulation", a.simulation))}
        _write_compare(args.out, args, dict(lrs=order["lrs"], lr_errors=order["errors"], orders=order["orders"],
                                            errors=np.array([a.max_rel_error for _, a in rows]), **arrays),
                       {"errors": {n: a.max_rel_error for n, a in rows}, "gd_orders": order["orders"].tolist()})
    return 0


def _parse_part(text):
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--part must look like i/n (0 <= i < n), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--part must be i/n with 0 <= i < n, got {text!r}")
    return i, n


def _use_example(args) -> bool:
    """`--example NAME`: run the packaged config NAME (`args.config` becomes its path), or, with `--print-example`,
    print it; returns whether the command is done (printed)."""
    from dynsim.sweeps import example_path

    if not args.example:
        return False
    path = example_path(args.example)
    if args.print_example:
        print(path.read_text(), end="")
        return True
    args.config = str(path)
    return False


def _overrides(args) -> list:
    """The config overrides of a run command: every `--set`, then `--chunk-size` as `run.chunk_size`."""
    overrides = list(args.set or [])
    if args.chunk_size is not None:
        overrides.append(("run.chunk_size", args.chunk_size))
    return overrides


def _cmd_sweep_run(args) -> int:
    from pathlib import Path

    from dynsim.sweeps import ConfigError, load_config
    from dynsim.sweeps import describe, run_sweep

    try:
        if _use_example(args):
            return 0
        if args.config is None:
            raise ConfigError("give a CONFIG file (or --example NAME; 'dynsim sweep examples' lists them)")
        cfg = load_config(args.config, _overrides(args))
        if cfg.boundary:
            raise ConfigError("this configuration has a [boundary] table: run it with dynsim boundary")
        part = _parse_part(args.part)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"dynsim sweep: {e}", file=sys.stderr)
        return 2
    devices = None
    if args.distributed:  # join the cluster before anything touches the JAX backend
        from dynsim.sweeps import distributed_part

        part, devices = distributed_part()
    if args.dry_run:
        print(describe(cfg, devices=devices, part=part, timed=args.estimate))
        return 0
    from dynsim.sweeps import LARGE_SWEEP

    if cfg.n_configs > LARGE_SWEEP and not args.yes:
        print(describe(cfg, devices=devices, part=part, timed=True))
        print(f"dynsim sweep: {cfg.n_configs} configurations (more than {LARGE_SWEEP:.0e}): check the estimate with "
              f"--dry-run and confirm with --yes", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("runs") / cfg.name
    print(describe(cfg, devices=devices, part=part))
    print(f"  run folder: {out}")
    try:
        meta = run_sweep(cfg, out, part=part, devices=devices, progress=not args.quiet, overwrite=args.overwrite,
                         command=["dynsim"] + list(sys.argv[1:]))
    except FileExistsError as e:  # other errors end in one line in main()
        print(f"dynsim sweep: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dynsim sweep: interrupted; the chunks written so far are kept in {out}: run the same command to "
              f"resume", file=sys.stderr)
        return 130
    print(f"done: {meta['chunks_computed']} chunk(s) computed, {meta['chunks_reused']} reused, "
          f"{meta['seconds']:.1f} s -> {out}")
    return 0


def _cmd_sweep_examples(args) -> int:
    from dynsim.sweeps import EXAMPLES

    for p in sorted(EXAMPLES.glob("*.toml")):
        first = next((ln[2:] for ln in p.read_text().splitlines() if ln.startswith("# ")), "")
        print(f"{p.stem:20s} {first}")
    return 0


def _cmd_sweep_merge(args) -> int:
    from dynsim.sweeps import merge

    try:
        out, missing = merge(args.out, args.parts, overwrite=args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"dynsim sweep merge: {e}", file=sys.stderr)
        return 2
    if missing:
        print(f"dynsim sweep merge: {len(missing)} chunk(s) missing from every part: {missing[:10]}",
              file=sys.stderr)
        return 1
    print(f"merged {len(args.parts)} part(s) into {out}")
    return 0


def _cmd_sweep_plot(args) -> int:
    from pathlib import Path

    from dynsim.sweeps import load, plot_run

    try:
        res = load(args.run, allow_partial=args.partial)
        paths = plot_run(res, Path(args.out) if args.out else Path(args.run), x=args.x, y=args.y,
                         metric=args.metric, n_spectra=args.spectra)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"dynsim sweep plot: {e}", file=sys.stderr)
        return 2
    for p in paths:
        print(f"wrote {p}")
    return 0


def _boundary_config(args, wanted: str):
    """The boundary configuration a command's CONFIG (or --example) and --set give; `None` when --print-example has
    printed it. `wanted` says what CONFIG should be."""
    from dynsim.sweeps import ConfigError, load_boundary_config

    if _use_example(args):
        return None
    if args.config is None:
        raise ConfigError(f"give a CONFIG file: {wanted}")
    return load_boundary_config(args.config, _overrides(args))


def _cmd_boundary_run(args) -> int:
    from pathlib import Path

    from dynsim.sweeps import ConfigError, describe_boundary, run_boundary

    try:
        cfg = _boundary_config(args, "a sweep config with a [boundary] table, or --example NAME ('dynsim sweep "
                                     "examples' lists them; the boundaries guide explains the table)")
        if cfg is None:
            return 0
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"dynsim boundary: {e}", file=sys.stderr)
        return 2
    print(describe_boundary(cfg))
    if args.dry_run:
        return 0
    out = Path(args.out) if args.out else Path("runs") / cfg.name
    print(f"  run folder: {out}")
    try:
        meta = run_boundary(cfg, out, progress=not args.quiet, overwrite=args.overwrite,
                            command=["dynsim"] + list(sys.argv[1:]))
    except FileExistsError as e:
        print(f"dynsim boundary: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dynsim boundary: interrupted; the blocks written so far are kept in {out}: run the same command to "
              f"resume", file=sys.stderr)
        return 130
    print(f"done: {meta['chunks_computed']} block(s) computed, {meta['chunks_reused']} reused, "
          f"{meta['seconds']:.1f} s -> {out}")
    return 0


def _cmd_boundary_trace(args) -> int:
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from dynsim.sweeps import ConfigError, Flag, plot_curve, trace_boundary

    try:
        cfg = _boundary_config(args, "a boundary config with one [grid] axis (the anchors), or --example NAME")
        if cfg is None:
            return 0
        b = cfg.boundary
        print(f"boundary curve {cfg.name!r}: {b['parameter']} in {b['bracket']} against {', '.join(cfg.dims)} from "
              f"{cfg.n_configs} anchors; bend {args.bend if args.bend is not None else 'default'}, at most "
              f"{args.max_rays} rays in {args.max_rounds} rounds")
        out = Path(args.out) if args.out else Path("runs") / f"{cfg.name}_curve"
        curve = trace_boundary(cfg, bend=args.bend, max_rays=args.max_rays, max_rounds=args.max_rounds,
                               progress=not args.quiet, out=out, command=["dynsim"] + list(sys.argv[1:]))
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"dynsim boundary trace: {e}", file=sys.stderr)
        return 2
    ax = plot_curve(cfg, curve)
    for ext in ("png", "pdf"):
        ax.figure.savefig(out / f"curve.{ext}", dpi=150)
    plt.close(ax.figure)
    print(f"done: {curve['s'].size} rays ({int(np.sum(curve['warm']))} warm-started), "
          f"{int(np.sum(curve['flag'] == Flag.OK))} with a boundary, {int(np.sum(curve['n_evaluations']))} solves "
          f"-> {out}/curve.npz, curve.png")
    return 0


def _cmd_boundary_plot(args) -> int:
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from dynsim.sweeps import fold_boundary, plot_boundary
    from dynsim.sweeps import load

    out = Path(args.out) if args.out else Path(args.run)
    try:
        res = load(args.run)
        if not res.config.boundary:
            raise ValueError(f"{args.run} holds a sweep, not a boundary search (plot it with dynsim sweep plot)")
        grid = load(args.grid) if args.grid else None
        ax = plot_boundary(res, grid=grid)
        out.mkdir(parents=True, exist_ok=True)
        if args.fold:
            folds = fold_boundary(res.config, res)
            (x, xs), = res.config.axes[0].values.items()
            ax.plot(xs, folds["fold"], "-", color="tab:orange", lw=1.2, label="fold of fixed points")
            ax.legend(fontsize=8, framealpha=0.85)
            np.savez(out / "fold.npz", **{x: xs} | folds)
    except (ValueError, FileNotFoundError, KeyError, NotImplementedError) as e:
        print(f"dynsim boundary plot: {e}", file=sys.stderr)
        return 2
    for ext in ("png", "pdf"):
        ax.figure.savefig(out / f"boundary.{ext}", dpi=150)
        print(f"wrote {out / f'boundary.{ext}'}")
    plt.close(ax.figure)
    return 0


def _cmd_info(args) -> int:
    import json

    from dynsim.provenance import run_metadata

    print(json.dumps(run_metadata(), indent=2))
    return 0


def commands(parser: argparse.ArgumentParser | None = None, prog: str = "dynsim"):
    """`(command, parser)` for the `dynsim` parser (default: `build_parser()`'s) and every
    subcommand below it, depth first: what the documentation's command-line page lists."""
    parser = build_parser() if parser is None else parser
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, f"{prog} {name}")


def build_parser() -> argparse.ArgumentParser:
    from dynsim import components
    from dynsim import networks as ssl_net
    from dynsim.grassmann import LOSSES as GRASSMANN_LOSSES
    from dynsim.networks import LOSSES as NETWORK_LOSSES
    from dynsim.params import VIEWS

    parser = argparse.ArgumentParser(
        prog="dynsim",
        description="Learning dynamics of non-contrastive SSL (BYOL, SimSiam, DirectPred, IsoLoss) "
                    "in linear networks: eigenmode ODEs, matrix-level flows, figures.",
        epilog="Runs in float64 by default. Errors end in one line (set DYNSIM_DEBUG=1 for the traceback). "
               "Example: dynsim figures  (regenerates every figure into figures/)",
    )
    parser.add_argument("--float32", action="store_true", help="compute in float32 instead of float64")
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="do not read or write the persistent compilation cache (default: on, in "
                             "$XDG_CACHE_HOME/dynsim/jax; DYNSIM_COMPILE_CACHE=FOLDER moves it, =off turns it off)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fig = sub.add_parser("figures", help="regenerate figures (PNG, PDF and the data as .npz) into figures/",
                         description="Regenerate the registered figures. Each writes NAME.png, NAME.pdf and "
                                     "NAME.npz (the plotted data plus run metadata).")
    fig.add_argument("names", nargs="*", metavar="NAME", help="figures to make (default: all; see --list)")
    fig.add_argument("--list", action="store_true", help="list the available figures and exit")
    fig.add_argument("--out", default="figures", help="output folder (default: %(default)s)")
    fig.add_argument("--timings", action="store_true",
                     help="print each figure's wall time, split into JAX compile (tracing, lowering, XLA) and the rest")
    fig.add_argument("--fast", action="store_true", help="coarser grids and fewer points, for tests")
    fig.add_argument("--jobs", "-j", type=_positive_int, default=_default_jobs(), metavar="N",
                     help="worker processes making figures in parallel (default: the CPU cores available, "
                          "at most 8)")
    fig.set_defaults(func=_cmd_figures)

    cmp = sub.add_parser(
        "compare", help="theory vs simulation: linear network vs eigenmode ODEs, or Riemannian GD vs the Grassmann flow",
        description="--model network (default): run the per-mode eigenmode theory and the linear network (expected-"
                    "gradient flow, exact-gradient GD and minibatch SGD) from an aligned start on isotropic data, and "
                    "print the maximum relative error of the spectrum of WW^T over time, plus the GD error for halving "
                    "learning rates and the fitted order (~1); defaults are the setting of Tian et al. 2021's check. "
                    "--model grassmann: Riemannian GD (QR, polar, exp-map retractions, subspace iteration, the exact "
                    "qf(e^{lr A}W) integrator) against the exact constrained flow on Esser et al. (2023)'s "
                    "problem, compared through projectors and principal angles, with fitted orders.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cmp.add_argument("--model", default="network", choices=["network", "grassmann"], help="what to compare")
    cmp.add_argument("--loss", default=None, choices=NETWORK_LOSSES + GRASSMANN_LOSSES,
                     help=f"network: {', '.join(NETWORK_LOSSES)} (default {NETWORK_LOSSES[0]}); "
                          f"grassmann: {', '.join(GRASSMANN_LOSSES)} (default {GRASSMANN_LOSSES[0]})")
    cmp.add_argument("--t1", type=float, default=None, help="final time t = lr * steps (default 10 network, 6 grassmann)")
    cmp.add_argument("--lrs", default=None, help="decreasing learning rates for the order "
                                                 "(default 0.04,0.02,0.01 network; 0.1,0.05,0.025 grassmann)")
    cmp.add_argument("--seed", type=int, default=0, help="seed of the data / initial state and of SGD")
    cmp.add_argument("--out", default=None, help="folder for compare.npz and compare.json (default: print only)")
    net = cmp.add_argument_group("network options (--model network)")
    net.add_argument("--predictor", default="trainable", choices=ssl_net.PREDICTORS,
                     help="the predictor (those with an eigenmode theory: trainable, symmetric, identity and the "
                          "spectral closed forms)")
    net.add_argument("--target", default="ema", choices=ssl_net.TARGETS)
    net.add_argument("--no-stop-gradient", action="store_true",
                     help="let the gradient through the target (--target online: SimSiam without the stop-gradient, "
                          "or Barlow Twins as Simon et al. 2023 solve it, with --predictor identity)")
    net.add_argument("--predictor-input", default="features", choices=components.INPUTS,
                     help="moments fed to a closed-form predictor")
    net.add_argument("--n1", type=int, default=8, help="input dimension")
    net.add_argument("--n2", type=int, default=4, help="output dimension (modes)")
    net.add_argument("--sigma2", type=float, default=0.5, help="augmentation variance")
    net.add_argument("--views", default="same", choices=VIEWS,
                     help="which view carries the noise: both (same), the target view only (clean_online), or "
                          "each its own (per_view: online --sigma2, target --sigma2-target)")
    net.add_argument("--sigma2-target", type=float, default=None, help="target view's noise variance (per_view)")
    net.add_argument("--alpha-p", type=float, default=1.0, help="predictor / online learning rate")
    net.add_argument("--beta", type=float, default=0.4, help="EMA rate (ODE units)")
    net.add_argument("--wd", type=float, default=0.01, help="weight decay on W and W_p (ODE units)")
    net.add_argument("--power", type=float, default=1.0, help="closed-form predictor exponent")
    net.add_argument("--eps", type=float, default=0.0, help="closed-form predictor epsilon")
    net.add_argument("--lr", type=float, default=0.01, help="learning rate of the GD and SGD runs")
    net.add_argument("--batch", type=int, default=4096, help="SGD minibatch size")
    net.add_argument("--nodes", type=int, default=4096, help="quadrature nodes of the cosine expectation")
    grs = cmp.add_argument_group("grassmann options (--model grassmann)")
    grs.add_argument("--d", type=int, default=30, help="input dimension")
    grs.add_argument("--h", type=int, default=4, help="width (embedding dimension), h <= d")
    grs.add_argument("--n", type=int, default=2000, help="number of samples behind A")
    cmp.set_defaults(func=_cmd_compare)

    _add_sweep_parser(sub)
    _add_boundary_parser(sub)

    info = sub.add_parser("info", help="print versions, backend, devices and precision",
                          description="Print the metadata dynsim stores with every run.")
    info.set_defaults(func=_cmd_info)
    return parser


SWEEP_COMMANDS = ("run", "merge", "plot", "examples")


def _add_config_options(parser, set_example: str, chunk: str, out: str) -> None:
    """The options of the commands that read a sweep config: `dynsim sweep run`, `dynsim boundary run` and
    `dynsim boundary trace` (their wording differs)."""
    parser.add_argument("--example", metavar="NAME", help="use a packaged example config instead of CONFIG")
    parser.add_argument("--print-example", action="store_true", help="with --example: print the config and exit")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help=f"override one key, value read as TOML: {set_example}")
    parser.add_argument("--out", default=None, help=out)
    parser.add_argument("--chunk-size", type=int, default=None, help=f"{chunk} (run.chunk_size)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_run_options(run, set_example: str, dry_run: str, chunk: str) -> None:
    """The options `dynsim sweep run` and `dynsim boundary run` share (their wording differs): those of every
    config-reading command, `--dry-run` and `--overwrite`."""
    _add_config_options(run, set_example, chunk, "run folder (default: runs/<name>)")
    run.add_argument("--dry-run", action="store_true", help=dry_run)
    run.add_argument("--overwrite", action="store_true", help="discard an existing run folder's results")


def _add_sweep_parser(sub) -> None:
    sw = sub.add_parser(
        "sweep", help="parameter sweeps from a TOML config: run, merge parts, plot phase diagrams",
        description="dynsim sweep CONFIG [options] runs a sweep (same as 'dynsim sweep run'). Subcommands: run, "
                    "merge, plot, examples. A run folder holds config.toml (resolved), metadata.json and "
                    "chunks/*.npz; rerunning the same command resumes it. Load results with "
                    "dynsim.sweeps.load(RUN).")
    ssub = sw.add_subparsers(dest="sweep_command", metavar="SUBCOMMAND")
    run = ssub.add_parser(
        "run", help="run or resume a sweep",
        description="Expand the TOML config (grid / zip / random axes; see 'dynsim sweep examples'), run it in "
                    "fixed-size chunks vmapped and sharded over the JAX devices, and write the run folder. "
                    "Killed runs resume with the same command.")
    run.add_argument("config", nargs="?", metavar="CONFIG", help="sweep TOML file")
    run.add_argument("--yes", action="store_true", help="start a sweep of more than a million configurations")
    run.add_argument("--estimate", action="store_true",
                     help="with --dry-run: also time chunk 0 (compile + one chunk) and estimate the run time")
    _add_run_options(run, "--set solve.t1=50 --set 'grid.eta=[0, 0.1]'",
                     "print configurations, chunks and memory; run nothing", "configurations per chunk file")
    run.add_argument("--part", default=None, metavar="I/N",
                     help="run only part I of N (0 <= I < N; contiguous chunk ranges) for job arrays; "
                          "assemble with 'dynsim sweep merge'")
    run.add_argument("--distributed", action="store_true",
                     help="call jax.distributed.initialize() and run this process's part on its local devices")
    run.set_defaults(func=_cmd_sweep_run)
    mrg = ssub.add_parser("merge", help="assemble the run folders of --part runs into one",
                          description="Check that the parts hold the same sweep and copy their chunk files into "
                                      "OUT (which may be one of the parts, or a shared folder they all wrote to).")
    mrg.add_argument("out", metavar="OUT", help="merged run folder")
    mrg.add_argument("parts", nargs="+", metavar="PART", help="run folders of the parts")
    mrg.add_argument("--overwrite", action="store_true", help="discard OUT's existing results first")
    mrg.set_defaults(func=_cmd_sweep_merge)
    plt = ssub.add_parser("plot", help="phase diagram and spectra of a finished run",
                          description="Phase diagram of a metric over two swept axes (mean over the other axes), "
                                      "with the analytic boundary where theory gives one, and spectra over time "
                                      "for a few configurations. Writes phase.png/.pdf and spectra.png/.pdf.")
    plt.add_argument("run", metavar="RUN", help="run folder")
    plt.add_argument("--x", default=None, help="swept parameter on the x axis (default: the first)")
    plt.add_argument("--y", default=None, help="swept parameter on the y axis (default: the second)")
    plt.add_argument("--metric", default="collapsed",
                     choices=["collapsed", "auc", "surviving_modes", "effective_rank", "collapse_time",
                              "time_to_fraction"], help="colour of the phase diagram (default: collapsed)")
    plt.add_argument("--spectra", type=int, default=4, help="configurations shown in the spectra figure (default: 4)")
    plt.add_argument("--out", default=None, help="output folder (default: the run folder)")
    plt.add_argument("--partial", action="store_true", help="plot an unfinished run (missing chunks blank)")
    plt.set_defaults(func=_cmd_sweep_plot)
    ex = ssub.add_parser("examples", help="list the packaged example configs")
    ex.set_defaults(func=_cmd_sweep_examples)
    sw.set_defaults(func=lambda a: (sw.print_help(), 0)[1])


BOUNDARY_COMMANDS = ("run", "trace", "plot")


def _add_boundary_parser(sub) -> None:
    import inspect

    from dynsim.sweeps import trace_boundary

    trace_defaults = {k: v.default for k, v in inspect.signature(trace_boundary).parameters.items()}
    bd = sub.add_parser(
        "boundary", help="collapse boundaries by bisection along rays, without a grid",
        description="dynsim boundary CONFIG [options] runs a boundary search (same as 'dynsim boundary run'): a "
                    "sweep config whose axes are the rays and whose [boundary] table names the searched parameter, "
                    "its bracket, the switching criterion and the tolerances. Subcommands: run, trace, plot. Load results "
                    "with dynsim.sweeps.load(RUN).")
    bsub = bd.add_subparsers(dest="boundary_command", metavar="SUBCOMMAND")
    run = bsub.add_parser(
        "run", help="run or resume a boundary search",
        description="Scan each ray's bracket, then bisect the switch of the criterion to the tolerance, all rays "
                    "of a block in one batched solve per step, and write the run folder (config.toml, "
                    "metadata.json, chunks/). Killed runs resume with the same command.")
    run.add_argument("config", nargs="?", metavar="CONFIG", help="TOML file: a sweep config with [boundary]")
    _add_run_options(run, "--set boundary.rtol=1e-6", "print rays, bracket, tolerance and solves; run nothing",
                     "rays per block and chunk file")
    run.set_defaults(func=_cmd_boundary_run)
    tr = bsub.add_parser(
        "trace", help="a boundary curve by continuation: rays added where it bends, warm-started brackets",
        description="The config's one [grid] axis gives the anchors, searched as rays; then, in rounds, a ray is "
                    "added in the middle of every interval next to a point that lies farther than --bend from its "
                    "neighbours' chord, its bracket centred on the chord and checked at both ends (widened where it "
                    "misses). Writes curve.npz (arrays, metadata), config.toml and curve.png/.pdf into --out.")
    tr.add_argument("config", nargs="?", metavar="CONFIG", help="TOML file: a boundary config with one [grid] axis")
    _add_config_options(tr, "--set boundary.rtol=1e-6", "rays per batched call",
                        "output folder (default: runs/<name>_curve)")
    tr.add_argument("--bend", type=float, default=None,
                    help="largest distance of a point from its neighbours' chord, in the searched parameter (default: "
                         "1e-3 of the bracket's width)")
    tr.add_argument("--max-rays", type=_positive_int, default=trace_defaults["max_rays"],
                    help="most rays, anchors included (default: %(default)s)")
    tr.add_argument("--max-rounds", type=_positive_int, default=trace_defaults["max_rounds"],
                    help="most refinement rounds (default: %(default)s)")
    tr.set_defaults(func=_cmd_boundary_trace)
    plt = bsub.add_parser("plot", help="the boundary against the ray parameter",
                          description="Plot the boundary of a finished search against its ray parameter, with the "
                                      "closed form where the model has one, or over a grid sweep's phase diagram "
                                      "(--grid). Writes boundary.png/.pdf.")
    plt.add_argument("run", metavar="RUN", help="run folder of a boundary search")
    plt.add_argument("--grid", default=None, metavar="SWEEP", help="run folder of a grid sweep over the same plane")
    plt.add_argument("--fold", action="store_true",
                     help="also locate the fold of fixed points on every ray (Newton on F = 0, J v = 0) and draw it; "
                          "writes fold.npz")
    plt.add_argument("--out", default=None, help="output folder (default: the run folder)")
    plt.set_defaults(func=_cmd_boundary_plot)
    bd.set_defaults(func=lambda a: (bd.print_help(), 0)[1])


def _command_index(argv) -> int | None:
    """Position of the command (the first argument that is not a global option), or `None`."""
    return next((i for i, a in enumerate(argv) if not a.startswith("-")), None)


def _route_sweep(argv):
    """`dynsim sweep CONFIG ...` is `dynsim sweep run CONFIG ...`, and `dynsim boundary CONFIG ...` is
    `dynsim boundary run CONFIG ...`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    i = _command_index(argv)
    subcommands = {"sweep": SWEEP_COMMANDS, "boundary": BOUNDARY_COMMANDS}
    if i is not None and argv[i] in subcommands:
        rest = argv[i + 1:]
        if rest and rest[0] not in subcommands[argv[i]] and rest[0] not in ("-h", "--help"):
            argv.insert(i + 1, "run")
    return argv


#: XLA's classic CPU code emitters: the same programs compile in 35-40 % less time and run as fast
#: (`docs/performance.md#compile-time`). An option of the jaxlib releases pyproject.toml allows (0.10.x); XLA stops
#: at an option it does not know, so a jax upgrade checks this line first.
CLASSIC_EMITTERS = "--xla_cpu_use_fusion_emitters=false"


def _xla_flags(argv) -> str:
    """XLA_FLAGS for a command, read when JAX's backend starts (no effect once JAX has run something in this
    process): the user's, then the classic CPU emitters (`CLASSIC_EMITTERS`) unless
    they choose the emitters themselves (`--xla_cpu_use_fusion_emitters=true` keeps XLA's default), and for sweeps
    and boundary searches on CPU one JAX device per core unless they set the count."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_fusion_emitters" not in flags:
        flags += " " + CLASSIC_EMITTERS
    i = _command_index(argv)
    if i is not None and argv[i] in ("sweep", "boundary") and "xla_force_host_platform_device_count" not in flags:
        flags += f" --xla_force_host_platform_device_count={os.cpu_count() or 1}"
    return flags.strip()


def main(argv=None) -> int:
    argv = _route_sweep(argv)
    # set before anything imports JAX (the parser reads the option tables of the package), for this command only:
    # the processes it starts (figure workers) inherit it; a caller's environment is restored on return
    saved = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = _xla_flags(argv)
    try:
        return _main(argv)
    finally:
        if saved is None:
            del os.environ["XLA_FLAGS"]
        else:
            os.environ["XLA_FLAGS"] = saved


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    _set_precision(args.float32)
    _set_compile_cache(args.no_compile_cache)
    if os.environ.get("DYNSIM_DEBUG"):  # developers: the full traceback
        return args.func(args)
    from dynsim.solvers import SolveError

    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"dynsim {args.command}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError, TypeError, SolveError, MemoryError) as e:
        # a user-facing command ends with one line naming the problem, not a traceback (DYNSIM_DEBUG=1 shows it)
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"dynsim {args.command}: {type(e).__name__}: {message}" if isinstance(e, (OSError, MemoryError))
              else f"dynsim {args.command}: {message}", file=sys.stderr)
        return 2 if not isinstance(e, SolveError) else 1


if __name__ == "__main__":
    raise SystemExit(main())
