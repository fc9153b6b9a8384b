"""Tests run in float64 (the oracles' tolerances are stated for it). The single-precision path is
checked in fresh interpreters or with explicit float32 inputs (``grep -n float32 tests/*.py``)."""

import jax

jax.config.update("jax_enable_x64", True)
