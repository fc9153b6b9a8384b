r"""The two levels of the SSL model family, assembled from the same components (:mod:`dynsim.components`).

=====================  ======================================================  ==============================
model                  state, ``args``                                         use with
=====================  ======================================================  ==============================
:class:`Modes`         :class:`ModeState` per eigenmode; :class:`~dynsim.params.ModeData`   :func:`dynsim.solve`, :func:`dynsim.gradient_descent`, sweeps
:class:`Network`       :class:`NetState` weight matrices; :class:`~dynsim.networks.ViewData`   :func:`dynsim.solve` (flow), :func:`dynsim.networks.train` (GD, SGD)
=====================  ======================================================  ==============================

:func:`reduce_to_modes` hands back a network's eigenmode model (or says why the reduction does not
apply). The models are PyTrees: their float parameters (weight decays, the components' rates and
exponents) are traced, so new values never recompile and ``vmap`` batches over them.
"""

from dynsim.models._base import AbstractModel
from dynsim.models._modes import Modes
from dynsim.models._network import Network
from dynsim.models._reduce import reduce_to_modes
from dynsim.models._states import ModeState, NetState

__all__ = ["AbstractModel", "ModeState", "Modes", "NetState", "Network", "reduce_to_modes"]
