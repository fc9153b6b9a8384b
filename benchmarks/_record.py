"""``--record``: a benchmark script writes what it printed, with the date, the machine and the versions, to
``benchmarks/results/<script>[_<options>].md``, which the documentation's performance page includes.

Every script's ``__main__`` runs through :func:`run`: without ``--record`` it only runs the script. The ``key=value``
lines a script prints (its ratios against a baseline measured in the same run) become the record's table; the full
output follows it, folded.
"""

from __future__ import annotations

import datetime
import io
import os
import platform
import re
import shlex
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


class _Tee(io.TextIOBase):
    def __init__(self, stream):
        self.stream, self.buffer_ = stream, io.StringIO()

    def write(self, text):
        self.buffer_.write(text)
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


def machine() -> str:
    """CPU model, usable cores and memory of this machine, in one line."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        memory = f", {kib / 2**20:.0f} GiB"
    except (OSError, AttributeError):
        pass
    return f"{platform.system()} {platform.machine()}, {model}, {cores} cores{memory}"


def record_name(script: str, options: list[str]) -> str:
    """``bench_modes`` + its options: ``bench_modes_cosine``, ``bench_modes_method_tsit5``."""
    words = [re.sub(r"[^\w.]+", "_", o.lstrip("-")).strip("_") for o in options]
    return "_".join([script] + [w for w in words if w])


def write(script: str, options: list[str], output: str, started: datetime.datetime, precision: str | None = None) -> Path:
    """Write the record of one run; returns its path. `precision`: what the measured computation ran in, where it
    is not this process's JAX precision (a script that times other processes)."""
    import importlib.metadata as md

    import jax

    from dynsim.provenance import run_metadata

    meta = run_metadata()
    versions = ", ".join(f"{name} {meta[name]}" for name in ("dynsim", "jax", "jaxlib", "numpy"))
    for name in ("scipy", "diffrax", "matplotlib"):
        try:
            versions += f", {name} {md.version(name)}"
        except md.PackageNotFoundError:
            pass
    rows = re.findall(r"^([a-z]\w*)=(\S+)(?:\s{2,}.*)?$", output, re.M)
    lines = [f"Measured {started:%Y-%m-%d} ({started:%H:%M} UTC) on {machine()}; Python {platform.python_version()}, "
             f"{versions}; JAX backend {jax.default_backend()}, "
             f"{precision or ('float64' if jax.config.jax_enable_x64 else 'float32')}. Command: "
             f"`python benchmarks/{script}.py{''.join(' ' + shlex.quote(o) for o in options)}`.", ""]
    if rows:
        lines += ["| result | value |", "|---|---|", *(f"| `{k}` | {v} |" for k, v in rows), ""]
    lines += ['??? note "Full output"', "", "    ```text", *("    " + line for line in output.rstrip().splitlines()),
              "    ```", ""]
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{record_name(script, options)}.md"
    path.write_text("\n".join(lines))
    return path


def run(main, script: str, precision: str | None = None) -> None:
    """Run ``main()`` (which parses ``sys.argv``); with ``--record`` in ``sys.argv``, write the record afterwards
    (``precision``: as for :func:`write`)."""
    if "--record" not in sys.argv[1:]:
        main()
        return
    sys.argv.remove("--record")
    options = sys.argv[1:]
    started = datetime.datetime.now(datetime.timezone.utc)
    tee = _Tee(sys.stdout)
    sys.stdout = tee
    try:
        main()
    finally:
        sys.stdout = tee.stream
    path = write(script, options, tee.buffer_.getvalue(), started, precision)
    print(f"recorded {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
