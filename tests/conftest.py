"""Tests run in float64 (the oracles' tolerances are stated for it). The single-precision path is
checked in fresh interpreters or with explicit float32 inputs (``grep -n float32 tests/*.py``).

The host CPU is exposed as two JAX devices (set before JAX starts its backend), so the sweep tests
can compare one-device and two-device runs in the same process; results never depend on it."""

import os

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
