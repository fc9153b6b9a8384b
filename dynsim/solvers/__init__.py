"""Integrators: one entry point ([`solve`][dynsim.solvers.solve], [`solve_batch`][dynsim.solvers.solve_batch]) over diffrax adaptive
methods, the lean `rk45` loop, fixed-step RK4 and the scipy reference, with terminating events;
one primitive for discrete maps ([`iterate`][dynsim.solvers.iterate]); defaults declared once (`DEFAULTS`)."""

from dynsim import _aliases
from dynsim.solvers._api import (METHODS, SolverConfig, default_chunk_size, integrate, save_times, solve, solve_batch,
                                 solver_config)
from dynsim.solvers._defaults import ADJOINTS, DEFAULTS, ON_FAILURE
from dynsim.solvers._discrete import gradient_descent, iterate
from dynsim.solvers._events import CollapseEvent, implicit_event_time
from dynsim.solvers._solution import GOOD_STATUSES, Solution, SolveError, Status, check_on_failure, handle_failure

__all__ = ["ADJOINTS", "DEFAULTS", "GOOD_STATUSES", "METHODS", "ON_FAILURE", "CollapseEvent", "Solution", "SolveError", "SolverConfig", "Status",
           "check_on_failure", "default_chunk_size", "gradient_descent", "handle_failure", "implicit_event_time", "integrate", "iterate",
           "save_times", "solve", "solve_batch", "solver_config"]

_aliases.register(__name__)
