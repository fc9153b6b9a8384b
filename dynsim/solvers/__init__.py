"""Integrators: one entry point (:func:`solve`, :func:`solve_batch`) over diffrax adaptive
methods, fixed-step RK4 and the scipy reference, with terminating events."""

from dynsim.solvers.discrete import gradient_descent
from dynsim.solvers.api import METHODS, SolverConfig, save_times, solve, solve_batch
from dynsim.solvers.events import CollapseEvent
from dynsim.solvers.solution import Solution, SolveError, Status

__all__ = ["METHODS", "CollapseEvent", "Solution", "SolveError", "SolverConfig", "Status",
           "gradient_descent", "save_times", "solve", "solve_batch"]
