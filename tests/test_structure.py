"""The package's import structure: no import cycles, and no module reaches into another
sub-package's private names.

Every ``import`` in ``dynsim/`` counts, including those inside functions (a lazy import is still a
dependency). ``from A import b`` is an edge to the module ``A.b`` when ``b`` is a module, else to
``A``. Private names are those with a leading underscore; a module may import them only from its own
sub-package (``dynsim.solvers.rk45`` from ``dynsim.solvers.events``) or from the package-wide
private helper modules at the top level (``dynsim._checks``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "dynsim"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _package(name: str) -> str:
    """The sub-package a module belongs to (``dynsim.solvers``), or the top-level module itself."""
    parts = name.split(".")
    if len(parts) >= 2 and (ROOT / parts[1]).is_dir():
        return ".".join(parts[:2])
    return name


def _resolve(base: str, name: str | None) -> str | None:
    if name is not None and f"{base}.{name}" in MODULES:
        return f"{base}.{name}"
    return base if base in MODULES else None


def _imports(name: str):
    """``(target module, imported name or None, line)`` for every import of ``dynsim`` modules in ``name``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    here = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dynsim"):
                    target = _resolve(alias.name, None)
                    if target:
                        yield target, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here.split(".")[: len(here.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            if not base.startswith("dynsim"):
                continue
            for alias in node.names:
                target = _resolve(base, alias.name)
                if target:
                    yield target, alias.name, node.lineno


def _graph():
    return {m: {t for t, _, _ in _imports(m) if t != m} for m in MODULES}


def _cycle(graph):
    """One cycle of ``graph`` as a list of nodes, or ``None``."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_walker_sees_the_package():
    assert "dynsim.solvers._api" in MODULES and "dynsim.solvers._api" in _graph()["dynsim.solvers"]
    # a known edge: the solvers import their Solution type
    assert "dynsim.solvers._solution" in _graph()["dynsim.solvers._api"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_modules():
    assert _cycle(_graph()) is None


def test_no_import_cycle_between_subpackages():
    pkg_graph: dict[str, set[str]] = {}
    for m, targets in _graph().items():
        src = _package(m)
        pkg_graph.setdefault(src, set()).update(_package(t) for t in targets if _package(t) != src)
    # the package root re-exports its sub-packages; edges into it from below would be cycles
    pkg_graph.pop("dynsim", None)
    assert _cycle(pkg_graph) is None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_name_from_another_subpackage(name):
    bad = []
    for target, imported, line in _imports(name):
        private = [part for part in target.split(".")[1:] if part.startswith("_") and part != "__init__"]
        if imported is not None and imported.startswith("_") and f"{target}.{imported}" not in MODULES:
            private.append(imported)
        if not private:
            continue
        shared_helper = _package(target) == target and target.split(".")[-1].startswith("_")  # dynsim._checks
        if _package(target) != _package(name) and not shared_helper:
            bad.append(f"line {line}: {target} {imported or ''}")
    assert not bad, f"{name} imports private names of another sub-package: {bad}"


def test_layout_table_matches_the_tree():
    """Every top-level module and sub-package of ``dynsim/`` has a row in the layout table of the docs
    (``docs/guide/layout.md``), and every ``dynsim/...`` path the table names exists."""
    import re

    table = (ROOT.parent / "docs" / "guide" / "layout.md").read_text()
    named = set(re.findall(r"`(dynsim/[\w/.]*)`", table))
    entries = {f"dynsim/{p.name}" + ("/" if p.is_dir() else "") for p in ROOT.iterdir()
               if p.name != "__pycache__" and (p.suffix == ".py" or (p / "__init__.py").exists())}
    entries -= {"dynsim/__init__.py", "dynsim/__main__.py"}
    missing = sorted(e for e in entries if e not in named)
    assert not missing, f"docs/guide/layout.md lacks {missing}"
    stale = sorted(n for n in named if not (ROOT.parent / n).exists())
    assert not stale, f"docs/guide/layout.md names paths that do not exist: {stale}"


def test_subpackages_keep_implementation_private():
    """The sub-packages that hold implementation export their names from ``__init__`` and keep their modules
    private (the per-paper closed forms, figure modules and the components' packages are the exceptions by
    design: they are the public content)."""
    public_modules = {"dynsim.analytic", "dynsim.figures"}
    bad = [m for m in MODULES if m.count(".") == 2 and _package(m) not in public_modules
           and not m.rsplit(".", 1)[1].startswith("_")]
    assert not bad, f"public implementation modules: {bad}"


def test_earlier_module_paths_still_import():
    """Code written against the earlier layout (``dynsim.solvers.api``, ``from dynsim.sweeps.store import merge``)
    gets the private module itself, and a package attribute that is a function stays a function."""
    import importlib

    import dynsim
    from dynsim.networks.diagnostics import stable_rank
    from dynsim.sweeps.store import merge

    assert importlib.import_module("dynsim.solvers.api") is importlib.import_module("dynsim.solvers._api")
    assert importlib.import_module("dynsim.eigenmodes.ssl_modes").SSLModes is dynsim.SSLModes
    assert importlib.import_module("dynsim.figures.registry").FIGURES is dynsim.figures.FIGURES
    assert merge is dynsim.sweeps.merge and stable_rank is dynsim.networks.stable_rank
    assert callable(dynsim.networks.diagnostics) and not isinstance(dynsim.networks.diagnostics, type(dynsim))
    assert dynsim.grassmann.naive.NaiveFlow is dynsim.grassmann.NaiveFlow
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("dynsim.solvers.no_such_module")
