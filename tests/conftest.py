"""Tests run in float64 (the oracles' tolerances are stated for it); see tests/test_float32.py
for the single-precision path."""

import jax

jax.config.update("jax_enable_x64", True)
