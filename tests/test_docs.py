"""docs/api.md is generated from the docstrings and must be current; every public function is documented."""

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _make_api():
    spec = importlib.util.spec_from_file_location("make_api", DOCS / "make_api.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_public_module_class_and_function_has_a_docstring():
    assert _make_api().undocumented() == []


def test_api_page_is_current():
    api = _make_api()
    assert (DOCS / "api.md").read_text() == api.build(), "run: python docs/make_api.py"


def test_math_roles_become_markdown():
    api = _make_api()
    md = api.rst_to_md("Eq. 16: :math:`\\dot p = -p` via :func:`~dynsim.solve`, ``x``.\n\n.. math::\n    a = b\n\nafter")
    assert md == "Eq. 16: $\\dot p = -p$ via `dynsim.solve`, `x`.\n\n$$\na = b\n$$\n\nafter"
