"""Tests run in float64 (the oracles' tolerances are stated for it). The single-precision path is
checked in fresh interpreters or with explicit float32 inputs (``grep -n float32 tests/*.py``).

The command line's persistent compilation cache (:mod:`dynsim.cache`) is off for the tests and for the processes
they start (a test of the cache turns it on in its own folder): a test run must not read programs compiled by an
earlier run, nor write into the user's cache folder."""

import os

import jax

os.environ["DYNSIM_COMPILE_CACHE"] = "off"
jax.config.update("jax_enable_x64", True)
