"""Tests run in float64 (the oracles' tolerances are stated for it). The single-precision path is
checked in fresh interpreters or with explicit float32 inputs (``grep -n float32 tests/*.py``).

The command line's persistent compilation cache (:mod:`dynsim.cache`) is off for the tests and for the processes
they start (a test of the cache turns it on in its own folder): a test run must not read programs compiled by an
earlier run, nor write into the user's cache folder.

The suite runs in two worker processes on two cores (``-n 2``). OpenBLAS, NumPy's linear algebra, would start a
thread per core in each worker, and its idle threads spin: beside a compiling worker, the NumPy-heavy checks (the
sampled reference rules) ran much slower (16.6 s against 10.9 s for the Halvagal toy's, in a two-worker run of three
test files). One BLAS thread per process leaves the two cores to the two workers. OpenBLAS reads the setting when it
loads, so it reaches the worker processes (started after this file is read) and the notebook kernels and
command-line processes the tests start, not the process that collects the tests. It changes speed only: any
round-off difference it could make is far below the tolerances the tests assert.

Most of the suite's time is XLA compiling hundreds of distinct programs. The test processes compile with XLA's
classic CPU emitters (``--xla_cpu_use_fusion_emitters=false``), which compile the same programs in 35-40 % less
time (measured on solves, training loops and a sweep chunk) and run them as fast; their values differ from the
default emitters' by round-off, which an adaptive solve can carry up to its tolerance, far below what the tests
assert. The flag is set only while this process's JAX backend starts; the notebook kernels get it too (the
``classic_emitters`` fixture) and so do the command-line processes whose results a test compares with this
process's (parallel figure workers, sweeps killed and resumed, on two devices, in two distributed processes). The
other processes the tests start (a float32 sweep, a float32 solve in a fresh interpreter) compile with the default
emitters, so both code paths run."""

import os

import jax
import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ["DYNSIM_COMPILE_CACHE"] = "off"
jax.config.update("jax_enable_x64", True)

_FLAGS = os.environ.get("XLA_FLAGS")
# an option of the jaxlib releases pyproject.toml allows (0.10.x); XLA stops at an option it does not know, so a jax
# upgrade checks this line first. None: the user's XLA_FLAGS already choose the emitters, and are kept
_CLASSIC_FLAGS = (None if "xla_cpu_use_fusion_emitters" in (_FLAGS or "")
                  else f"{_FLAGS or ''} --xla_cpu_use_fusion_emitters=false".strip())
if _CLASSIC_FLAGS is not None:
    os.environ["XLA_FLAGS"] = _CLASSIC_FLAGS
    jax.devices()  # the backend starts here, reading XLA_FLAGS
    if _FLAGS is None:
        del os.environ["XLA_FLAGS"]
    else:
        os.environ["XLA_FLAGS"] = _FLAGS


@pytest.fixture
def classic_emitters(monkeypatch):
    """Processes started while this fixture is active compile with the classic emitters (module docstring)."""
    if _CLASSIC_FLAGS is not None:
        monkeypatch.setenv("XLA_FLAGS", _CLASSIC_FLAGS)
