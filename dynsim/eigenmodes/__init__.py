"""Eigenmode theory: per-mode ODEs that the papers derive for linear SSL networks."""

from dynsim.eigenmodes.predictors import PredictorParams, predictor_eigenvalues
from dynsim.eigenmodes.ssl_modes import SSLModes
from dynsim.eigenmodes.tian2021 import ModeState, PSTState, TianModes, TianPST

__all__ = ["ModeState", "PSTState", "PredictorParams", "SSLModes", "TianModes", "TianPST", "predictor_eigenvalues"]
