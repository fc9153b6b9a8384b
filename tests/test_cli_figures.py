"""The ``dynsim`` command and the main job's figure, whose stored data are checked against theory."""

import subprocess
import sys

import numpy as np
import pytest

from dynsim import cli


def test_help_of_every_command():
    for argv in (["--help"], ["figures", "--help"], ["info", "--help"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 0


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "dynsim", "figures", "--list"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "tian2021_fig3" in out.stdout


def test_unknown_figure_is_a_clear_error(capsys):
    assert cli.main(["figures", "nope"]) == 2
    assert "unknown figure" in capsys.readouterr().err


def test_fig3_files_and_data_match_theory(tmp_path):
    assert cli.main(["figures", "tian2021_fig3", "--fast", "--out", str(tmp_path)]) == 0
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
