"""Matrix-level simulations of small linear networks (online W, predictor W_p, target W_a).

* [`SSLNet`][dynsim.networks.SSLNet]: the option-string preset of [`dynsim.Network`][dynsim.models.Network] (one gradient for flow, GD and SGD),
  with its option tuples `LOSSES`, `PREDICTORS`, `TARGETS`.
* [`train`][dynsim.networks.train] (GD/SGD, `lax.scan`) and [`flow`][dynsim.networks.flow]; [`as_network`][dynsim.networks.as_network] turns a preset into its model.
* [`ViewData`][dynsim.networks.ViewData]: Gaussian data and augmentation; minibatches and expectation nodes.
* [`closed_form_predictor`][dynsim.networks.closed_form_predictor]: closed-form predictors (DirectPred, DirectSet, LRP, NE, NS, ...) from moments.
* `diagnostics`: spectra, commutator, loss, balancing residual, ranks ([`stable_rank`][dynsim.networks.stable_rank],
  [`effective_rank`][dynsim.networks.effective_rank]).
* [`TianMatrixFlow`][dynsim.analytic.reference.TianMatrixFlow], [`TianCorrelationFlow`][dynsim.analytic.reference.TianCorrelationFlow]: Tian et al.'s Lemma 1 written out by hand (the
  reference ODEs of [`dynsim.analytic.reference`][dynsim.analytic.reference]).
"""

from dynsim import _aliases
from dynsim.networks._data import ViewData
from dynsim.networks._diagnostics import diagnostics, effective_rank, singular_values, stable_rank
from dynsim.networks._losses import LOSS_FUNCTIONS, LOSSES
from dynsim.networks._predictors import CLOSED_FORMS, closed_form_predictor, network_predictor
from dynsim.networks._ssl_net import EXPECTATIONS, PREDICTOR_INPUTS, PREDICTORS, TARGETS, NetParams, NetState, SSLNet
from dynsim.networks._tian2021 import CorrelationState, MatrixState, TianCorrelationFlow, TianMatrixFlow
from dynsim.networks._training import as_network, flow, train, train_core

__all__ = ["CLOSED_FORMS", "EXPECTATIONS", "LOSSES", "LOSS_FUNCTIONS", "PREDICTORS", "PREDICTOR_INPUTS", "TARGETS",
           "CorrelationState", "MatrixState", "NetParams", "NetState", "SSLNet", "TianCorrelationFlow",
           "TianMatrixFlow", "ViewData", "as_network", "closed_form_predictor", "diagnostics", "effective_rank",
           "flow", "network_predictor", "singular_values", "stable_rank", "train", "train_core"]

_aliases.register(__name__)
