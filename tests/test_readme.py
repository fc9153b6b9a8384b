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
