"""Integrators: one entry point (:func:`solve`, :func:`solve_batch`) over diffrax adaptive
methods, the lean ``rk45`` loop, fixed-step RK4 and the scipy reference, with terminating events;
one primitive for discrete maps (:func:`iterate`); defaults declared once (:data:`DEFAULTS`)."""

from dynsim.solvers.api import METHODS, SolverConfig, integrate, save_times, solve, solve_batch, solver_config
from dynsim.solvers.defaults import DEFAULTS, ON_FAILURE
from dynsim.solvers.discrete import gradient_descent, iterate
from dynsim.solvers.events import CollapseEvent
from dynsim.solvers.solution import Solution, SolveError, Status, check_on_failure, handle_failure

__all__ = ["DEFAULTS", "METHODS", "ON_FAILURE", "CollapseEvent", "Solution", "SolveError", "SolverConfig", "Status",
           "check_on_failure", "gradient_descent", "handle_failure", "integrate", "iterate", "save_times", "solve",
           "solve_batch", "solver_config"]
