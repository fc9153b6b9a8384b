"""Write ``docs/api.md``: every public module, class and function of dynsim with its signature and docstring
(which carries the equation it implements and its source). Run from the repository root:

    python docs/make_api.py          # rewrites docs/api.md
    python docs/make_api.py --check  # exit 1 if docs/api.md is out of date (tests/test_docs.py does this)

The docstrings are reStructuredText with LaTeX (``:math:`...```); this script turns roles into Markdown
(``$...$`` for math, backticks for code) so GitHub renders the page.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "api.md"
SKIP_MODULES = {"dynsim.__main__", "dynsim.cli"}  # the command line is documented by `dynsim --help`

HEADER = """# dynsim API reference

Generated from the docstrings by `python docs/make_api.py` (do not edit by hand; `tests/test_docs.py` checks
that this page is current). Each entry gives the signature and the docstring, which names the equation it
implements and its source (paper and equation number). Modules are listed
in the order data flows: parameters → models → solvers → results → metrics, sweeps and figures.
"""

ORDER = ["dynsim", "dynsim.params", "dynsim.units", "dynsim.components", "dynsim.models", "dynsim.targets",
         "dynsim.eigenmodes", "dynsim.networks", "dynsim.grassmann", "dynsim.analytic", "dynsim.solvers",
         "dynsim.parallel", "dynsim.compare", "dynsim.sweeps", "dynsim.figures", "dynsim.provenance"]


def rst_to_md(text: str) -> str:
    """Docstring reST → Markdown: math roles and blocks to $...$, cross-reference roles and literals to code."""
    text = inspect.cleandoc(text or "")
    lines, out, in_math = text.splitlines(), [], False
    for line in lines:
        if line.strip().startswith(".. math::"):
            in_math = True
            rest = line.strip()[len(".. math::"):].strip()
            out.append("$$")
            if rest:
                out.append(rest)
            continue
        if in_math:
            if line.strip() == "" and out[-1] != "$$":
                out.append("$$")
                out.append("")
                in_math = False
                continue
            if line.startswith(" ") or line.strip() == "":
                out.append(line.strip())
                continue
            out.append("$$")
            in_math = False
        out.append(line)
    if in_math:
        out.append("$$")
    md = "\n".join(out)
    # reST math blocks align with & (an implicit aligned environment); Markdown math needs it spelled out
    md = re.sub(r"\$\$\n(.*?)\n\$\$", lambda m: (f"$$\n\\begin{{aligned}}\n{m.group(1)}\n\\end{{aligned}}\n$$"
                                               if "&" in m.group(1) else m.group(0)), md, flags=re.S)
    md = re.sub(r":math:`([^`]*)`", lambda m: f"${m.group(1).strip()}$", md)
    md = re.sub(r":(?:func|class|mod|meth|attr|data|obj|exc):`~?([^`]*)`", r"`\1`", md)
    md = re.sub(r"``([^`]*)``", r"`\1`", md)
    return md


def _public_modules():
    import dynsim

    names = {"dynsim"}
    for info in pkgutil.walk_packages(dynsim.__path__, "dynsim."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]) or info.name in SKIP_MODULES:
            continue
        names.add(info.name)

    def key(name):
        # the longest entry of ORDER that names the module or a package above it
        matches = [(len(o), i) for i, o in enumerate(ORDER) if name == o or name.startswith(o + ".")]
        return (max(matches)[1] if matches else len(ORDER), name)

    return sorted(names, key=key)


def _members(mod):
    """Public classes and functions documented under ``mod``: those defined in it, and for a sub-package the
    names of its ``__all__`` defined in its private modules (``dynsim.solvers._api.solve`` is listed as
    ``dynsim.solvers.solve``)."""
    out = []
    if hasattr(mod, "__path__"):
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name)
            home = getattr(obj, "__module__", "") or ""
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and home.startswith(mod.__name__ + "._"):
                out.append((name, obj))
        return out
    for name, obj in vars(mod).items():
        if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if getattr(obj, "__module__", None) != mod.__name__:
            continue
        out.append((name, obj))
    return out


def _private_module_docs(mod):
    """``(short name, docstring)`` of the private modules of a sub-package that explain more than one name
    (a schema, a convention, a derivation): their docstrings belong with the package's reference."""
    if not hasattr(mod, "__path__") or mod.__name__ == "dynsim":
        return []
    out = []
    for info in pkgutil.iter_modules(mod.__path__):
        if not info.name.startswith("_") or info.name.startswith("__") or info.ispkg:
            continue
        sub = importlib.import_module(f"{mod.__name__}.{info.name}")
        doc = inspect.getdoc(sub) or ""
        if len(doc.splitlines()) > 3:
            out.append((info.name, doc))
    return out


def _signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "(...)"


def _methods(cls):
    out = []
    for name, obj in vars(cls).items():
        if name.startswith("_") and name != "__call__":
            continue
        fn = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
        if isinstance(obj, property):
            fn = obj.fget
        if inspect.isfunction(fn) and fn.__doc__:
            out.append((name, fn, isinstance(obj, property)))
    return out


def build() -> str:
    parts = [HEADER, "## Contents\n"]
    mods = []
    for name in _public_modules():
        mod = importlib.import_module(name)
        mods.append((name, mod))
        anchor = name.replace(".", "")
        summary = (inspect.getdoc(mod) or "").strip().split("\n\n")[0].replace("\n", " ")
        parts.append(f"- [`{name}`](#{anchor}): {rst_to_md(summary)}")
    parts.append("")
    for name, mod in mods:
        parts.append(f"## `{name}`\n")
        parts.append(rst_to_md(mod.__doc__ or "*(no module docstring)*") + "\n")
        for sub, doc in _private_module_docs(mod):
            parts.append(f"#### About `{sub}`\n")
            parts.append(rst_to_md(doc) + "\n")
        for mname, obj in _members(mod):
            kind = "class" if inspect.isclass(obj) else "function"
            parts.append(f"### `{name}.{mname}{_signature(obj)}`\n")
            parts.append(f"*{kind}*\n")
            parts.append(rst_to_md(obj.__doc__ or "*(undocumented)*") + "\n")
            if inspect.isclass(obj):
                for meth, fn, is_prop in _methods(obj):
                    sig = "" if is_prop else _signature(fn)
                    parts.append(f"- **`{meth}{sig}`**{' (property)' if is_prop else ''}: "
                                 + rst_to_md(fn.__doc__).replace("\n", "\n  ") + "\n")
    return "\n".join(parts).rstrip() + "\n"


def undocumented() -> list[str]:
    """Public classes and functions without a docstring (tests/test_docs.py keeps this list empty)."""
    missing = []
    for name in _public_modules():
        mod = importlib.import_module(name)
        if not mod.__doc__:
            missing.append(name)
        missing += [f"{name}.{m}" for m, obj in _members(mod) if not obj.__doc__]
    return missing


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = build()
    if "--check" in argv:
        if not OUT.is_file() or OUT.read_text() != text:
            print("docs/api.md is out of date: run python docs/make_api.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
