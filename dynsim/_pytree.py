"""The one rule for what is traced: float and array leaves are parameters, everything else is structure.

Models and components are PyTrees (`equinox.Module`). Their floats and arrays are *leaves*:
passed through `jit` they are traced, so a new value never recompiles and `vmap` can batch over
them. Strings, ints, bools and nested classes are static. Models that are plain hashable objects (no
leaves) pass through unchanged as static structure.
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np


def is_parameter(x) -> bool:
    """A traced parameter leaf: a float, or a JAX/NumPy array (not a bool, not an int)."""
    return isinstance(x, (float, jax.Array, np.ndarray, np.floating)) and not isinstance(x, bool)


def split_parameters(tree):
    """`(parameters, structure)`: the traced leaves of `tree` and the rest (hashable, static)."""
    return eqx.partition(tree, is_parameter)


def join_parameters(parameters, structure):
    """Inverse of `split_parameters`."""
    return eqx.combine(parameters, structure)
