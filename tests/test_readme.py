"""The README's Python example runs as written (docs must not drift from the code)."""

from pathlib import Path

import numpy as np


def test_readme_python_example_runs():
    text = (Path(__file__).parent.parent / "README.md").read_text()
    start = text.index("```python") + len("```python")
    code = text[start:text.index("```", start)]
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    assert ns["p"].shape == (201, 3)
    assert bool(np.all(ns["out"].ok))
    collapsed = np.isfinite(np.asarray(ns["out"].event_time))
    etas = np.asarray(ns["etas"])
    # Obs. 5: above eta_c = tau^2/(4(1+sigma2)) = 1/6 every configuration collapses ...
    assert collapsed[etas > 1 / 6].all()
    # ... and Obs. 4: the collapse basin grows with eta, so collapse sets in at one threshold
    first = int(np.argmax(collapsed))
    assert 0 < first and collapsed[first:].all() and not collapsed[:first].any()


def test_readme_network_example_runs():
    """The network-simulation snippet: three SGD seeds of a cosine DirectPred network, diagnostics of seed 0."""
    import re

    text = (Path(__file__).parent.parent / "README.md").read_text()
    code = next(c for c in re.findall(r"```python\n(.*?)```", text, re.S) if "SSLNet(" in c)
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    assert ns["run"].ys.W.shape == (3, 21, 8, 16)
    spec = np.asarray(ns["d"]["spectrum_F"])
    assert spec.shape == (21, 8) and np.all(np.isfinite(spec))


def test_readme_extension_example_runs():
    """The model-family snippet: a loss and a predictor written outside dynsim run by flow, SGD and at mode level,
    and the network flow equals its eigenmode model (aligned start, second-moment loss: exact, up to the
    solvers' default tolerances rtol 1e-8)."""
    import re

    text = (Path(__file__).parent.parent / "README.md").read_text()
    code = next(c for c in re.findall(r"```python\n(.*?)```", text, re.S) if c.startswith("# A loss and a predictor"))
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    W = np.asarray(ns["flow"].ys.W)
    spec = np.linalg.eigvalsh(W @ np.swapaxes(W, -1, -2))
    np.testing.assert_allclose(spec, np.sort(np.asarray(ns["theory"].ys.w) ** 2, axis=-1), rtol=0, atol=1e-6)
    assert ns["sgd"].ok and np.asarray(ns["sgd"].ys.W).shape == (2, 3, 6)


def test_readme_modes_sweep_config_loads():
    """The README's ``kind = "modes"`` sweep: its parameter paths are the components' own fields."""
    import re
    import tomllib

    from dynsim.sweeps import load_config

    text = (Path(__file__).parent.parent / "README.md").read_text()
    block = next(b for b in re.findall(r"```toml\n(.*?)```", text, re.S) if 'kind = "modes"' in b)
    cfg = load_config(tomllib.loads(block))
    assert cfg.dims == ("weight_decay", "predictor.power") and cfg.n_configs == 63
    assert cfg.fixed["target.beta"] == 0.5 and cfg.fixed["predictor.eps"] == 0.0  # Power's own default
