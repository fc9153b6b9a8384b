"""The result of every solve, whatever the backend: [`Solution`][dynsim.solvers.Solution] and its status codes."""

from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from dynsim import _checks
from dynsim.solvers._defaults import ON_FAILURE


class Status(enum.IntEnum):
    """Outcome of one solve. `SUCCESS` and `EVENT` are good results."""

    SUCCESS = 0  #: reached `t1`
    EVENT = 1  #: stopped at the event (e.g. collapse); saves after it hold the event state
    MAX_STEPS = 2  #: the adaptive solver ran out of `max_steps` before `t1`
    NONFINITE = 3  #: a NaN or inf appeared in the saved states
    FAILED = 4  #: any other solver failure (step size underflow, implicit solve failure)


GOOD_STATUSES = (Status.SUCCESS, Status.EVENT)  #: the statuses of a solve whose saves are results


class SolveError(RuntimeError):
    """Raised by [`dynsim.solve`][dynsim.solvers.solve] when a solve failed and `on_failure='raise'`."""


@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Solution:
    """Saved trajectory of one solve, or of a batch (leading axis) of solves.

    Attributes:
        ts: save times, shape `(T,)` (`(B, T)` for a batch).
        ys: the state PyTree, each leaf with the time axis at `time_axis`.
        status: [`Status`][dynsim.solvers.Status] code(s), shape `()` or `(B,)`.
        event_time: time of the terminating event, `inf` when none occurred.
        n_steps: accepted steps, for every backend (a discrete map: its iterations).
        n_rejected: rejected step attempts (`0` for fixed-step methods and discrete maps; `-1` where
            the backend does not report it: the scipy reference).
        n_rhs: evaluations of the model's right-hand side (a discrete map: its step function; `-1`
            where unknown: diffrax does not count them).
        time_axis: `0` for a single solve, `1` for a batch (static).
    """

    ts: jax.Array
    ys: object
    status: jax.Array
    event_time: jax.Array
    n_steps: jax.Array
    n_rejected: jax.Array | None = None
    n_rhs: jax.Array | None = None
    time_axis: int = field(default=0, metadata=dict(static=True))

    @property
    def ok(self) -> np.ndarray:
        """Boolean (array): the solve reached `t1` or stopped at its event, with finite states."""
        s = np.asarray(self.status)
        return (s == Status.SUCCESS) | (s == Status.EVENT)

    @property
    def event_occurred(self) -> np.ndarray:
        return np.asarray(self.status) == Status.EVENT

    @property
    def final(self):
        """State at the last save time (the event state if the solve stopped at an event)."""
        return jax.tree.map(lambda y: jnp.take(y, -1, axis=self.time_axis), self.ys)

    def failure_summary(self) -> str:
        s = np.atleast_1d(np.asarray(self.status))
        bad = s[(s != Status.SUCCESS) & (s != Status.EVENT)]
        counts = {Status(int(c)).name: int(np.sum(bad == c)) for c in np.unique(bad)}
        return f"{len(bad)} of {s.size} solve(s) failed: {counts}"

    def raise_if_failed(self) -> "Solution":
        """Raise [`SolveError`][dynsim.solvers.SolveError] when any solve failed; return `self` otherwise."""
        if not np.all(self.ok):
            hint = ""
            s = np.asarray(self.status)
            if np.any(s == Status.MAX_STEPS):
                hint = " Increase max_steps, loosen rtol/atol, or use a stiff method ('kvaerno5')."
            if np.any(s == Status.NONFINITE):
                hint += " A state became NaN/inf: check the parameters and initial state."
            raise SolveError(self.failure_summary() + "." + hint)
        return self


def check_on_failure(on_failure) -> None:
    """Raise `ValueError` unless `on_failure` is one of `ON_FAILURE`."""
    if on_failure not in ON_FAILURE:
        raise ValueError(f"on_failure must be one of {ON_FAILURE}, got {on_failure!r}")


def handle_failure(sol: Solution, on_failure: str, stacklevel: int = 3) -> Solution:
    """Apply `on_failure` to a finished solve: raise [`SolveError`][dynsim.solvers.SolveError], warn, or return it flagged."""
    check_on_failure(on_failure)
    if not _checks.is_concrete(sol.status):  # under jax.jacfwd / jax.grad / jit: the caller reads sol.status
        return sol
    if on_failure == "raise":
        return sol.raise_if_failed()
    if on_failure == "warn" and not np.all(sol.ok):
        warnings.warn(sol.failure_summary(), RuntimeWarning, stacklevel=stacklevel)
    return sol
