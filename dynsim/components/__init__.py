r"""Components of the SSL model family, each defined once and used by every level.

A model ([`dynsim.Modes`][dynsim.models.Modes] per eigenmode, [`dynsim.Network`][dynsim.models.Network] per weight matrix) is assembled
from one component of each kind:

| kind | components |
|---|---|
| loss | [`Euclidean`][dynsim.components.Euclidean], [`Cosine`][dynsim.components.Cosine] (`iso=True`: their IsoLoss forms), [`BarlowTwins`][dynsim.components.BarlowTwins], [`SpectralContrastive`][dynsim.components.SpectralContrastive], [`VICReg`][dynsim.components.VICReg] |
| predictor | [`Trainable`][dynsim.components.Trainable], [`Identity`][dynsim.components.Identity]; closed forms [`Power`][dynsim.components.Power], [`DirectPred`][dynsim.components.DirectPred], [`DirectSet`][dynsim.components.DirectSet], [`LRP`][dynsim.components.LRP], [`NE`][dynsim.components.NE], [`Visser`][dynsim.components.Visser], [`NS`][dynsim.components.NS], [`NS2`][dynsim.components.NS2], [`Stiefel`][dynsim.components.Stiefel] |
| target | [`EMA`][dynsim.components.EMA], [`Online`][dynsim.components.Online] (`stop_gradient=False`: no stop-gradient), [`FixedTau`][dynsim.components.FixedTau] |
| expectation | [`Auto`][dynsim.components.Auto], [`SecondMoments`][dynsim.components.SecondMoments], [`GaussianExact`][dynsim.components.GaussianExact], [`GaussianNodes`][dynsim.components.GaussianNodes], [`Empirical`][dynsim.components.Empirical], [`MeanField`][dynsim.components.MeanField] |

Each component is a small `equinox.Module`: its float fields are traced parameters (a new value
never recompiles; `vmap` batches over them), its other fields are static options, and it validates
itself. A new loss or closed-form predictor is one subclass of [`AbstractLoss`][dynsim.components.AbstractLoss],
[`AbstractSpectral`][dynsim.components.AbstractSpectral] or [`AbstractClosedForm`][dynsim.components.AbstractClosedForm], written outside dynsim.

Option names, as the CLI and sweep configurations spell them, map to the classes in `LOSSES`,
`PREDICTORS`, `TARGETS` and `EXPECTATIONS`.
"""

from dynsim.components._base import AbstractComponent
from dynsim.components._expectation import (EXPECTATIONS, AbstractExpectation, Auto, Empirical, ExactViews, GaussianExact,
                                            GaussianNodes, MeanField, SecondMoments, gaussian_nodes, radial_rule)
from dynsim.components._loss import (LOSSES, AbstractBatchLoss, AbstractLoss, BarlowTwins, Cosine, Euclidean,
                                     SpectralContrastive, VICReg, cosine, cosine_iso, euclidean, euclidean_iso,
                                     smooth_hinge)
from dynsim.components._predictor import (INPUTS, LRP, NE, NE_NORMS, NS, NS2, PREDICTORS, AbstractClosedForm,
                                          AbstractPredictor, AbstractSpectral, DirectPred, DirectSet, Identity, Power,
                                          Stiefel, Trainable, Visser, input_moments, input_reads_data,
                                          mode_correlation, newton_schulz, ns_filter, ns_sqrt, spectral_map, stiefel,
                                          stiefel_filter, visser, visser_filter)
from dynsim.components._target import TARGETS, EMA, AbstractTarget, FixedTau, Online
from dynsim.components._two_radius import mode_cosine_expectation, network_cosine_expectation

__all__ = ["EMA", "EXPECTATIONS", "INPUTS", "LOSSES", "LRP", "NE", "NE_NORMS", "NS", "NS2", "PREDICTORS", "TARGETS",
           "AbstractBatchLoss", "AbstractClosedForm", "AbstractComponent", "AbstractExpectation", "AbstractLoss", "AbstractPredictor",
           "AbstractSpectral", "AbstractTarget", "Auto", "BarlowTwins", "Cosine", "DirectPred", "DirectSet", "Empirical", "Euclidean", "ExactViews",
           "FixedTau", "GaussianExact", "GaussianNodes", "Identity", "MeanField", "Online", "Power", "SecondMoments",
           "SpectralContrastive", "Stiefel", "Trainable", "VICReg", "Visser", "cosine", "cosine_iso", "euclidean", "euclidean_iso", "gaussian_nodes",
           "input_moments", "input_reads_data", "mode_correlation", "mode_cosine_expectation",
           "network_cosine_expectation", "newton_schulz", "ns_filter", "ns_sqrt", "radial_rule", "smooth_hinge", "spectral_map",
           "stiefel", "stiefel_filter", "visser", "visser_filter"]
