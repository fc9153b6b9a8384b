r"""The two levels of the SSL model family, assembled from the same components ([`dynsim.components`][dynsim.components]).

| model | state, `args` | use with |
|---|---|---|
| [`Modes`][dynsim.models.Modes] | [`ModeState`][dynsim.models.ModeState] per eigenmode; [`ModeData`][dynsim.params.ModeData] | [`dynsim.solve`][dynsim.solvers.solve], [`dynsim.gradient_descent`][dynsim.solvers.gradient_descent], sweeps |
| [`Network`][dynsim.models.Network] | [`NetState`][dynsim.models.NetState] weight matrices; [`ViewData`][dynsim.networks.ViewData] | [`dynsim.solve`][dynsim.solvers.solve] (flow), [`dynsim.networks.train`][dynsim.networks.train] (GD, SGD) |

[`reduce_to_modes`][dynsim.models.reduce_to_modes] hands back a network's eigenmode model (or says why the reduction does not
apply). The models are PyTrees: their float parameters (weight decays, the components' rates and
exponents) are traced, so new values never recompile and `vmap` batches over them.
"""

from dynsim.models._base import AbstractModel
from dynsim.models._modes import Modes
from dynsim.models._network import Network
from dynsim.models._reduce import reduce_to_modes
from dynsim.models._states import ModeState, NetState

__all__ = ["AbstractModel", "ModeState", "Modes", "NetState", "Network", "reduce_to_modes"]
