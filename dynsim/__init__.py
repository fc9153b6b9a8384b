"""dynsim: learning dynamics of non-contrastive self-supervised learning in linear networks.

Data flow: parameters (:mod:`dynsim.params`, :mod:`dynsim.units`) -> model
(:mod:`dynsim.eigenmodes`, :mod:`dynsim.networks`) -> solver (:mod:`dynsim.solvers`)
-> :class:`~dynsim.solvers.Solution` -> closed forms and plots (:mod:`dynsim.analytic`,
:mod:`dynsim.figures`).

Importing dynsim never changes global JAX flags: enable float64 yourself with
``jax.config.update("jax_enable_x64", True)`` (the tests and the CLI do).
"""

from dynsim._version import __version__
from dynsim import analytic, eigenmodes, networks, solvers, units
from dynsim.eigenmodes import ModeState, PredictorParams, PSTState, SSLModes, TianModes, TianPST
from dynsim.networks import CorrelationState, MatrixState, TianCorrelationFlow, TianMatrixFlow
from dynsim.params import ModeData, MomentData, TianParams
from dynsim.solvers import CollapseEvent, Solution, SolveError, Status, gradient_descent, solve, solve_batch


__all__ = [
    "CollapseEvent", "CorrelationState", "MatrixState", "ModeData", "ModeState", "MomentData",
    "PSTState", "PredictorParams", "SSLModes", "Solution", "SolveError", "Status", "TianCorrelationFlow", "TianMatrixFlow",
    "TianModes", "TianPST", "TianParams", "analytic", "eigenmodes", "gradient_descent", "networks", "solvers", "solve", "solve_batch", "units",
]
