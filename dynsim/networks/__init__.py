"""Matrix-level simulations of small linear networks (online W, predictor W_p, target W_a)."""

from dynsim.networks.tian2021 import CorrelationState, MatrixState, TianCorrelationFlow, TianMatrixFlow

__all__ = ["CorrelationState", "MatrixState", "TianCorrelationFlow", "TianMatrixFlow"]
