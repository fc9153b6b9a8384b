"""The ``dynsim`` command line. It runs in float64 unless ``--float32`` is given."""

from __future__ import annotations

import argparse
import sys
import time


def _set_precision(float32: bool) -> None:
    import jax

    jax.config.update("jax_enable_x64", not float32)


def _cmd_figures(args) -> int:
    from dynsim.figures import generate
    from dynsim.figures.registry import load_all

    if args.list:
        for spec in load_all().values():
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


def _write_compare(out, args, arrays: dict, summary: dict) -> None:
    """``compare.npz`` (arrays) and ``compare.json`` (config, metadata, summary) in the folder ``out``."""
    import json
    from pathlib import Path

    import numpy as np

    from dynsim.figures import run_metadata

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "compare.npz", **arrays)
    (out / "compare.json").write_text(json.dumps({"config": vars(args) | {"func": None}, "metadata": run_metadata()}
                                                 | summary, indent=2, default=str))
    print(f"wrote {out / 'compare.npz'} and {out / 'compare.json'}")


def _cmd_compare_grassmann(args) -> int:
    import numpy as np

    from dynsim.grassmann import agreement as ga

    loss = args.loss or "contrastive"
    t1 = 6.0 if args.t1 is None else args.t1
    try:
        if loss not in ("contrastive", "alignment", "mse"):
            raise ValueError(f"--model grassmann takes --loss contrastive, alignment or mse, got {loss!r}")
        lrs = _decreasing_lrs(args.lrs or "0.1,0.05,0.025")
        A, W0 = ga.protocol_problem(loss, d=args.d, h=args.h, n=args.n, seed=args.seed)
        print(f"dynsim compare --model grassmann: loss={loss} d={args.d} h={args.h} n={args.n} t1={t1:g} "
              f"seed={args.seed} (esser2023.md section 5.2)")
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

    if args.model == "grassmann":
        return _cmd_compare_grassmann(args)
    args.loss = args.loss or "euclidean"
    args.t1 = 10.0 if args.t1 is None else args.t1
    try:
        if args.loss not in ("euclidean", "cosine", "euclidean_iso", "cosine_iso"):
            raise ValueError(f"--model network takes --loss euclidean, cosine, euclidean_iso or cosine_iso, "
                             f"got {args.loss!r}")
        net, y0, nargs = cp.default_setup(n1=args.n1, n2=args.n2, seed=args.seed, loss=args.loss,
                                          predictor=args.predictor, target=args.target, sigma2=args.sigma2,
                                          alpha_p=args.alpha_p, beta=args.beta, wd=args.wd,
                                          predictor_input=args.predictor_input, power=args.power, eps=args.eps,
                                          n_nodes=args.nodes)
        lrs = _decreasing_lrs(args.lrs or "0.04,0.02,0.01")
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
        arrays = {f"{k}_{i}": v for i, (_, a) in enumerate(rows) for k, v in
                  (("t", a.ts), ("theory", a.theory), ("simulation", a.simulation))}
        _write_compare(args.out, args, dict(lrs=order["lrs"], lr_errors=order["errors"], orders=order["orders"],
                                            errors=np.array([a.max_rel_error for _, a in rows]), **arrays),
                       {"errors": {n: a.max_rel_error for n, a in rows}, "gd_orders": order["orders"].tolist()})
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
        "compare", help="theory vs simulation: linear network vs eigenmode ODEs, or Riemannian GD vs the Grassmann flow",
        description="--model network (default): run the per-mode eigenmode theory and the linear network (expected-"
                    "gradient flow, exact-gradient GD and minibatch SGD) from an aligned start on isotropic data, and "
                    "print the maximum relative error of the spectrum of WW^T over time, plus the GD error for halving "
                    "learning rates and the fitted order (~1); defaults are tian2021.md section 5's check. "
                    "--model grassmann: Riemannian GD (QR, polar, exp-map retractions, subspace iteration, the exact "
                    "qf(e^{lr A}W) integrator) against the exact constrained flow on esser2023.md section 5.2's "
                    "problem, compared through projectors and principal angles, with fitted orders.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cmp.add_argument("--model", default="network", choices=["network", "grassmann"], help="what to compare")
    cmp.add_argument("--loss", default=None,
                     help="network: euclidean (default), cosine, euclidean_iso, cosine_iso; "
                          "grassmann: contrastive (default), alignment, mse")
    cmp.add_argument("--t1", type=float, default=None, help="final time t = lr * steps (default 10 network, 6 grassmann)")
    cmp.add_argument("--lrs", default=None, help="decreasing learning rates for the order "
                                                 "(default 0.04,0.02,0.01 network; 0.1,0.05,0.025 grassmann)")
    cmp.add_argument("--seed", type=int, default=0, help="seed of the data / initial state and of SGD")
    cmp.add_argument("--out", default=None, help="folder for compare.npz and compare.json (default: print only)")
    net = cmp.add_argument_group("network options (--model network)")
    net.add_argument("--predictor", default="trainable",
                     help="trainable, symmetric, identity, power, directpred_paper, directpred_code, directset")
    net.add_argument("--target", default="ema", choices=["ema", "online"])
    net.add_argument("--predictor-input", default="features", choices=["features", "WWt", "WXWt"])
    net.add_argument("--n1", type=int, default=8, help="input dimension")
    net.add_argument("--n2", type=int, default=4, help="output dimension (modes)")
    net.add_argument("--sigma2", type=float, default=0.5, help="augmentation variance")
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
