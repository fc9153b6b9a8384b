"""What every component shares: an `equinox.Module` whose float fields are traced parameters.

A component is a small frozen PyTree. Its float (and array) fields are *leaves*: inside `jit` and
`vmap` they are traced, so a new value never recompiles and a sweep can batch over them. Every other
field (strings, ints, bools, nested structure) is static (`dynsim._pytree` states the rule).
"""

from __future__ import annotations

import equinox as eqx

from dynsim import _checks


class AbstractComponent(eqx.Module):
    """Base of every component kind. `check()` validates concrete parameter values (named in errors);
    it is skipped inside a trace, where the values are placeholders."""

    def check(self) -> "AbstractComponent":
        return self

    def _positive(self, name: str, strict: bool = True) -> None:
        _checks.check_positive(f"{type(self).__name__}.{name}", getattr(self, name), strict=strict)

    def _in_range(self, name: str, lo: float, hi: float) -> None:
        _checks.check_in_range(f"{type(self).__name__}.{name}", getattr(self, name), lo, hi)
