"""The ``dynsim`` command and the figures whose stored data are checked against theory."""

import os
import subprocess
import sys

import numpy as np
import pytest

from dynsim import cli


def test_help_of_every_command():
    for argv in (["--help"], ["figures", "--help"], ["info", "--help"], ["compare", "--help"], ["sweep", "--help"],
                 ["sweep", "run", "--help"], ["sweep", "merge", "--help"], ["sweep", "plot", "--help"],
                 ["sweep", "examples", "--help"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 0


def test_console_script_is_installed_and_lists_the_figures(capsys):
    """The installed `dynsim` command is `dynsim.cli:main` (`python -m dynsim` runs it in a process of its own in the
    parallel-figures test below and the sweep tests); `figures --list` names every figure."""
    from importlib.metadata import entry_points

    assert [e.value for e in entry_points(group="console_scripts") if e.name == "dynsim"] == ["dynsim.cli:main"]
    assert cli.main(["figures", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    from dynsim.figures import figure_names

    assert listed == figure_names() and "tian2021_fig3" in listed


def test_parallel_workers_and_the_compilation_cache_leave_the_data_unchanged(tmp_path, monkeypatch):
    """``--jobs 2`` with the compilation cache on, twice (cold, then reading what the first run stored): every array
    equals that of a one-process run without the cache (data never depend on workers or cache), and the second run
    reads every program the first one stored (JAX's debug log counts the cache hits). The command-line processes
    compile as this one does (tests/conftest.py), so the values compared come from the same programs."""
    from dynsim import cache
    from dynsim.figures import generate

    names = ["tian2021_fig4", "richemond2023_filters"]
    folder = tmp_path / "cache"
    env = dict(os.environ, DYNSIM_COMPILE_CACHE=str(folder), JAX_LOGGING_LEVEL="DEBUG")
    stored, hits = [], []
    for run in ("cold", "warm"):
        out = subprocess.run([sys.executable, "-m", "dynsim", "figures", "--fast", "--jobs", "2", "--out",
                              str(tmp_path / run), *names], env=env, check=True, capture_output=True, text=True,
                             timeout=600)
        stored.append({p.name for p in folder.glob("*-cache")})
        hits.append(out.stderr.count("Persistent compilation cache hit"))
    # every program is stored (MIN_COMPILE_SECONDS = 0): the two figures' solves (three programs) and their many
    # single-operation programs; the warm run compiles none of them again, so it stores nothing new
    assert cache.MIN_COMPILE_SECONDS == 0
    assert len(stored[0]) > 3 and stored[0] == stored[1] and hits[1] >= len(stored[0]), (len(stored[0]), hits)
    assert cli.main(["figures", "--fast", "--jobs", "1", "--out", str(tmp_path / "one"), *names]) == 0
    for name in names:
        with np.load(tmp_path / "one" / f"{name}.npz") as ref:
            for run in ("cold", "warm"):
                with np.load(tmp_path / run / f"{name}.npz") as d:
                    assert sorted(d.files) == sorted(ref.files)
                    for key in ref.files:
                        if key != "metadata":
                            np.testing.assert_array_equal(d[key], ref[key], err_msg=f"{run} {name} {key}")
    with pytest.raises(ValueError, match="jobs"):
        generate(names, out_dir=tmp_path / "bad", jobs=0)
    # the switch: a folder, or off
    monkeypatch.setenv(cache.ENV, "off")
    assert cache.configured_dir() is None
    monkeypatch.setenv(cache.ENV, str(folder))
    assert cache.configured_dir() == folder
    monkeypatch.delenv(cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.configured_dir() == tmp_path / "xdg" / "dynsim" / "jax"


def test_an_unusable_cache_folder_only_costs_the_cache(tmp_path, monkeypatch, capsys):
    """DYNSIM_COMPILE_CACHE naming a file (the folder cannot be created): the command runs, without the cache, and
    says why."""
    import jax

    from dynsim import cache

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv(cache.ENV, str(blocker / "cache"))
    assert cli.main(["figures", "--list"]) == 0
    assert "no compilation cache" in capsys.readouterr().err
    assert not jax.config.jax_compilation_cache_dir


def test_xla_flags_of_a_command(monkeypatch):
    """The classic CPU emitters unless XLA_FLAGS chooses the emitters; one device per core for sweeps and boundary
    searches unless XLA_FLAGS sets the count; the user's flags kept first. `main` sets them for its own run only."""
    cores = os.cpu_count() or 1
    monkeypatch.delenv("XLA_FLAGS")
    assert cli._xla_flags(["figures"]) == cli.CLASSIC_EMITTERS == "--xla_cpu_use_fusion_emitters=false"
    assert cli._xla_flags(["--float32", "sweep", "c.toml"]) == (
        f"{cli.CLASSIC_EMITTERS} --xla_force_host_platform_device_count={cores}")
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_use_fusion_emitters=true --xla_force_host_platform_device_count=3")
    assert cli._xla_flags(["boundary", "c.toml"]) == os.environ["XLA_FLAGS"]
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    assert cli._xla_flags(["info"]) == f"--xla_dump_to=/tmp/x {cli.CLASSIC_EMITTERS}"
    seen = []
    monkeypatch.setattr(cli, "_main", lambda argv: seen.append(os.environ["XLA_FLAGS"]) or 0)
    assert cli.main(["info"]) == 0
    assert seen == [f"--xla_dump_to=/tmp/x {cli.CLASSIC_EMITTERS}"] and os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"
    monkeypatch.delenv("XLA_FLAGS")
    assert cli.main(["info"]) == 0 and "XLA_FLAGS" not in os.environ


def test_unknown_figure_is_a_clear_error(capsys):
    assert cli.main(["figures", "nope"]) == 2
    assert "unknown figure" in capsys.readouterr().err


def test_fig3_files_and_data_match_theory(tmp_path, capsys):
    assert cli.main(["figures", "tian2021_fig3", "--fast", "--out", str(tmp_path), "--timings"]) == 0
    row = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("tian2021_fig3 ")]
    total, compile_s, run = (float(v) for v in row[0][1:])  # --timings: compile (tracing + XLA) within the total
    assert 0 < compile_s <= total and run == pytest.approx(total - compile_s, abs=0.011)
    for ext in ("png", "pdf", "npz"):
        assert (tmp_path / f"tian2021_fig3.{ext}").stat().st_size > 1000
    d = np.load(tmp_path / "tian2021_fig3.npz")
    sigma2, tau, alpha_p = float(d["sigma2"]), float(d["tau"]), float(d["alpha_p"])
    lam_s = 1 + sigma2
    assert float(d["eta_c"]) == pytest.approx(tau**2 / (4 * lam_s), rel=1e-15)
    P, S = d["p_grid"], d["s_grid"]
    for k, eta in enumerate(d["etas"]):
        # stored field equals Eqs. 11-12 written out independently here
        g = tau - lam_s * P
        np.testing.assert_allclose(d[f"dp_{k}"], alpha_p * S * g - eta * P, atol=1e-13)
        np.testing.assert_allclose(d[f"ds_{k}"], 2 * P * S * g - 2 * eta * S, atol=1e-13)
        fixed = d[f"fixed_points_{k}"][0]
        if eta == 0:
            assert fixed[0] == pytest.approx(tau / lam_s)
            # eta = 0: s - p^2/alpha_p is conserved along every drawn trajectory
            c = d["traj_s_0"] - d["traj_p_0"] ** 2 / alpha_p
            np.testing.assert_allclose(c, np.broadcast_to(c[:, :1], c.shape), atol=1e-6)
        elif eta < float(d["eta_c"]):
            disc = np.sqrt(tau**2 - 4 * eta * lam_s)
            np.testing.assert_allclose(fixed[1:], [(tau - disc) / (2 * lam_s), (tau + disc) / (2 * lam_s)], rtol=1e-12)
        else:
            assert np.all(np.isnan(fixed[1:]))
            # above the threshold every drawn trajectory collapses
            assert np.all(d[f"traj_s_{k}"][:, -1] < 1e-3)


@pytest.mark.slow  # ~35 s each (8 mode models); halvagal2023_fig5 is checked by default
@pytest.mark.parametrize("name", ["halvagal2023_fig2_eigenvalues", "halvagal2023_fig2_eigenvalues_symmetric"])
def test_halvagal_fig2_data_match_theory(tmp_path, name):
    """Both data models (``docs/theory/views.md``): with the online view clean (the authors' update) the Euclidean
    level is 1, the no-predictor panel is flat and without stop-gradient the modes decay, the small ones fastest
    (rate (c - 1)^2 + sigma^2 with W_P = WW^T); with both views noised the level is 1/(1 + sigma^2), the
    no-predictor panel decays as c0 exp(-2 sigma^2 t) and the no-stop-gradient panel collapses."""
    from dynsim.analytic import halvagal2023 as hv

    assert cli.main(["figures", name, "--fast", "--out", str(tmp_path)]) == 0
    d = np.load(tmp_path / f"{name}.npz")
    c0, s2 = d["c0"], float(d["sigma2"])
    clean = str(d["views"]) == "clean_online"
    k = 1.0 if clean else 1 + s2  # l11 / l12
    # columns: 0 no stop-grad, 1 no predictor, 2 plain, 3 IsoLoss
    if clean:  # the published run's start: smallest eigenvalue 0.020, trace 7.882 (docs/theory/halvagal2023.md#oracles)
        assert np.min(c0) == pytest.approx(0.020, abs=5e-4) and np.sum(c0) == pytest.approx(7.882, rel=1e-12)
        c = d["c_euclidean_0"]
        assert np.all(np.diff(c, axis=0) <= 1e-12) and c[-1, 0] < 1e-2 * c0[0]
        np.testing.assert_allclose(d["c_euclidean_1"], np.broadcast_to(c0, d["c_euclidean_1"].shape), rtol=1e-12)
    else:
        assert np.all(d["c_euclidean_0"][-1] < 1e-2)  # collapse
        t = d["t_euclidean_1"][:, None]
        np.testing.assert_allclose(d["c_euclidean_1"], c0 * np.exp(-2 * (k - 1) * t), rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(d["c_euclidean_3"][-1], 1 / k, rtol=1e-4)  # IsoLoss converged by 1500 steps
    tr = d["c_cosine_2"].sum(axis=1)
    np.testing.assert_allclose(tr, c0.sum(), rtol=1e-6)  # tr C conserved
    sq = (d["c_cosine_3"] ** 2).sum(axis=1)
    np.testing.assert_allclose(sq, (c0**2).sum(), rtol=1e-6)  # sum c^2 conserved by cosine IsoLoss
    levels = (hv.cosine_end_level(c0), hv.cosine_iso_end_level(c0, 1.0))
    if clean:  # the smallest mode (0.020) is still rising after 1500 steps; the others have met
        for col, level in zip((2, 3), levels):
            c = d[f"c_cosine_{col}"]
            assert np.ptp(c[-1, 1:]) < 1e-3 * level and np.all(np.diff(c[:, 0]) > 0) and c[-1, 0] < level
    else:
        np.testing.assert_allclose(d["c_cosine_2"][-1], levels[0], rtol=1e-2)
        np.testing.assert_allclose(d["c_cosine_3"][-1], levels[1], rtol=1e-2)
    np.testing.assert_allclose(d["c_cosine_1"].sum(axis=1), c0.sum(), rtol=1e-6)  # no predictor: tr C too


def test_figures_needing_a_missing_extra_are_skipped_with_a_note(monkeypatch):
    """`dynsim figures` with no names makes every figure whose optional dependencies are installed; one whose module
    is missing is left out with a note naming the extra (the real-data figure needs dynsim[data])."""
    import dataclasses

    from dynsim.figures import FIGURES
    from dynsim.figures._catalogue import installed_figures

    spec = FIGURES["digits_augmentations"]
    assert spec.requires == "sklearn" and spec.extra == "data" and spec.available
    notes = []
    monkeypatch.setitem(FIGURES, "digits_augmentations", dataclasses.replace(spec, requires="no_such_module_here"))
    names = installed_figures(notes.append)
    assert "digits_augmentations" not in names and "tian2021_fig3" in names
    assert notes == ["skipped digits_augmentations: it needs no_such_module_here, from pip install 'dynsim[data]'"]
