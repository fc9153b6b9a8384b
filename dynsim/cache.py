"""A persistent JAX compilation cache in the user's cache folder, for the command line and for scripts.

JAX compiles every solver loop, network step and sweep chunk before it runs; on a CPU that compilation is most of
the time of a short run (`dynsim figures --timings` splits it out). With the cache on, a compiled program is written
to disk and a later process that builds the same program (same model structure, shapes, dtypes, options, JAX
version and device) loads it instead of compiling it again. Values never depend on it: the loaded program is the one
that was compiled.

The `dynsim` command turns it on by default, in [`default_dir`][dynsim.cache.default_dir]; `--no-compile-cache` or the environment
variable `DYNSIM_COMPILE_CACHE=off` turns it off, `DYNSIM_COMPILE_CACHE=/some/folder` moves it. In Python,
[`enable`][dynsim.cache.enable] does the same (importing dynsim never changes JAX's settings). The folder may be shared by several
processes at once (the parallel figure workers, two sweeps): JAX's own least-recently-used cache keeps it under
`MAX_BYTES` and takes a file lock (the `filelock` package) around every read and write, so no process reads an
entry another is still writing.

A program that contains a host callback cannot be stored. The default solver (diffrax) checks its save times inside
the compiled program with equinox's `error_if`, a host callback when equinox raises errors (`EQX_ON_ERROR=raise`,
its default, read once when equinox is imported). Every dynsim solve validates its save times before it starts, so
the check never fires; processes that dynsim starts with the cache on (the parallel figure workers) run with
`EQX_ON_ERROR=nan`, which keeps the check without the callback ([`storable_checks`][dynsim.cache.storable_checks]), and their programs are
stored. In a process where equinox was imported with its default, diffrax solves are compiled as before, not stored.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

#: environment variable: a folder for the cache, or `off` (also `0`, `no`, `false`, empty) to disable it
ENV = "DYNSIM_COMPILE_CACHE"
#: size limit of the cache folder; the least recently used programs are removed beyond it
MAX_BYTES = 2 * 1024**3
#: programs that compile faster than this are not written. Every program is: reading a small one back (a few ms)
#: is still faster than compiling it again (10-20 ms for a single array operation on a CPU), and a figure run
#: compiles hundreds of those for its set-up and summaries
MIN_COMPILE_SECONDS = 0.0
_OFF = {"off", "0", "no", "false", ""}


def default_dir() -> Path:
    """`$XDG_CACHE_HOME/dynsim/jax` (`~/.cache/dynsim/jax` when `XDG_CACHE_HOME` is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dynsim" / "jax"


def configured_dir() -> Path | None:
    """The folder `ENV` asks for: [`default_dir`][dynsim.cache.default_dir] when unset, `None` when it says off."""
    value = os.environ.get(ENV)
    if value is None:
        return default_dir()
    return None if value.strip().lower() in _OFF else Path(value).expanduser()


def enable(path: str | os.PathLike | None = None) -> Path:
    """Turn JAX's persistent compilation cache on in `path` (default: [`default_dir`][dynsim.cache.default_dir]), created if missing.
    Returns the folder. Changes JAX's global configuration for this process, like
    `jax.config.update("jax_enable_x64", True)` does."""
    import jax

    folder = Path(path).expanduser() if path is not None else default_dir()
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)  # LRU eviction, under a file lock
    return folder


def enabled_dir() -> Path | None:
    """The folder of the cache this process uses, `None` when it is off."""
    import jax

    value = jax.config.jax_compilation_cache_dir
    return Path(value) if value else None


@contextlib.contextmanager
def storable_checks(on: bool = True):
    """While active (and `on`), child processes started here get `EQX_ON_ERROR=nan` (module docstring) unless the
    user set `EQX_ON_ERROR`; this process's own setting is restored on exit."""
    if not on or "EQX_ON_ERROR" in os.environ:
        yield
        return
    os.environ["EQX_ON_ERROR"] = "nan"
    try:
        yield
    finally:
        os.environ.pop("EQX_ON_ERROR", None)
