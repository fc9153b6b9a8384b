"""dynsim: learning dynamics of non-contrastive self-supervised learning in linear networks.

One model family at two levels, assembled from components defined once
([`dynsim.components`][dynsim.components]: loss, predictor, target, expectation):

* [`Modes`][dynsim.models.Modes] — the eigenmode ODEs (`args`: [`ModeData`][dynsim.params.ModeData]);
* [`Network`][dynsim.models.Network] — linear networks as weight matrices, trained by flow ([`solve`][dynsim.solvers.solve]), GD or SGD
  ([`train`][dynsim.networks.train]; `args`: [`ViewData`][dynsim.networks.ViewData]); [`reduce_to_modes`][dynsim.models.reduce_to_modes] hands back the eigenmode model.

Data flow: components and data ([`dynsim.components`][dynsim.components], [`dynsim.params`][dynsim.params], [`dynsim.units`][dynsim.units])
-> model ([`dynsim.models`][dynsim.models]) -> solver ([`dynsim.solvers`][dynsim.solvers]) -> [`Solution`][dynsim.solvers.Solution] -> comparisons,
closed forms, sweeps and plots ([`dynsim.compare`][dynsim.compare], [`dynsim.analytic`][dynsim.analytic], [`dynsim.sweeps`][dynsim.sweeps],
[`dynsim.figures`][dynsim.figures]). The option-string presets of earlier releases ([`TianModes`][dynsim.eigenmodes.TianModes],
[`SSLModes`][dynsim.eigenmodes.SSLModes], [`SSLNet`][dynsim.networks.SSLNet]) name models of this family.

Importing dynsim never changes global JAX flags: enable float64 yourself with
`jax.config.update("jax_enable_x64", True)` (the tests and the CLI do).
"""

from dynsim._version import __version__  # noqa: F401
from dynsim import _aliases

_aliases.install()  # earlier module paths (dynsim.solvers.api, ...) resolve to the private modules

from dynsim import analytic, components, eigenmodes, models, networks, solvers, units
from dynsim.eigenmodes import PredictorParams, PSTState, SSLModes, TianModes, TianPST
from dynsim.models import ModeState, Modes, NetState, Network, reduce_to_modes
from dynsim.networks import (CorrelationState, MatrixState, NetParams, SSLNet, TianCorrelationFlow, TianMatrixFlow,
                             ViewData, flow, train)
from dynsim.params import ModeData, MomentData, TianParams
from dynsim.solvers import CollapseEvent, Solution, SolveError, Status, gradient_descent, solve, solve_batch
from dynsim import compare, grassmann, sweeps  # noqa: E402  (they build on the names above)

__all__ = [
    "CollapseEvent", "CorrelationState", "MatrixState", "ModeData", "ModeState", "Modes", "MomentData", "NetParams",
    "NetState", "Network", "PSTState", "PredictorParams", "SSLModes", "SSLNet", "Solution", "SolveError", "Status",
    "TianCorrelationFlow", "TianMatrixFlow", "TianModes", "TianPST", "TianParams", "ViewData", "analytic", "compare",
    "components", "eigenmodes", "flow", "gradient_descent", "grassmann", "models", "networks", "reduce_to_modes",
    "solve", "solve_batch", "solvers", "sweeps", "train", "units",
]
