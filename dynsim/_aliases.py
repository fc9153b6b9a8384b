"""Earlier module paths of the sub-packages, kept importable.

The sub-packages keep their implementation in private modules (`dynsim.solvers._api`) and export a
curated surface from their `__init__`. Code written against the earlier layout imports
`dynsim.solvers.api` or `from dynsim.sweeps.store import merge`; `install` adds one import hook
that resolves such a path to the private module (the same module object, so patching either name patches
both). New code imports from the sub-package: `from dynsim.solvers import solve`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: sub-packages whose `<name>` modules live as `_<name>`
PACKAGES = ("dynsim.eigenmodes", "dynsim.figures", "dynsim.grassmann", "dynsim.networks", "dynsim.solvers",
            "dynsim.sweeps")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package not in PACKAGES or name.startswith("_"):
            return None
        if importlib.util.find_spec(f"{package}._{name}") is None:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        package, _, name = module.__name__.rpartition(".")
        # the import system returns whatever sys.modules holds under the name after exec_module
        sys.modules[module.__name__] = importlib.import_module(f"{package}._{name}")


def install() -> None:
    """Add the hook once (importing dynsim does this)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())


def register(package: str) -> None:
    """Name every private module of `package` that is already imported under its earlier name too
    (`sys.modules` and, where the package has no attribute of that name, the package attribute)."""
    module = sys.modules[package]
    for full, sub in list(sys.modules.items()):
        parent, _, name = full.rpartition(".")
        if parent == package and name.startswith("_") and not name.startswith("__"):
            sys.modules.setdefault(f"{package}.{name[1:]}", sub)
            if not hasattr(module, name[1:]):
                setattr(module, name[1:], sub)
