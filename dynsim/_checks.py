"""Input checks shared by every public entry point.

The checks run only on *concrete* values (Python numbers, NumPy arrays, JAX
arrays outside a trace). Inside `jit`/`vmap` the leaves are tracers and the
checks are skipped: they guard the user's input, not the traced computation.
"""

from __future__ import annotations

import numpy as np
from jax import core as _jax_core


def is_concrete(x) -> bool:
    """True when `x` holds actual numbers (not a JAX tracer or placeholder)."""
    if isinstance(x, _jax_core.Tracer):
        return False
    return isinstance(x, (int, float, complex, np.ndarray, np.generic)) or hasattr(x, "__array__")


def _as_np(x, name: str = "value") -> np.ndarray:
    """`x` as a float array; `None`, text, complex or other non-real values raise `ValueError` naming `name`."""
    if x is None or isinstance(x, (str, bytes)) or np.iscomplexobj(x):
        raise ValueError(f"{name} must be a real number or array, got {x!r}")
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number or array, got {x!r}") from None


def check_finite(name: str, x) -> None:
    """Raise `ValueError` naming `name` if `x` has a NaN or infinite entry."""
    if x is None:
        raise ValueError(f"{name} must be a real number or array, got None")
    if not is_concrete(x):
        return
    a = _as_np(x, name)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {a if a.size < 8 else 'an array with non-finite entries'}")


def check_count(name: str, n, minimum: int = 1) -> int:
    """`n` as an int, raising `ValueError` naming `name` unless it is an integer `>= minimum`."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or int(n) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {n!r}")
    return int(n)


def check_positive(name: str, x, *, strict: bool = True) -> None:
    """Raise if `x` is not finite and `> 0` (`strict`) or `>= 0`."""
    check_finite(name, x)  # None, non-real and non-finite values are refused there
    if not is_concrete(x):
        return
    a = _as_np(x, name)
    bad = a <= 0 if strict else a < 0
    if np.any(bad):
        rel = "> 0" if strict else ">= 0"
        raise ValueError(f"{name} must be {rel}, got {a if a.size < 8 else a[bad][:4]}")


def check_in_range(name: str, x, lo: float, hi: float) -> None:
    """Raise unless `lo <= x <= hi` elementwise."""
    check_finite(name, x)  # None, non-real and non-finite values are refused there
    if not is_concrete(x):
        return
    a = _as_np(x, name)
    if np.any((a < lo) | (a > hi)):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {a if a.size < 8 else 'out-of-range entries'}")


def check_square(name: str, x) -> None:
    if not is_concrete(x):
        return
    a = _as_np(x)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name} must be a square matrix, got shape {a.shape}")


def check_symmetric(name: str, x, *, rtol: float = 1e-10) -> None:
    """Raise unless `x` is a finite square matrix with `|x - x^T| <= rtol * max|x|`."""
    if not is_concrete(x):
        return
    check_square(name, x)
    check_finite(name, x)
    a = _as_np(x)
    scale = max(float(np.max(np.abs(a))), 1e-300)
    asym = float(np.max(np.abs(a - np.swapaxes(a, -1, -2))))
    if asym > rtol * scale:
        raise ValueError(f"{name} must be symmetric, max |A - A^T| = {asym:.3g}")


def check_psd(name: str, x, *, rtol: float = 1e-10) -> None:
    """Raise unless `x` is a finite, symmetric, positive semi-definite matrix.

    Symmetry is required to `rtol * max|x|`; the smallest eigenvalue must be
    `>= -rtol * max|x|`.
    """
    if not is_concrete(x):
        return
    check_symmetric(name, x, rtol=rtol)
    a = _as_np(x)
    scale = max(float(np.max(np.abs(a))), 1e-300)
    lam_min = float(np.min(np.linalg.eigvalsh(a)))
    if lam_min < -rtol * scale:
        raise ValueError(f"{name} must be positive semi-definite, smallest eigenvalue {lam_min:.3g}")


def check_shape(name: str, x, shape: tuple[int, ...]) -> None:
    if not is_concrete(x):
        return
    got = np.shape(x)
    if tuple(got) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(got)}")


def check_step_counts(lr, n_steps, n_saves) -> tuple[int, int]:
    """Validate a discrete run: `lr > 0`, `n_steps >= 1`, `n_saves` (default 1) dividing `n_steps`."""
    check_positive("lr", lr)
    n_steps = int(n_steps)
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    n_saves = 1 if n_saves is None else int(n_saves)
    if n_saves < 1 or n_steps % n_saves:
        raise ValueError(f"n_saves must be >= 1 and divide n_steps={n_steps}, got {n_saves}")
    return n_steps, n_saves


def check_choice(name: str, value, choices) -> None:
    """Raise `ValueError` unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {tuple(choices)}")


def check_state(y0, state_type, hint: str = "") -> None:
    """Raise `TypeError` unless `y0` is a `state_type` (a NamedTuple), `ValueError` naming the
    first field with a NaN or infinite entry."""
    if not isinstance(y0, state_type):
        raise TypeError(f"y0 must be a {state_type.__name__}{hint}, got {type(y0).__name__}")
    for name, leaf in zip(state_type._fields, y0):
        check_finite(f"y0.{name}", leaf)


def unpack_args(args, param_type, data_type):
    """Split `args = (params, data)`, raising `TypeError` naming the expected types."""
    want = f"({param_type.__name__}, {data_type.__name__})"
    try:
        params, data = args
    except (TypeError, ValueError):
        raise TypeError(f"args must be the pair {want}") from None
    if not isinstance(params, param_type) or not isinstance(data, data_type):
        raise TypeError(f"args must be {want}, got ({type(params).__name__}, {type(data).__name__})")
    return params, data
