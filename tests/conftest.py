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
classic CPU emitters, as the ``dynsim`` command does (``dynsim.cli.CLASSIC_EMITTERS``; docs/performance.md): the
same programs compile in 35-40 % less time and run as fast. The setting stays in this process's XLA_FLAGS, so the
processes the tests start (notebook kernels, figure workers, command-line processes whose results a test compares
with this process's) compile the same programs. A float32 solve in a fresh interpreter and a float32 sweep ask for
XLA's default emitters (``--xla_cpu_use_fusion_emitters=true``), so both code paths run."""

import os

import jax

from dynsim.cli import _xla_flags

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ["DYNSIM_COMPILE_CACHE"] = "off"
jax.config.update("jax_enable_x64", True)

# the user's XLA_FLAGS win where they choose the emitters themselves
os.environ["XLA_FLAGS"] = _xla_flags([])
