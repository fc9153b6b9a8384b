"""Eigenmode theory: per-mode ODEs that the papers derive for linear SSL networks."""

from dynsim.eigenmodes.tian2021 import ModeState, PSTState, TianModes, TianPST

__all__ = ["ModeState", "PSTState", "TianModes", "TianPST"]
