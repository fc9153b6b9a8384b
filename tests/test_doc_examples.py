"""The code in the README and the user guide runs as written (the docs must not drift from the code)."""

import re
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _blocks(path, lang):
    return re.findall(rf"```{lang}\n(.*?)```", (ROOT / path).read_text(), re.S)


def test_readme_python_example_runs():
    code = _blocks("README.md", "python")[0]
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    assert ns["p"].shape == (201, 3)
    assert bool(np.all(ns["out"].ok))
    collapsed = np.isfinite(np.asarray(ns["out"].event_time))
    etas = np.asarray(ns["etas"])
    # Tian et al. 2021 Obs. 5: above eta_c = tau^2/(4(1+sigma2)) = 1/(4 * 1.5) = 1/6 every configuration collapses ...
    assert collapsed[etas > 1 / 6].all()
    # ... and Obs. 4: the collapse basin grows with eta, so collapse sets in at one threshold
    first = int(np.argmax(collapsed))
    assert 0 < first and collapsed[first:].all() and not collapsed[:first].any()
    # the network part: 500 SGD steps saved 10 times after the start, and its eigenmode model
    assert np.asarray(ns["run"].ys.W).shape == (11, 4, 8) and ns["run"].ok
    assert np.asarray(ns["y0m"].w).shape == (4,)


def test_data_guide_example_runs():
    """The data guide's snippet: translated digits, their moments and modes, Barlow Twins trained by SGD on actual
    augmented pairs at weight decay 0.3: it keeps the modes with 4 gamma_j > 0.3 (docs/theory/simon2023.md)."""
    code = _blocks("docs/guide/data.md", "python")[0]
    ns: dict = {}
    exec(compile(code, "data.md", "exec"), ns)
    W, G = np.asarray(ns["run"].final.W), np.asarray(ns["views"].data_cov)
    kept = int(np.sum(np.linalg.eigvalsh(W @ G @ W.T) > 0.01))
    assert kept == min(6, int(np.sum(4 * ns["gamma"] > 0.3))) and 0 < kept < 6
    assert ns["err"] > 0.1 and ns["mode_data"].lambda_s.shape == (16,)


def test_network_guide_example_runs():
    """The network guide's snippet: three SGD seeds of a cosine DirectPred network, diagnostics of seed 0."""
    code = next(c for c in _blocks("docs/guide/networks.md", "python") if "SSLNet(" in c)
    ns: dict = {}
    exec(compile(code, "networks.md", "exec"), ns)
    assert ns["run"].ys.W.shape == (3, 21, 8, 16)
    spec = np.asarray(ns["d"]["spectrum_F"])
    assert spec.shape == (21, 8) and np.all(np.isfinite(spec))


def test_extension_guide_example_runs(monkeypatch):
    """The extension guide: a loss and a predictor written outside dynsim run by flow, SGD and at mode level, the
    network flow equals its eigenmode model (aligned start, second-moment loss: exact, up to the solvers' default
    tolerances rtol 1e-8), and the guide's sweep config names the loss by module path."""
    import tomllib

    from dynsim.sweeps import load_config

    code = next(c for c in _blocks("docs/guide/extending.md", "python") if c.startswith("# A loss and a predictor"))
    ns: dict = {}
    exec(compile(code, "extending.md", "exec"), ns)
    W = np.asarray(ns["flow"].ys.W)
    spec = np.linalg.eigvalsh(W @ np.swapaxes(W, -1, -2))
    np.testing.assert_allclose(spec, np.sort(np.asarray(ns["theory"].ys.w) ** 2, axis=-1), rtol=0, atol=1e-6)
    assert ns["sgd"].ok and np.asarray(ns["sgd"].ys.W).shape == (2, 3, 6)

    module = types.ModuleType("mypackage.losses")
    module.ShrunkEuclidean = ns["ShrunkEuclidean"]
    monkeypatch.setitem(sys.modules, "mypackage", types.ModuleType("mypackage"))
    monkeypatch.setitem(sys.modules, "mypackage.losses", module)
    block = next(b for b in _blocks("docs/guide/extending.md", "toml") if "mypackage" in b)
    cfg = load_config(tomllib.loads(block))
    assert cfg.dims == ("loss.mu",) and cfg.n_configs == 3


def test_sweep_guide_modes_config_loads():
    """The sweep guide's ``kind = "modes"`` config: its parameter paths are the components' own fields."""
    import tomllib

    from dynsim.sweeps import load_config

    block = next(b for b in _blocks("docs/guide/sweeps.md", "toml") if 'kind = "modes"' in b)
    cfg = load_config(tomllib.loads(block))
    assert cfg.dims == ("weight_decay", "predictor.power") and cfg.n_configs == 63
    assert cfg.fixed["target.beta"] == 0.5 and cfg.fixed["predictor.eps"] == 0.0  # Power's own default
