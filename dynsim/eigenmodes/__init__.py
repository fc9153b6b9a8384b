"""Eigenmode theory: per-mode ODEs that the papers derive for linear SSL networks, as option-string presets
of [`dynsim.Modes`][dynsim.models.Modes] ([`TianModes`][dynsim.eigenmodes.TianModes], [`SSLModes`][dynsim.eigenmodes.SSLModes]) and the spectral predictors they name."""

from dynsim import _aliases
from dynsim.eigenmodes._predictors import KINDS, NORMS, PredictorParams, predictor_eigenvalues, spectral_predictor
from dynsim.eigenmodes._ssl_modes import SSLModes
from dynsim.eigenmodes._tian2021 import ModeState, PSTState, TianModes, TianPST

__all__ = ["KINDS", "NORMS", "ModeState", "PSTState", "PredictorParams", "SSLModes", "TianModes", "TianPST",
           "predictor_eigenvalues", "spectral_predictor"]

_aliases.register(__name__)
