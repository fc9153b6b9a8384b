"""The ``dynsim`` command line. It runs in float64 unless ``--float32`` is given."""

from __future__ import annotations

import argparse
import sys
import time


def _set_precision(float32: bool) -> None:
    import jax

    jax.config.update("jax_enable_x64", not float32)


def _cmd_figures(args) -> int:
    from dynsim.figures import FIGURES, generate
    from dynsim.figures import agreement, halvagal2023, tian2021  # noqa: F401  (register their figures)

    if args.list:
        for spec in FIGURES.values():
            print(f"{spec.name:24s} {spec.description}")
        return 0
    t0 = time.perf_counter()
    try:
        paths = generate(args.names, out_dir=args.out, fast=args.fast)
    except KeyError as e:
        print(f"dynsim figures: {e.args[0]}", file=sys.stderr)
        return 2
    for p in paths:
        print(f"wrote {p}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


def _cmd_compare(args) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from dynsim import compare as cp
    from dynsim.figures import run_metadata

    try:
        net, y0, nargs = cp.default_setup(n1=args.n1, n2=args.n2, seed=args.seed, loss=args.loss,
                                          predictor=args.predictor, target=args.target, sigma2=args.sigma2,
                                          alpha_p=args.alpha_p, beta=args.beta, wd=args.wd,
                                          predictor_input=args.predictor_input, power=args.power, eps=args.eps,
                                          n_nodes=args.nodes)
        lrs = tuple(float(x) for x in args.lrs.split(","))
        if len(lrs) < 2 or any(b >= a for a, b in zip(lrs, lrs[1:])):
            raise ValueError(f"--lrs needs at least two decreasing learning rates, got {args.lrs!r}")
        print(f"dynsim compare: loss={args.loss} predictor={args.predictor} target={args.target} "
              f"n1={args.n1} n2={args.n2} sigma2={args.sigma2} t1={args.t1}")
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
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        arrays = {f"{k}_{i}": v for i, (_, a) in enumerate(rows) for k, v in
                  (("t", a.ts), ("theory", a.theory), ("simulation", a.simulation))}
        np.savez_compressed(out / "compare.npz", lrs=order["lrs"], lr_errors=order["errors"], orders=order["orders"],
                            errors=np.array([a.max_rel_error for _, a in rows]), **arrays)
        (out / "compare.json").write_text(json.dumps({"config": vars(args) | {"func": None}, "metadata": run_metadata(),
                                                      "errors": {n: a.max_rel_error for n, a in rows},
                                                      "gd_orders": order["orders"].tolist()}, indent=2, default=str))
        print(f"wrote {out / 'compare.npz'} and {out / 'compare.json'}")
    return 0


def _cmd_info(args) -> int:
    import json

    from dynsim.figures import run_metadata

    print(json.dumps(run_metadata(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynsim",
        description="Learning dynamics of non-contrastive SSL (BYOL, SimSiam, DirectPred, IsoLoss) "
                    "in linear networks: eigenmode ODEs, matrix-level flows, figures.",
        epilog="Runs in float64 by default. Example: dynsim figures  (regenerates every figure into figures/)",
    )
    parser.add_argument("--float32", action="store_true", help="compute in float32 instead of float64")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fig = sub.add_parser("figures", help="regenerate figures (PNG, PDF and the data as .npz) into figures/",
                         description="Regenerate the registered figures. Each writes NAME.png, NAME.pdf and "
                                     "NAME.npz (the plotted data plus run metadata).")
    fig.add_argument("names", nargs="*", metavar="NAME", help="figures to make (default: all; see --list)")
    fig.add_argument("--list", action="store_true", help="list the available figures and exit")
    fig.add_argument("--out", default="figures", help="output folder (default: %(default)s)")
    fig.add_argument("--fast", action="store_true", help="coarser grids and fewer points, for tests")
    fig.set_defaults(func=_cmd_figures)

    cmp = sub.add_parser(
        "compare", help="theory vs network simulation for one configuration (max rel. spectrum error, GD order)",
        description="Run the per-mode eigenmode theory and the linear network (expected-gradient flow, exact-"
                    "gradient GD and minibatch SGD) from an aligned start on isotropic data, and print the maximum "
                    "relative error of the spectrum of WW^T over time, plus the GD error for halving learning rates "
                    "and the fitted order (~1). Defaults: tian2021.md section 5's check.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cmp.add_argument("--loss", default="euclidean", choices=["euclidean", "cosine", "euclidean_iso", "cosine_iso"])
    cmp.add_argument("--predictor", default="trainable",
                     help="trainable, symmetric, identity, power, directpred_paper, directpred_code, directset")
    cmp.add_argument("--target", default="ema", choices=["ema", "online"])
    cmp.add_argument("--predictor-input", default="features", choices=["features", "WWt", "WXWt"])
    cmp.add_argument("--n1", type=int, default=8, help="input dimension")
    cmp.add_argument("--n2", type=int, default=4, help="output dimension (modes)")
    cmp.add_argument("--sigma2", type=float, default=0.5, help="augmentation variance")
    cmp.add_argument("--alpha-p", type=float, default=1.0, help="predictor / online learning rate")
    cmp.add_argument("--beta", type=float, default=0.4, help="EMA rate (ODE units)")
    cmp.add_argument("--wd", type=float, default=0.01, help="weight decay on W and W_p (ODE units)")
    cmp.add_argument("--power", type=float, default=1.0, help="closed-form predictor exponent")
    cmp.add_argument("--eps", type=float, default=0.0, help="closed-form predictor epsilon")
    cmp.add_argument("--t1", type=float, default=10.0, help="final time t = lr * steps")
    cmp.add_argument("--lr", type=float, default=0.01, help="learning rate of the GD and SGD runs")
    cmp.add_argument("--batch", type=int, default=4096, help="SGD minibatch size")
    cmp.add_argument("--lrs", default="0.04,0.02,0.01", help="decreasing learning rates for the GD order")
    cmp.add_argument("--nodes", type=int, default=4096, help="quadrature nodes of the cosine expectation")
    cmp.add_argument("--seed", type=int, default=0, help="seed of the initial state and of SGD")
    cmp.add_argument("--out", default=None, help="folder for compare.npz and compare.json (default: print only)")
    cmp.set_defaults(func=_cmd_compare)

    info = sub.add_parser("info", help="print versions, backend, devices and precision",
                          description="Print the metadata dynsim stores with every run.")
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    _set_precision(args.float32)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
