"""Matrix-level simulations of small linear networks (online W, predictor W_p, target W_a).

* :mod:`~dynsim.networks.tian2021`: Tian et al.'s Lemma 1 written out by hand (the reference ODE).
* :mod:`~dynsim.networks.data`: Gaussian data and augmentation; minibatches and expectation nodes.
* :mod:`~dynsim.networks.losses`: Euclidean, cosine and IsoLoss per-sample losses.
* :mod:`~dynsim.networks.predictors`: closed-form predictors (DirectPred, DirectSet, LRP, NE, NS, ...).
* :mod:`~dynsim.networks.ssl_net`: :class:`SSLNet`, one gradient for flow, GD and SGD.
* :mod:`~dynsim.networks.training`: :func:`train` (GD/SGD, ``lax.scan``) and :func:`flow`.
* :mod:`~dynsim.networks.diagnostics`: spectra, commutator, loss, balancing residual, ranks.
"""

from dynsim.networks.data import ViewData
from dynsim.networks.diagnostics import diagnostics
from dynsim.networks.ssl_net import NetParams, NetState, SSLNet
from dynsim.networks.tian2021 import CorrelationState, MatrixState, TianCorrelationFlow, TianMatrixFlow
from dynsim.networks.training import flow, train, train_core

__all__ = ["CorrelationState", "MatrixState", "NetParams", "NetState", "SSLNet", "TianCorrelationFlow",
           "TianMatrixFlow", "ViewData", "diagnostics", "flow", "train", "train_core"]
