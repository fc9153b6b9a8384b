"""Provenance recorded with every output (figures, sweep runs, comparisons): versions, devices, precision and the
compiler flags (they decide round-off)."""

from __future__ import annotations

import os
import platform

import numpy as np

from dynsim._version import __version__


def run_metadata() -> dict:
    """Versions, device, precision and the XLA_FLAGS of this process's environment (which JAX reads when its backend
    starts; the `dynsim` command sets them before), stored with every output."""
    import jax
    import jaxlib

    return {
        "dynsim": __version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "devices": [d.device_kind for d in jax.devices()],
        "x64": bool(jax.config.jax_enable_x64),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
