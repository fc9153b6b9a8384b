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
    from dynsim.figures import halvagal2023, tian2021  # noqa: F401  (register their figures)

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
