r"""Orthogonality-constrained (Grassmannian) SSL dynamics and the naive-collapse baseline
(Esser, Mukherjee & Ghoshdastidar 2023; ``../shared/theory/esser2023.md``).

* :mod:`~dynsim.grassmann.trace_losses`: contrastive / alignment / MSE losses as trace forms, the dynamics
  matrix :math:`A` (:math:`\nabla L = -AW`) from data or population moments, the §5.2 dataset.
* :mod:`~dynsim.grassmann.naive`: :math:`\dot W = AW` (weight decay, Frobenius sphere), exact solution,
  collapse diagnostics (:math:`\sigma_2/\sigma_1`, stable rank).
* :mod:`~dynsim.grassmann.subspace`: Oja's subspace flow, the Riccati flow of :math:`P = WW^\top`, the stable
  closed form, principal angles, the exact lift to :math:`W(t)`.
* :mod:`~dynsim.grassmann.riemannian`: Riemannian GD with QR / polar / exponential-map retractions and the exact
  :math:`\mathrm{qf}(e^{\eta A}W)` integrator, vmapped over seeds.
* :mod:`~dynsim.grassmann.kernel`: the kernelised (width-m feature) form and the tangent-kernel drift.

Data flow: data or moments -> ``A`` -> (flow | closed form | RGD) -> frames/projectors -> angles, losses, drift.
"""

from dynsim.grassmann import kernel, naive, riemannian, subspace, trace_losses
from dynsim.grassmann.kernel import drift_vs_width, gram, gram_closed_form, kernel_drift, pairing_matrix
from dynsim.grassmann.linalg import eigh_desc, orthonormality_error, qf, random_stiefel
from dynsim.grassmann.naive import NaiveFlow, collapse_diagnostics, naive_solution
from dynsim.grassmann.riemannian import METHODS, RETRACTIONS, riemannian_gd, riemannian_gd_widths
from dynsim.grassmann.subspace import (OjaFlow, RiccatiFlow, lift, principal_angles, principal_tangents, projection_distance,
                                       projector, subspace_basis)
from dynsim.grassmann.trace_losses import (GRADIENT_FACTOR, additive_augmentation_moments, dynamics_matrix,
                                           population_dynamics_matrix, protocol_data, trace_loss)

__all__ = [
    "GRADIENT_FACTOR", "METHODS", "NaiveFlow", "OjaFlow", "RETRACTIONS", "RiccatiFlow", "additive_augmentation_moments",
    "collapse_diagnostics", "drift_vs_width", "dynamics_matrix", "eigh_desc", "gram", "gram_closed_form", "kernel",
    "kernel_drift", "lift", "naive", "naive_solution", "orthonormality_error", "pairing_matrix",
    "population_dynamics_matrix", "principal_angles", "principal_tangents", "projection_distance", "projector",
    "protocol_data", "qf", "random_stiefel", "riemannian", "riemannian_gd", "riemannian_gd_widths", "subspace",
    "subspace_basis", "trace_loss", "trace_losses",
]
