"""Every notebook in notebooks/ executes top to bottom (they are stored without outputs).

The notebooks a test process runs share one Jupyter kernel: starting a kernel and importing JAX, dynsim and
matplotlib in it took about a third of a notebook's test time, and programs two notebooks both compile are compiled
once. Before each notebook the kernel is reset to what a fresh one holds for the notebook's code: no names
(`%reset -f`), JAX's default precision (each notebook turns float64 on itself), no open figures and matplotlib's
default settings, and the notebook's own working folder. Imported modules and JAX's compiled programs stay; they
change no value. A kernel that fails is shut down, and the next notebook starts a new one."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.util import run_sync

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))

#: run before each notebook in the shared kernel (module docstring); leaves no name behind
FRESH = """%reset -f
def _fresh(path):
    import os, jax, matplotlib, matplotlib.pyplot as plt
    plt.close("all"); matplotlib.rcdefaults(); jax.config.update("jax_enable_x64", False); os.chdir(path)
_fresh({path!r})
del _fresh"""


@pytest.fixture(scope="module")
def kernel():
    """A holder for this test process's kernel manager, started on first use (`run`), shut down at the end."""
    holder = {"km": None}
    yield holder
    if holder["km"] is not None:
        run_sync(holder["km"].shutdown_kernel)(now=True)


def run(holder: dict, nb, folder: Path) -> None:
    """Execute `nb` in the shared kernel (a new one if there is none), its working folder `folder`."""
    if holder["km"] is None:
        km = NotebookClient(nb, kernel_name="python3").create_kernel_manager()
        # the kernel inherits this process's environment: the compile setting (tests/conftest.py) and a backend
        # that draws without a display
        run_sync(km.start_kernel)(env=dict(os.environ, MPLBACKEND="Agg"), cwd=str(folder))
        holder["km"] = km
    fresh = nbformat.v4.new_code_cell(FRESH.format(path=str(folder)))
    nb.cells.insert(0, fresh)
    client = NotebookClient(nb, km=holder["km"], timeout=600, kernel_name="python3")
    try:
        client.execute()
    except BaseException:
        run_sync(holder["km"].shutdown_kernel)(now=True)
        holder["km"] = None
        raise
    finally:
        if client.kc is not None:
            client.kc.stop_channels()


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path, kernel):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "store notebooks without outputs"
    run(kernel, nb, tmp_path)
