"""The documentation site builds without a warning, and the docstrings it is generated from are complete and in
the site's Markdown dialect."""

import ast
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import dynsim

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _public_modules():
    names = ["dynsim"]
    for info in pkgutil.walk_packages(dynsim.__path__, "dynsim."):
        if not any(p.startswith("_") for p in info.name.split(".")[1:]) and info.name != "dynsim.cli":
            names.append(info.name)
    return names


def _public_members(mod):
    """Classes and functions a module documents: its ``__all__`` (a package re-exporting its private modules), else
    the public names defined in it."""
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n, o in vars(mod).items() if not n.startswith("_") and getattr(o, "__module__", None) == mod.__name__]
    return [(n, getattr(mod, n)) for n in names if inspect.isclass(getattr(mod, n)) or inspect.isfunction(getattr(mod, n))]


def test_site_builds_strictly(tmp_path):
    """``mkdocs build --strict``: a broken link, an unresolved cross-reference in a docstring, a docstring parameter
    that is not in the signature or a page missing from the navigation fails the build."""
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert out.returncode == 0, out.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "solvers" / "index.html").is_file()
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    assert "dynsim sweep" in cli and "--no-compile-cache" in cli  # generated from the parsers


def test_every_public_module_class_and_function_has_a_docstring():
    missing = []
    for name in _public_modules():
        mod = importlib.import_module(name)
        if not mod.__doc__:
            missing.append(name)
        missing += [f"{name}.{m}" for m, obj in _public_members(mod) if not obj.__doc__]
    assert missing == []


def test_docstrings_are_markdown():
    """The site renders docstrings as Markdown with ``$...$`` math: no reStructuredText roles or directives are
    left, and no docstring holds a control character (a ``\\t`` of ``\\top`` in a string that is not raw)."""
    bad = []
    role = re.compile(r":(math|func|class|mod|meth|attr|data|obj|exc):`|^\s*\.\. (math|note|warning)::", re.M)
    for path in sorted((ROOT / "dynsim").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if role.search(node.value) or re.search(r"[\t\x07\x08\x0b\x0c\r]", node.value):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert bad == []


def test_every_command_line_option_the_docs_name_exists():
    """Every ``--option`` written in the README, the documentation pages or the package's docstrings is an option of
    the ``dynsim`` command (any subcommand) or of a benchmark script: no documented flag that the parser lacks."""
    from dynsim.cli import commands

    known = {option for _, parser in commands() for action in parser._actions for option in action.option_strings}
    known |= {"--strict"}  # mkdocs build --strict, named where the docs explain their own test
    for script in (ROOT / "benchmarks").glob("*.py"):
        known.update(re.findall(r'add_argument\("(--[a-z0-9-]+)"', script.read_text()))
    files = [ROOT / "README.md", *DOCS.rglob("*.md"), *(ROOT / "dynsim").rglob("*.py")]
    flag = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*(?![\w=-])")
    unknown = [(f.name, i, m) for f in files for i, line in enumerate(f.read_text().splitlines(), 1)
               for m in flag.findall(line) if m not in known]
    assert unknown == []


def test_every_theory_citation_resolves():
    """Docstrings, tests, notebooks and pages cite the theory pages as ``docs/theory/<page>.md#<anchor>``: every such
    page exists and has that anchor (a heading's slug or an explicit ``{#id}``)."""
    from markdown.extensions.toc import slugify

    anchors = {}
    for page in (DOCS / "theory").glob("*.md"):
        text = page.read_text()
        ids = set(re.findall(r"\{#([\w-]+)\}", text))
        for heading in re.findall(r"^#+ (.*?)\s*(?:\{#[\w-]+\})?$", text, re.M):
            ids.add(slugify(heading, "-"))
        anchors[page.name] = ids
    cite = re.compile(r"docs/theory/([\w]+\.md)(?:#([\w-]+))?")
    files = [*(ROOT / "dynsim").rglob("*.py"), *(ROOT / "tests").glob("*.py"), *(ROOT / "notebooks").glob("*.ipynb"),
             ROOT / "README.md", *DOCS.rglob("*.md")]
    bad = [(f.name, page, anchor) for f in files for page, anchor in cite.findall(f.read_text())
           if page not in anchors or (anchor and anchor not in anchors[page])]
    assert bad == []


def test_benchmark_records_are_written_and_shown(tmp_path, monkeypatch):
    """``--record`` turns a benchmark's ``name=value`` lines into the record's table, with the command; every record
    in ``benchmarks/results`` is included by the performance page."""
    import datetime
    import importlib.util

    spec = importlib.util.spec_from_file_location("_record", ROOT / "benchmarks" / "_record.py")
    record = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(record)
    monkeypatch.setattr(record, "RESULTS", tmp_path)
    started = datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.timezone.utc)
    path = record.write("bench_x", ["--method", "tsit5"], "a=1 b=2\nspeedup_vs_x=3.5  (target >= 2)\n", started)
    text = path.read_text()
    assert path.name == "bench_x_method_tsit5.md" and text.startswith("Measured 2026-01-02 (03:04 UTC) on ")
    assert "| `speedup_vs_x` | 3.5 |" in text and "`a`" not in text  # only whole key=value lines are results
    assert "Command: `python benchmarks/bench_x.py --method tsit5`." in text

    page = (DOCS / "performance.md").read_text()
    shown = set(re.findall(r'--8<-- "benchmarks/results/([\w.]+)"', page))
    assert shown == {p.name for p in (ROOT / "benchmarks" / "results").glob("*.md")}
