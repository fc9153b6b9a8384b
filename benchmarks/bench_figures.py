"""``dynsim figures`` (the README's first command) against an earlier version, in the same run: every figure the
earlier version makes (figures added since are left out, so both sides do the same work).

* ``baseline``: the figures as a checkout of ``--baseline`` (a git revision; a temporary ``git worktree``) makes
  them, with this interpreter and its packages, in a fresh process (``python -m dynsim figures``). A baseline without
  the compilation cache and worker processes runs as it always did; one with them runs with both off
  (``--no-compile-cache --jobs 1``) unless ``--baseline-as-is`` is given. Each side compiles as its own command does
  (the default baseline with XLA's default CPU emitters, this version with the classic ones, docs/performance.md).
* ``cold``: this checkout, an empty compilation cache folder, the default worker count (the cores available).
* ``warm``: this checkout again, the cache as the cold run left it.

Each is a fresh ``dynsim`` process timed from start to exit (imports included). The figures' data (every array of
every ``.npz``) must be the same in all three runs: the largest relative difference (an entry more than twelve
orders of magnitude below its array's largest measured against ``FLOOR`` times that) is printed and a difference above
``--data-rtol`` fails the benchmark. Machines here are shared and noisy: only ratios measured in the same run are
reported; ``--repeat`` takes the best of several runs of each. The last two lines are
``figures_speedup_cold=<x>`` (target >= 2) and ``figures_speedup_warm=<x>`` (target >= 4).

    python benchmarks/bench_figures.py                      # against the version before the parallel figure runs
    python benchmarks/bench_figures.py --baseline HEAD~1 --fast
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: the last version that made the figures one after another in one process, without a compilation cache
BASELINE = "0545bb4"
#: entries smaller than this fraction of their array's largest magnitude are compared on that scale
FLOOR = 1e-12


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--record", action="store_true",
                   help="also write the output, date, machine and versions to benchmarks/results/ (the docs include it)")
    p.add_argument("--baseline", default=BASELINE, help="git revision to compare against (default: %(default)s)")
    p.add_argument("--baseline-as-is", action="store_true",
                   help="run the baseline with its own defaults even if it has a cache and workers")
    p.add_argument("--fast", action="store_true", help="dynsim figures --fast (coarse grids: a quicker check)")
    p.add_argument("--repeat", type=int, default=1, help="runs of each variant; the fastest counts")
    p.add_argument("--jobs", type=int, default=None, help="worker processes of this version (default: its own)")
    p.add_argument("--data-rtol", type=float, default=1e-12,
                   help="largest relative difference of the figures' data allowed between versions")
    p.add_argument("names", nargs="*", help="figures (default: every figure the baseline makes)")
    return p.parse_args(argv)


def _run(source: Path, out: Path, cache_dir: Path | None, extra: list[str], names: list[str]) -> float:
    """Wall seconds of one ``python -m dynsim figures`` process importing dynsim from ``source``."""
    env = dict(os.environ, PYTHONPATH=str(source), DYNSIM_COMPILE_CACHE=str(cache_dir) if cache_dir else "off")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    check = subprocess.run([sys.executable, "-c", "import dynsim, sys; sys.stdout.write(dynsim.__file__)"],
                           env=env, cwd=source, capture_output=True, text=True, check=True).stdout
    if not Path(check).resolve().is_relative_to(source.resolve()):
        raise SystemExit(f"dynsim was imported from {check}, not from {source}")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dynsim", "figures", "--out", str(out), *extra, *names], env=env,
                   cwd=source, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _data_difference(a: Path, b: Path) -> float:
    """Largest relative difference between the arrays of the ``.npz`` files of two output folders (same files)."""
    files_a, files_b = sorted(p.name for p in a.glob("*.npz")), sorted(p.name for p in b.glob("*.npz"))
    if files_a != files_b:
        raise SystemExit(f"the runs wrote different figures: {files_a} vs {files_b}")
    worst = 0.0
    for name in files_a:
        with np.load(a / name) as da, np.load(b / name) as db:
            if sorted(da.files) != sorted(db.files):
                raise SystemExit(f"{name}: different arrays {sorted(da.files)} vs {sorted(db.files)}")
            for key in da.files:
                if key == "metadata":
                    continue
                x, y = da[key], db[key]
                if x.shape != y.shape:
                    raise SystemExit(f"{name}:{key}: shapes {x.shape} vs {y.shape}")
                if x.dtype.kind in "fc":
                    both = np.isfinite(x) & np.isfinite(y)
                    # relative per entry, but an entry far below its array's largest (a collapsing mode's strength
                    # decays to 1e-78) is measured against FLOOR times that largest: its round-off is not a change
                    top = float(np.max(np.abs(np.where(both, y, 0.0)), initial=0.0))
                    scale = np.maximum(np.maximum(np.abs(x), np.abs(y)), FLOOR * top)
                    if not np.array_equal(np.isfinite(x), np.isfinite(y)):
                        raise SystemExit(f"{name}:{key}: non-finite entries differ")
                    diff = np.where(both, np.abs(x - y) / np.where(scale > 0, scale, 1.0), 0.0)
                    worst = max(worst, float(np.max(diff, initial=0.0)))
                elif not np.array_equal(x, y):
                    raise SystemExit(f"{name}:{key}: values differ")
    return worst


def main(argv=None) -> None:
    args = _parse(argv)
    extra = ["--fast"] if args.fast else []
    with tempfile.TemporaryDirectory(prefix="bench_figures_") as tmp:
        tmp = Path(tmp)
        base_src = tmp / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_src), args.baseline],
                       check=True, capture_output=True)
        try:
            help_text = subprocess.run([sys.executable, "-m", "dynsim", "figures", "--help"], cwd=base_src,
                                       env=dict(os.environ, PYTHONPATH=str(base_src)), capture_output=True,
                                       text=True, check=True).stdout
            listed = subprocess.run([sys.executable, "-m", "dynsim", "figures", "--list"], cwd=base_src,
                                    env=dict(os.environ, PYTHONPATH=str(base_src)), capture_output=True, text=True,
                                    check=True).stdout
            # the same work on both sides: by default the figures the baseline makes (later figures are extra work)
            names = args.names or [line.split()[0] for line in listed.splitlines() if line.strip()]
            base_extra = list(extra)
            if not args.baseline_as_is and "--jobs" in help_text:
                base_extra += ["--jobs", "1"]
            own = extra + (["--jobs", str(args.jobs)] if args.jobs else [])
            times = {"baseline": [], "cold": [], "warm": []}
            for r in range(args.repeat):
                times["baseline"].append(_run(base_src, tmp / "out_base", None, base_extra, names))
                cache_dir = tmp / f"cache_{r}"
                times["cold"].append(_run(ROOT, tmp / "out_cold", cache_dir, own, names))
                times["warm"].append(_run(ROOT, tmp / "out_warm", cache_dir, own, names))
                print(f"run {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
            worst = max(_data_difference(tmp / "out_base", tmp / "out_cold"),
                        _data_difference(tmp / "out_base", tmp / "out_warm"))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_src)], check=False,
                           capture_output=True)
    best = {k: min(v) for k, v in times.items()}
    print(f"baseline {args.baseline}: {best['baseline']:.1f} s; this version: cold {best['cold']:.1f} s, "
          f"warm {best['warm']:.1f} s ({os.cpu_count()} CPUs{', --fast' if args.fast else ''})")
    print(f"figures_data_max_rel_diff={worst:.3g}")
    if worst > args.data_rtol:
        raise SystemExit(f"the figures' data changed by {worst:.3g} (relative) > --data-rtol {args.data_rtol:g}")
    print(f"figures_speedup_cold={best['baseline'] / best['cold']:.2f}")
    print(f"figures_speedup_warm={best['baseline'] / best['warm']:.2f}")


if __name__ == "__main__":
    from _record import run

    run(main, "bench_figures", precision="float64 (the dynsim figures processes it times)")
