"""Tian et al. (2021)'s Lemma 1 written out by hand: the reference systems live in
[`dynsim.analytic.reference`][dynsim.analytic.reference], beside the closed forms they check; these names stay importable here."""

from dynsim.analytic.reference import (MATRIX_PREDICTORS as PREDICTORS, CorrelationState, MatrixState,
                                       TianCorrelationFlow, TianMatrixFlow)

__all__ = ["CorrelationState", "MatrixState", "PREDICTORS", "TianCorrelationFlow", "TianMatrixFlow"]
