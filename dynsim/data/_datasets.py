"""Real data sets bundled with scikit-learn (no download), behind the optional extra `dynsim[data]`."""

from __future__ import annotations

import numpy as np

EXTRA = "pip install 'dynsim[data]'"


def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError:
        raise ImportError(f"dynsim.data's real data sets need scikit-learn: {EXTRA}") from None
    return datasets


def load_digits(scale: float = 1.0 / 16.0):
    """scikit-learn's handwritten digits: `(images, labels)`, images `(1797, 8, 8)` with grey levels 0-16 times
    `scale` (default: in [0, 1]), labels `(1797,)` in 0-9. Needs the extra `dynsim[data]`."""
    d = _sklearn_datasets().load_digits()
    return np.asarray(d.images, float) * float(scale), np.asarray(d.target)
