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


def test_every_command_line_option_the_docs_name_exists():
    """Every ``--option`` written in the README, the theory pages or the package's docstrings is an option of the
    ``dynsim`` command (any subcommand) or of a benchmark script: no documented flag that the parser lacks."""
    import argparse
    import re

    from dynsim.cli import build_parser

    def options(parser, found):
        for action in parser._actions:
            found.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    options(sub, found)
        return found

    root = DOCS.parent
    known = options(build_parser(), set())
    for script in (root / "benchmarks").glob("*.py"):
        known.update(re.findall(r'add_argument\("(--[a-z0-9-]+)"', script.read_text()))
    files = [root / "README.md", *(DOCS / "theory").glob("*.md"), *(root / "dynsim").rglob("*.py")]
    flag = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*(?![\w=-])")
    unknown = [(f.name, i, m) for f in files for i, line in enumerate(f.read_text().splitlines(), 1)
               for m in flag.findall(line) if m not in known]
    assert unknown == []
