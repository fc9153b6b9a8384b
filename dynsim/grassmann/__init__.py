r"""Orthogonality-constrained (Grassmannian) SSL dynamics and the naive-collapse baseline
(Esser, Mukherjee & Ghoshdastidar 2023).

* Trace losses: contrastive / alignment / MSE losses as trace forms, the dynamics matrix $A$
  ($\nabla L = -AW$) from data or population moments, the data set of the agreement checks
  ([`dynamics_matrix`][dynsim.grassmann.dynamics_matrix], [`population_dynamics_matrix`][dynsim.grassmann.population_dynamics_matrix], [`protocol_data`][dynsim.grassmann.protocol_data]).
* Naive flow: $\dot W = AW$ (weight decay, Frobenius sphere), exact solution, collapse diagnostics
  ($\sigma_2/\sigma_1$, stable rank) ([`NaiveFlow`][dynsim.grassmann.NaiveFlow], [`naive_solution`][dynsim.grassmann.naive_solution]).
* Subspace flows: Oja's subspace flow, the Riccati flow of $P = WW^\top$, the stable closed form,
  principal angles, the exact lift to $W(t)$ ([`OjaFlow`][dynsim.grassmann.OjaFlow], [`RiccatiFlow`][dynsim.grassmann.RiccatiFlow], [`lift`][dynsim.grassmann.lift]).
* Riemannian GD with QR / polar / exponential-map retractions and the exact $\mathrm{qf}(e^{\eta A}W)$
  integrator, vmapped over seeds ([`riemannian_gd`][dynsim.grassmann.riemannian_gd]), and its agreement with the flow
  ([`rgd_agreement`][dynsim.grassmann.rgd_agreement]).
* The kernelised (width-m feature) form and the tangent-kernel drift ([`kernel_drift`][dynsim.grassmann.kernel_drift]).

Data flow: data or moments -> `A` -> (flow | closed form | RGD) -> frames/projectors -> angles, losses, drift.
"""

from dynsim import _aliases
from dynsim.grassmann._agreement import protocol_problem, rgd_agreement
from dynsim.grassmann._kernel import drift_vs_width, gram, gram_closed_form, kernel_drift, pairing_matrix
from dynsim.grassmann._linalg import eigh_desc, orthonormality_error, qf, random_stiefel
from dynsim.grassmann._naive import NaiveFlow, collapse_diagnostics, naive_solution
from dynsim.grassmann._riemannian import METHODS, RETRACTIONS, riemannian_gd, riemannian_gd_widths
from dynsim.grassmann._subspace import (OjaFlow, RiccatiFlow, lift, principal_angles, principal_tangents,
                                        projection_distance, projector, subspace_basis)
from dynsim.grassmann._trace_losses import (GRADIENT_FACTOR, LOSSES, additive_augmentation_moments, dynamics_matrix,
                                            population_dynamics_matrix, protocol_data, trace_loss)

__all__ = [
    "GRADIENT_FACTOR", "LOSSES", "METHODS", "NaiveFlow", "OjaFlow", "RETRACTIONS", "RiccatiFlow",
    "additive_augmentation_moments", "collapse_diagnostics", "drift_vs_width", "dynamics_matrix", "eigh_desc", "gram",
    "gram_closed_form", "kernel_drift", "lift", "naive_solution", "orthonormality_error", "pairing_matrix",
    "population_dynamics_matrix", "principal_angles", "principal_tangents", "projection_distance", "projector",
    "protocol_data", "protocol_problem", "qf", "random_stiefel", "rgd_agreement", "riemannian_gd",
    "riemannian_gd_widths", "subspace_basis", "trace_loss",
]

_aliases.register(__name__)
