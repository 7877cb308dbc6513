"""The bayes-gmm command line: in-process through bayes_gmm.cli.main(argv) and once as a real subprocess."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest

from bayes_gmm import cli
from bayes_gmm._cli_input import parse_components
from bayes_gmm.inference import membership_probabilities

# tests/data/REFERENCE.md, "Other known figures": faithful, "full" covariance, 2 components
FAITHFUL_FULL_2_LOGLIK = -1130.264


EM_FILES = ["assignments.csv", "summary.txt"]
BAYES_FILES = ["assignments.csv", "compare_em.csv", "posterior.nc", "summary.txt"]


def check_outputs(
    out: Path, n_rows: int, data_columns: list[str], k: int, files=EM_FILES, intervals: bool = False
) -> pd.DataFrame:
    summary = (out / "summary.txt").read_text(encoding="utf-8")
    assert f"{k} components" in summary
    assignments = pd.read_csv(out / "assignments.csv")
    proba_columns = [f"p_component_{j}" for j in range(k)]
    interval_columns = [f"p_component_{j}_{side}90" for j in range(k) for side in ("lower", "upper")]
    expected = [*data_columns, "component", "max_probability", "entropy", *proba_columns]
    assert list(assignments.columns) == expected + (interval_columns if intervals else [])
    assert len(assignments) == n_rows
    proba = assignments[proba_columns].to_numpy()
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_array_equal(assignments["component"].to_numpy(), proba.argmax(axis=1))
    np.testing.assert_allclose(assignments["max_probability"].to_numpy(), proba.max(axis=1))
    if intervals:
        for j in range(k):
            lower, upper = assignments[f"p_component_{j}_lower90"], assignments[f"p_component_{j}_upper90"]
            assert np.all((lower >= 0) & (lower <= upper) & (upper <= 1))
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == sorted(files)  # no temporary files
    return assignments


def assert_only_progress(stderr: str) -> None:
    """Without --quiet, stderr carries progress lines ("EM fit (10 restarts) ..."), nothing else."""
    assert all(line.endswith("...") for line in stderr.splitlines()), stderr


def assert_one_error_line(stderr: str, pattern: str, prefix: str = "bayes-gmm: error: ") -> None:
    """The command's whole stderr is one line that starts with `prefix` and matches `pattern`."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(prefix), lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in stderr


def summary_log_likelihood(text: str) -> float:
    match = re.search(r"log-likelihood (-?\d+\.\d+)", text)
    assert match, text
    return float(match.group(1))


def test_demo_in_process(tmp_path, capsys):
    out = tmp_path / "results"
    assert cli.main(["fit", "--demo", "--method", "em", "--no-plots", "--quiet", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assignments = check_outputs(out, 272, ["eruptions", "waiting"], 2)
    faithful = pd.read_csv(Path(cli.__file__).parent / "datasets" / "faithful.csv")
    np.testing.assert_array_equal(assignments[["eruptions", "waiting"]].to_numpy(), faithful.to_numpy())
    # default model: 2 components, full covariance; published maximum logL (REFERENCE.md)
    summary = (out / "summary.txt").read_text(encoding="utf-8")
    assert summary_log_likelihood(summary) == pytest.approx(FAITHFUL_FULL_2_LOGLIK, abs=0.01)
    assert summary_log_likelihood(captured.out) == pytest.approx(FAITHFUL_FULL_2_LOGLIK, abs=0.01)
    # the two eruption types: short (~2 min) and long (~4.3 min) eruptions
    means = assignments.groupby("component")["eruptions"].mean().sort_values().to_numpy()
    np.testing.assert_allclose(means, [2.04, 4.29], atol=0.1)


def test_demo_subprocess(tmp_path):
    exe = shutil.which("bayes-gmm") or str(Path(sys.executable).with_name("bayes-gmm"))
    if not Path(exe).is_file():
        pytest.fail("the bayes-gmm console script is not installed; run pip install -e '.[test]'")
    out = tmp_path / "out"
    proc = subprocess.run(
        [exe, "fit", "--demo", "--method", "em", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout
    check_outputs(out, 272, ["eruptions", "waiting"], 2)
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "clusters.png",
        "density.png",
        "membership.png",
    ]


@pytest.fixture
def csv_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 120
    labels = np.repeat([0, 1], n // 2)
    table = pd.DataFrame(
        {
            "name": [f"s{i}" for i in range(n)],
            "a": rng.normal(loc=np.where(labels == 0, 0.0, 8.0), scale=1.0),
            "b": rng.normal(loc=np.where(labels == 0, 0.0, -5.0), scale=0.5),
            "c": rng.integers(0, 3, size=n),
        }
    )
    path = tmp_path / "data.csv"
    table.to_csv(path, index=False)
    return path, labels


def test_csv_with_columns(tmp_path, csv_file, capsys):
    path, labels = csv_file
    out = tmp_path / "out"
    argv = [
        "fit",
        str(path),
        "--columns",
        "a, b",
        "-k",
        "2",
        "--covariance",
        "diag",
        "--n-init",
        "2",
        "--method",
        "em",
        "--no-plots",
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0
    assert_only_progress(capsys.readouterr().err)
    assignments = check_outputs(out, 120, ["a", "b"], 2)
    component = assignments["component"].to_numpy()
    agreement = max(np.mean(component == labels), np.mean(component != labels))
    assert agreement == 1.0  # two well-separated groups
    assert "covariance 'diag'" in (out / "summary.txt").read_text(encoding="utf-8")


def test_csv_default_columns_are_the_numeric_ones(tmp_path, csv_file):
    path, _ = csv_file
    out = tmp_path / "out"
    assert (
        cli.main(
            ["fit", str(path), "-k", "2", "--n-init", "1", "--method", "em", "--no-plots", "--out", str(out)]
        )
        == 0
    )
    check_outputs(out, 120, ["a", "b", "c"], 2)


def test_single_column_csv_reproduces_published_fit(tmp_path, reference_data_dir, capsys):
    """galaxies (one column): REFERENCE.md's 1-D "full" (mclust V) 3-component maximum, logL -203.1792."""
    out = tmp_path / "out"
    argv = [
        "fit",
        str(reference_data_dir / "galaxies.csv"),
        "-k",
        "3",
        "--covariance",
        "full",
        "--method",
        "em",
        "--no-plots",
        "--quiet",
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0
    assert_only_progress(capsys.readouterr().err)
    check_outputs(out, 82, ["velocity_1000kms"], 3)
    summary = (out / "summary.txt").read_text(encoding="utf-8")
    assert summary_log_likelihood(summary) == pytest.approx(-203.1792, abs=0.01)


def test_no_out_prints_summary_only(tmp_path, csv_file, capsys, monkeypatch):
    path, _ = csv_file
    monkeypatch.chdir(tmp_path)
    assert cli.main(["fit", str(path), "--columns", "a,b", "--n-init", "1", "--method", "em"]) == 0
    captured = capsys.readouterr()
    assert "Gaussian mixture by EM: 2 components" in captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


def write_csv(tmp_path, text):
    path = tmp_path / "input.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda tmp: [str(tmp / "missing.csv")], r"CSV file not found: .*missing\.csv"),
        (
            lambda tmp: [str(write_csv(tmp, "a,b\n1,x\n2,y\n3,z\n")), "--columns", "a,b"],
            r"\['b'\] are not numeric",
        ),
        (
            lambda tmp: [str(write_csv(tmp, "a,b\n1,x\n2,y\n")), "--columns", "a,zz"],
            r"\['zz'\] not in the data",
        ),
        (lambda tmp: [str(write_csv(tmp, "name\nx\ny\n"))], r"no numeric columns"),
        (lambda tmp: [str(write_csv(tmp, "a,b\n1,2\n")), "-k", "2"], r"1 rows is too few for 2 components"),
        (lambda tmp: [str(write_csv(tmp, "a,b\n1,2\n3,\n5,6\n7,8\n"))], r"1 row\(s\) have missing values"),
        (
            lambda tmp: [str(write_csv(tmp, "a,b\n1,2\ninf,3\n4,5\n"))],
            r"column 'a' holds inf on line 3, which is not a finite number",
        ),
        (lambda tmp: [str(write_csv(tmp, ""))], r"could not read .* as CSV"),
        (lambda tmp: [], r"no data"),
        (lambda tmp: [str(write_csv(tmp, "a\n1\n2\n")), "--demo"], r"either a CSV file or --demo"),
        (lambda tmp: ["--demo", "-k", "0"], r"--components \(-k\) must be an integer >= 1"),
    ],
    ids=[
        "missing-file",
        "non-numeric-column",
        "unknown-column",
        "no-numeric-columns",
        "too-few-rows",
        "nan-values",
        "inf-values",
        "empty-file",
        "no-data",
        "csv-and-demo",
        "zero-components",
    ],
)
def test_error_paths(tmp_path, capsys, make_args, message):
    out = tmp_path / "out"
    status = cli.main(["fit", *make_args(tmp_path), "--n-init", "1", "--method", "em", "--out", str(out)])
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("bayes-gmm: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in captured.err
    assert not out.exists()  # nothing written, not even the output folder


def test_bad_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as excinfo:
        cli.main(["fit", "--demo", "--covariance", "banana"])
    assert excinfo.value.code == 2
    assert "unknown covariance type(s) ['banana']; choose from full, tied" in capsys.readouterr().err


def test_fit_takes_one_covariance_type_and_select_k_several(capsys):
    assert cli.main(["fit", "--demo", "--covariance", "full,EII", "--method", "em"]) == 2
    assert "fit takes one --covariance type; got full,EII" in capsys.readouterr().err
    assert cli.main(["select-k", "--demo", "--covariance", "full,VEV", "--components", "1-2"]) == 2
    assert "covariance_type='VEV' has no Bayesian model" in capsys.readouterr().err


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    """A failure half-way through writing leaves no output folder, no partial file, no temporary folder."""
    out = tmp_path / "out"

    def failing_to_csv(self, path, *args, **kwargs):
        Path(path).write_text("component,p_component_0\n0,0.5\n", encoding="utf-8")  # half a file
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", failing_to_csv)
    status = cli.main(
        ["fit", "--demo", "--n-init", "1", "--method", "em", "--no-plots", "-q", "--out", str(out)]
    )
    assert status == 2
    assert_one_error_line(capsys.readouterr().err, r"could not read or write a file: disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither out nor a hidden temporary folder


QUICK_SAMPLING = ["--draws", "150", "--tune", "150", "--chains", "2", "--quiet"]


def test_bayesian_fit_writes_every_promised_file(tmp_path, capsys):
    """The README's main job (fewer draws): NUTS fit of the bundled data, posterior, plots, EM comparison."""
    out = tmp_path / "out"
    assert cli.main(["fit", "--demo", *QUICK_SAMPLING, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assignments = check_outputs(out, 272, ["eruptions", "waiting"], 2, files=BAYES_FILES, intervals=True)
    idata = az.from_netcdf(out / "posterior.nc")
    assert idata.posterior.sizes["chain"] == 2 and idata.posterior.sizes["draw"] == 150
    assert idata.log_likelihood["obs"].shape == (2, 150, 272)
    assert idata.attrs["method"] == "nuts" and idata.attrs["n_components"] == 2
    # The stored membership equals what the saved posterior gives.
    membership = membership_probabilities(idata)
    np.testing.assert_allclose(
        assignments["p_component_1"], membership["probability"].values[:, 1], atol=1e-9
    )
    comparison = pd.read_csv(out / "compare_em.csv")
    assert len(comparison) == 2 + 2 * 2 + 2 * 2  # weights, means, standard deviations
    np.testing.assert_allclose(comparison["difference"], comparison["posterior_mean"] - comparison["em"])
    assert comparison["difference_in_sd"].abs().max() < 3  # EM sits inside the posterior
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "clusters.png",
        "density.png",
        "membership.png",
        "trace.png",
    ]
    for png in (out / "plots").iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Bayesian Gaussian mixture by NUTS" in printed and "Bayesian posterior vs EM" in printed
    assert "elpd_loo" in printed
    summary = (out / "summary.txt").read_text(encoding="utf-8")
    assert printed.startswith(summary)  # the files were written before the summary was printed
    assert summary.endswith(
        "Data: the bundled Old Faithful data, 272 rows; columns used: eruptions, waiting.\n"
    )
    # the posterior's correlations: Old Faithful's two eruption types have eruptions~waiting about 0.3 to 0.4
    correlations = re.findall(r"^ +\d  eruptions~waiting ([+-]\d\.\d{3})$", summary, flags=re.MULTILINE)
    assert len(correlations) == 2 and all(0.1 < float(c) < 0.6 for c in correlations), summary


def test_summary_of_an_unconverged_fit_says_so_at_the_top(tmp_path, capsys):
    """Four components on two clusters: a duplicated component, whose draws switch labels, never converges."""
    out = tmp_path / "out"
    argv = ["fit", "--demo", "-k", "4", "--draws", "100", "--tune", "100", "--chains", "2", "--quiet"]
    assert cli.main([*argv, "--no-plots", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    summary = (out / "summary.txt").read_text(encoding="utf-8")
    assert summary.startswith("NOT CONVERGED: R-hat ") and captured.out.startswith(summary.splitlines()[0])
    problems = az.from_netcdf(out / "posterior.nc").attrs["convergence_problems"]
    assert summary.splitlines()[0] == f"NOT CONVERGED: {problems}."
    assert f"bayes-gmm: warning: the fit did not converge: {problems}." in captured.err


@pytest.mark.slow  # end to end: EM, ADVI, the summary and every figure (8 s on two busy cores)
def test_advi_fit_of_a_csv(tmp_path, csv_file, capsys):
    path, labels = csv_file
    out = tmp_path / "out"
    argv = [
        "fit",
        str(path),
        "--columns",
        "a,b",
        "--method",
        "advi",
        "--draws",
        "200",
        "--no-plots",
        "--quiet",
    ]
    assert cli.main([*argv, "--out", str(out)]) == 0
    assert "mean-field ADVI" in capsys.readouterr().out
    assignments = check_outputs(out, 120, ["a", "b"], 2, files=BAYES_FILES, intervals=True)
    component = assignments["component"].to_numpy()
    assert max(np.mean(component == labels), np.mean(component != labels)) == 1.0


def test_select_k_command(tmp_path, capsys):
    out = tmp_path / "k"
    # 2 x 150 draws are too few to converge: --include-unconverged compares the fits all the same.
    argv = ["select-k", "--demo", "--components", "1,2", *QUICK_SAMPLING, "--include-unconverged"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "selection.csv")
    assert list(table["n_components"]) == [1, 2]
    assert not table["converged"].all() and not table["excluded"].any()
    assert "kept in (include_unconverged) the WAIC/LOO picks and weights" in printed
    # Old Faithful has two eruption types: every criterion prefers 2 components to 1 by far.
    assert table.loc[1, "elpd_loo"] > table.loc[0, "elpd_loo"] + 50
    assert table.loc[1, "em_bic"] < table.loc[0, "em_bic"] - 100
    np.testing.assert_allclose(table["em_log_likelihood"], [-1289.797, FAITHFUL_FULL_2_LOGLIK], atol=0.01)
    assert "picks: WAIC k=2, LOO k=2, BIC k=2, AIC k=2, ICL k=2" in printed
    assert "Data: the bundled Old Faithful data, 272 rows; columns used: eruptions, waiting." in printed
    assert (out / "k_selection.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "selection.txt").read_text(encoding="utf-8").startswith("Choosing the number of components")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["select-k", "--demo", "--components", "two"], r"--components must be a list like 1,2,3"),
        (["select-k", "--demo", "--components", "1,1"], r"no k twice"),
        (["fit", "--demo", "--draws", "0"], r"draws must be"),
    ],
)
def test_bayesian_error_paths(tmp_path, capsys, argv, message):
    status = cli.main([*argv, "--quiet", "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(lines) == 1 and re.search(message, lines[0]), lines


@pytest.mark.parametrize(
    ("text", "expected"), [("3", [1, 2, 3]), ("2-4", [2, 3, 4]), ("2,5", [2, 5]), (" 1 ", [1])]
)
def test_components_option_forms(text, expected):
    assert parse_components(text) == expected


# --- output: all or nothing, one run per folder, umask modes, interrupts --------------------------------------

EM_RUN = ["fit", "--demo", "--method", "em", "--n-init", "1", "--quiet"]


def snapshot(folder: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and folder under `folder`: relative path -> (content, or None for a folder; mode)."""
    return {
        str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(folder.rglob("*"))
    }


def test_rerun_replaces_the_whole_folder(tmp_path):
    """An EM run into the folder of an earlier NUTS run leaves none of the NUTS run's files behind."""
    out = tmp_path / "out"
    (out / "plots").mkdir(parents=True)
    for name in ("posterior.nc", "compare_em.csv", "summary.txt", "plots/trace.png"):
        (out / name).write_bytes(b"from an earlier run")
    assert cli.main([*EM_RUN, "--no-plots", "--out", str(out)]) == 0
    check_outputs(out, 272, ["eruptions", "waiting"], 2)  # exactly summary.txt and assignments.csv
    assert not (out / "plots").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no hidden partial or old folder


def test_failed_rerun_leaves_the_earlier_run_intact(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    assert cli.main([*EM_RUN, "--no-plots", "--out", str(out)]) == 0
    before = snapshot(out)

    def failing_plots(directory, *args, **kwargs):  # summary.txt and assignments.csv are written by now
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli, "_write_fit_plots", failing_plots)
    capsys.readouterr()
    assert cli.main([*EM_RUN, "-k", "3", "--out", str(out)]) == 2
    assert_one_error_line(capsys.readouterr().err, r"No space left on device")
    assert snapshot(out) == before  # the 2-component run, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_tune_0_is_one_error_line_not_a_sampler_panic(capsys):
    assert cli.main(["fit", "--demo", "--tune", "0", "--quiet", "--no-plots"]) == 2
    assert_one_error_line(capsys.readouterr().err, r"tune must be an integer >= 1; got 0\. ")


def test_folder_with_other_files_is_refused_before_fitting(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    monkeypatch.setattr(cli, "fit_em", lambda *a, **k: pytest.fail("fitted before checking --out"))
    assert cli.main([*EM_RUN, "--out", str(out)]) == 2
    assert_one_error_line(
        capsys.readouterr().err, r"--out .*out holds files that bayes-gmm did not write \(notes\.txt\)"
    )
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_output_modes_follow_the_umask(tmp_path, umask):
    out = tmp_path / "new" / "out"  # a missing parent is created with the umask too
    previous = os.umask(umask)
    try:
        plots = [] if umask == 0o022 else ["--no-plots"]
        assert cli.main([*EM_RUN, *plots, "--out", str(out)]) == 0
    finally:
        os.umask(previous)
    files = snapshot(out)
    assert "summary.txt" in files and ("plots/clusters.png" in files) == (umask == 0o022)
    for name, (content, mode) in files.items():
        assert mode == (0o777 if content is None else 0o666) & ~umask, name
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask


def test_interrupt_swallowed_by_a_library_still_stops_the_run(tmp_path, monkeypatch, capsys):
    """PyMC, nutpie and ADVI catch KeyboardInterrupt and return what they have: the command still stops."""
    out = tmp_path / "out"
    assert cli.main([*EM_RUN, "--no-plots", "--out", str(out)]) == 0
    before = snapshot(out)
    real_fit_em = cli.fit_em

    def interrupted_fit_em(*args, **kwargs):
        try:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C ...
        except KeyboardInterrupt:
            pass  # ... caught by the library, which returns a result as if nothing happened
        return real_fit_em(*args, **kwargs)

    monkeypatch.setattr(cli, "fit_em", interrupted_fit_em)
    handler_before = signal.getsignal(signal.SIGINT)
    capsys.readouterr()
    assert cli.main([*EM_RUN, "-k", "3", "--out", str(out)]) == cli.EXIT_INTERRUPTED
    captured = capsys.readouterr()
    assert captured.out == ""  # no summary of a run that did not finish
    assert_one_error_line(
        captured.err, r"nothing was written; .*out is as it was", prefix="bayes-gmm: interrupted"
    )
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert signal.getsignal(signal.SIGINT) is handler_before  # the command's own handler is removed


def test_ctrl_c_inside_a_finalizer_is_neither_printed_nor_lost(monkeypatch):
    """Python prints "Exception ignored in ..." with a traceback for an exception raised in __del__."""
    from types import SimpleNamespace

    from bayes_gmm._interrupt import Interrupt

    printed, timers = [], []
    monkeypatch.setattr(sys, "unraisablehook", printed.append)

    class RecordedTimer:
        def __init__(self, delay, function):
            self.cancelled = False
            timers.append(self)

        def start(self):
            pass

        def cancel(self):
            self.cancelled = True

    monkeypatch.setattr(threading, "Timer", RecordedTimer)
    in_del = SimpleNamespace(exc_value=KeyboardInterrupt())
    other_error = SimpleNamespace(exc_value=RuntimeError("an LLVM object half torn down"))
    with Interrupt().catching() as interrupt:
        sys.unraisablehook(other_error)  # before any Ctrl-C, reported as Python would
        assert printed == [other_error]
        sys.unraisablehook(in_del)  # not printed; the main thread is interrupted again a moment later
        assert printed == [other_error] and len(timers) == 1
        interrupt.interrupted = True
        sys.unraisablehook(other_error)  # after Ctrl-C: part of the interrupt, not printed
        assert printed == [other_error]
        monkeypatch.setattr(os, "getpid", lambda: -1)  # a forked sampler worker: quiet, its parent stops it
        sys.unraisablehook(in_del)
        assert printed == [other_error] and len(timers) == 1
    assert sys.unraisablehook == printed.append  # the previous hook is back
    assert timers[0].cancelled  # no re-interrupt once the command is over


FRAGILE_RUN = """
import os, signal, sys, time
from bayes_gmm import cli

class Fragile:
    def __del__(self):
        raise RuntimeError("an LLVM object half torn down")

def fit(args):
    fragile = Fragile()  # freed only when the interrupted frame is
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)

cli._cmd_fit = fit
sys.exit(cli.main(["fit", "--demo", "--out", sys.argv[1]]))
"""


def test_finalizers_of_an_interrupted_run_print_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", FRAGILE_RUN, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == cli.EXIT_INTERRUPTED, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"bayes-gmm: interrupted: nothing was written; {tmp_path / 'out'} is as it was"
    ]


def interrupt_during_sampling(
    out: Path, extra: list[str], started: str, delay: float, timeout: float, signum=signal.SIGINT
):
    """Run `bayes-gmm fit --demo` as a real process and signal it `delay` s after a stderr line containing
    `started`. SIGINT goes to its whole process group, as a terminal's Ctrl-C does (sampler workers
    included); SIGTERM to the command's process alone, as `kill PID` does. Returns (exit status, stderr,
    seconds from start to exit)."""
    argv = [sys.executable, "-m", "bayes_gmm.cli", "fit", "--demo", "--no-plots", "--out", str(out), *extra]
    begin = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    lines: list[str] = []
    seen = threading.Event()

    def read_stderr():
        for line in proc.stderr:
            lines.append(line)
            if started in line:
                seen.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert seen.wait(timeout), "".join(lines)
        time.sleep(delay)
        assert proc.poll() is None, "".join(lines)  # still sampling
        if signum == signal.SIGINT:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
        status = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    reader.join(timeout=5)
    # The sampler's worker processes end with the command; on cold caches one may be inside a compile (a
    # C call, which a signal's Python handler waits for), so it may take the rest of that compile.
    deadline = time.monotonic() + 60
    while _group_alive(proc.pid):
        assert time.monotonic() < deadline, "worker processes outlived the command"
        time.sleep(0.1)
    return status, "".join(lines), time.perf_counter() - begin


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def check_interrupted_run(tmp_path, extra, started, delay, timeout, signum=signal.SIGINT):
    out = tmp_path / "out"
    assert cli.main([*EM_RUN, "--no-plots", "--out", str(out)]) == 0
    before = snapshot(out)
    many_draws = ["--draws", "100000", "--tune", "200", "--chains", "2"]  # minutes of sampling if not stopped
    status, stderr, seconds = interrupt_during_sampling(
        out, [*many_draws, *extra], started, delay, timeout, signum
    )
    stopped = "interrupted" if signum == signal.SIGINT else "terminated (SIGTERM)"
    # Killed by the signal, once cleaned up, so that a shell loop around the command stops too.
    assert status == -signum, stderr
    assert stderr.strip().splitlines()[-1] == f"bayes-gmm: {stopped}: nothing was written; {out} is as it was"
    assert "Traceback" not in stderr, stderr
    assert snapshot(out) == before  # no new files, the earlier results untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    return seconds


def test_sigint_during_pymc_sampling_keeps_the_earlier_results(tmp_path):
    """PyMC's sampler logs "NUTS: [...]" as sampling starts; SIGINT a second later."""
    seconds = check_interrupted_run(tmp_path, ["--backend", "pymc"], "NUTS: [", delay=1.0, timeout=60)
    assert seconds < 60


def test_sigterm_during_pymc_sampling_stops_the_run_as_ctrl_c_does(tmp_path):
    """`kill PID` (SIGTERM) to the command alone: its sampler worker processes are stopped by it, exit 143."""
    seconds = check_interrupted_run(
        tmp_path, ["--backend", "pymc"], "NUTS: [", delay=1.0, timeout=60, signum=signal.SIGTERM
    )
    assert seconds < 60
    assert cli.EXIT_TERMINATED == 143


KILLED_WHILE_WRITING = """
import os, signal, sys
from bayes_gmm import cli

def write_csv(path, frame):  # summary.txt is written, then the process is killed (kill -9)
    os.kill(os.getpid(), signal.SIGKILL)

cli.write_csv = write_csv
sys.exit(cli.main(["fit", "--demo", "--method", "em", "--n-init", "1", "--quiet", "-k", "3", "--out", sys.argv[1]]))
"""


def kill_while_writing(tmp_path) -> tuple[Path, dict]:
    """A finished run into tmp_path/out, then a run SIGKILLed while writing its results there."""
    out = tmp_path / "out"
    assert cli.main([*EM_RUN, "--no-plots", "--out", str(out)]) == 0
    before = snapshot(out)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WHILE_WRITING, str(out)], capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return out, before


def test_sigkill_while_writing_leaves_the_previous_results(tmp_path):
    out, before = kill_while_writing(tmp_path)
    assert snapshot(out) == before


@pytest.mark.slow
def test_sigint_during_nutpie_sampling_keeps_the_earlier_results(tmp_path):
    """nutpie (the default) prints no progress to a pipe: SIGINT well after its compilation (~10-15 s)."""
    check_interrupted_run(tmp_path, [], "nuts fit ...", delay=25.0, timeout=120)


# -- zarr stores and parquet folders: EM on Dask -------------------------------------------------------


def two_blobs(n=3000, seed=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    return rng.normal(np.where(labels[:, None] == 0, [0.0, 0.0], [6.0, -4.0]), [1.0, 0.7])


def write_zarr(path: Path, X, chunk_rows=500):
    import zarr  # installed with the test extra

    store = zarr.create_array(store=path, shape=X.shape, chunks=(chunk_rows, X.shape[1]), dtype="f8")
    store[:] = X
    store.attrs["feature_names"] = ["u", "v"]
    return path


def test_fit_of_a_zarr_store_runs_em_on_dask(tmp_path, capsys):
    from bayes_gmm.em_baseline import fit_em
    from bayes_gmm.sources import open_dask

    X = two_blobs()
    store = write_zarr(tmp_path / "data.zarr", X)
    out = tmp_path / "out"
    argv = ["fit", str(store), "--method", "em", "-k", "2", "--n-init", "2", "--init-sample-size", "800"]
    assert cli.main([*argv, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert_only_progress(captured.err)
    assert "random sample of 800 rows" in captured.err and "EM iteration 2" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["parameters.json", "summary.txt"]
    summary = (out / "summary.txt").read_text(encoding="utf-8")
    assert "3000 samples x 2 features" in summary and "mean u" in summary
    assert "Per-sample assignments were not written" in summary
    parameters = json.loads((out / "parameters.json").read_text(encoding="utf-8"))
    expected = fit_em(open_dask(store).array, 2, n_init=2, init_sample_size=800, random_seed=0)
    assert parameters["feature_names"] == ["u", "v"]
    np.testing.assert_allclose(parameters["means"], expected.means, rtol=1e-12)
    np.testing.assert_allclose(parameters["covariances"], expected.covariances, rtol=1e-12)
    assert parameters["log_likelihood"] == pytest.approx(summary_log_likelihood(summary), abs=1e-4)


def test_bayesian_fit_of_a_zarr_store_runs_on_a_coreset(tmp_path, capsys):
    import arviz as az

    store = write_zarr(tmp_path / "data.zarr", two_blobs())
    out = tmp_path / "out"
    argv = ["fit", str(store), "-k", "2", "--coreset-size", "400", "--draws", "200", "--tune", "200"]
    assert cli.main([*argv, "--chains", "2", "--quiet", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["posterior.nc", "summary.txt"]
    summary = (out / "summary.txt").read_text(encoding="utf-8")
    assert "lightweight coreset of 400 weighted points standing for the 3000 rows" in summary
    fit = az.from_netcdf(out / "posterior.nc")
    assert fit.attrs["coreset_size"] == 400 and fit.attrs["n_source"] == 3000
    assert list(fit.posterior["feature"].to_numpy()) == ["u", "v"] and "means[0, u]" in summary
    means = np.sort(fit.posterior["means"].mean(("chain", "draw")).to_numpy(), axis=0)
    np.testing.assert_allclose(means, [[0.0, -4.0], [6.0, 0.0]], atol=0.25)  # the two simulated centres


def test_fit_of_a_parquet_folder_writes_assignments_as_parquet(tmp_path, capsys):
    X = two_blobs(1200)
    folder = tmp_path / "table"
    folder.mkdir()
    table = pd.DataFrame({"id": [f"r{i}" for i in range(len(X))], "a": X[:, 0], "b": X[:, 1]})
    for i, rows in enumerate(np.array_split(np.arange(len(X)), 3)):
        table.iloc[rows].to_parquet(folder / f"part-{i}.parquet")
    out = tmp_path / "out"
    argv = ["fit", str(folder), "--method", "em", "-k", "2", "--n-init", "1", "--quiet", "--out", str(out)]
    assert cli.main([*argv, "--assignments"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["assignments.parquet", "parameters.json", "summary.txt"]
    assignments = pd.read_parquet(out / "assignments.parquet")
    assert list(assignments.columns) == [
        "a",
        "b",
        "component",
        "max_probability",
        "entropy",
        "p_component_0",
        "p_component_1",
    ]
    assignments = assignments.sort_values(["a", "b"]).reset_index(drop=True)
    csv_out = tmp_path / "csv_out"
    table.to_csv(tmp_path / "table.csv", index=False)
    csv_argv = ["fit", str(tmp_path / "table.csv"), "--method", "em", "-k", "2", "--n-init", "1", "--quiet"]
    assert cli.main([*csv_argv, "--no-plots", "--out", str(csv_out)]) == 0
    reference = pd.read_csv(csv_out / "assignments.csv").sort_values(["a", "b"]).reset_index(drop=True)
    proba = ["p_component_0", "p_component_1"]
    np.testing.assert_allclose(assignments[proba], reference[proba], atol=1e-9)  # the same fit as in memory
    np.testing.assert_allclose(assignments["entropy"], reference["entropy"], atol=1e-9)
    # a rerun without --assignments replaces the whole folder
    assert cli.main(argv) == 0
    assert sorted(p.name for p in out.iterdir()) == ["parameters.json", "summary.txt"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "nuts", "--assignments"], r"--assignments is for --method em on zarr/parquet input"),
        (["--method", "nuts", "--coreset-size", "0"], r"--coreset-size must be an integer >= 1; got 0"),
        (
            ["--coreset-size", "5000"],
            r"--coreset-size must be below the 3000 rows of .*; got 5000\. Use e\.g\.",
        ),
        (["--method", "em", "--columns", "u,w"], r"column\(s\) \['w'\] not in the zarr array"),
        (["--method", "em", "-k", "5000"], r"3000 rows is too few for 5000 components"),
        (["--method", "em", "--init-sample-size", "0"], r"--init-sample-size must be an integer >= 1"),
    ],
    ids=[
        "coreset-assignments",
        "coreset-size",
        "coreset-too-large",
        "missing-column",
        "too-many-k",
        "sample-size",
    ],
)
def test_zarr_input_errors(tmp_path, capsys, monkeypatch, extra, message):
    monkeypatch.setattr(cli, "fit_em", lambda *a, **k: pytest.fail("fitted before the input was rejected"))
    store = write_zarr(tmp_path / "data.zarr", two_blobs())
    out = tmp_path / "out"
    assert cli.main(["fit", str(store), *extra, "--quiet", "--out", str(out)]) == 2
    assert_one_error_line(capsys.readouterr().err, message)
    assert not out.exists()


def test_select_k_refuses_a_zarr_store(tmp_path, capsys):
    store = write_zarr(tmp_path / "data.zarr", two_blobs())
    assert cli.main(["select-k", str(store), "--quiet"]) == 2
    assert_one_error_line(capsys.readouterr().err, r"zarr store or parquet data, which only `bayes-gmm fit")


# -- CSV input: separators, decimal commas, columns used and left out ----------------------------------------

FAITHFUL = pd.read_csv(Path(cli.__file__).parent / "datasets" / "faithful.csv")


def em_fit_of(tmp_path, path: Path, *options: str) -> tuple[str, Path]:
    """`bayes-gmm fit PATH --method em` into tmp_path/out: (what it printed, the folder)."""
    out = tmp_path / "out"
    argv = ["fit", str(path), "--method", "em", "--no-plots", "--quiet", *options, "--out", str(out)]
    assert cli.main(argv) == 0
    return (out / "summary.txt").read_text(encoding="utf-8"), out


@pytest.mark.parametrize(
    ("to_csv", "shown"),
    [
        ({"sep": ";"}, "separator ';', detected"),
        ({"sep": "\t"}, "separator '\\t', detected"),
        ({"sep": "|"}, "separator '|', detected"),
        ({"sep": " "}, "separator whitespace, detected"),
        ({"sep": ";", "decimal": ","}, "separator ';', detected; decimal ','"),
    ],
    ids=["semicolon", "tab", "bar", "space", "decimal-comma"],
)
def test_csv_separator_is_detected(tmp_path, to_csv, shown):
    """Each file holds the bundled data: the fit is the published one (REFERENCE.md) whatever the format."""
    path = tmp_path / "data.csv"
    FAITHFUL.to_csv(path, index=False, **to_csv)
    options = ["--decimal", ","] if "decimal" in to_csv else []
    summary, out = em_fit_of(tmp_path, path, *options)
    assert summary_log_likelihood(summary) == pytest.approx(FAITHFUL_FULL_2_LOGLIK, abs=0.01)
    assert f"Data: {path} ({shown}), 272 rows; columns used: eruptions, waiting." in summary
    check_outputs(out, 272, ["eruptions", "waiting"], 2)


def test_csv_separator_option_forces_one(tmp_path, capsys):
    """A file whose cells hold commas: detection would split at them, --sep ';' does not."""
    path = tmp_path / "data.csv"
    text = "a;b;note\n" + "".join(f"{x:.3f};{y:.3f};x,y\n" for x, y in FAITHFUL.to_numpy())
    path.write_text(text, encoding="utf-8")
    summary, _ = em_fit_of(tmp_path, path, "--sep", ";")
    assert summary_log_likelihood(summary) == pytest.approx(FAITHFUL_FULL_2_LOGLIK, abs=0.05)
    assert "(separator ';', --sep), 272 rows; columns used: a, b." in summary
    assert "Left out: note (text such as 'x,y', not numbers)" in summary
    path.write_text(text.replace(";", "\t"), encoding="utf-8")
    assert em_fit_of(tmp_path, path, "--sep", "tab")[0].count("(separator '\\t', --sep)") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("velocity\n9.172\n9.35\n", ","),  # one column
        ("velocity\n9,172\n9,35\n", ","),  # one column of decimal commas: reading says --decimal ,
        ("a,b\n1.5,100.5,\n2.5,200.5,\n", ","),  # a trailing separator on each data line
        ('"a";"b"\n"1";1.5;2.5\n"2";3.5;4.5\n', ";"),  # R's row names: one field more than the header
        ("a;b\n1;2,5\n3;4,5\n", ";"),  # as many fields as the header beats one more (',')
        ("a;b\n1.5;2.5\n3.5;4.5\nTotal\n", ";"),  # none fits: the one splitting the header (reading refuses)
        ("# written by a logger\n\na,b\n1,2\n", ","),  # comment and blank lines
        ("a;b\n1,5;2,25\n3,75;4,5\n", ";"),  # decimal commas split alike only at ';'
        ('name;a\n"s,1";2\n"s,2";3\n', ";"),  # quoted commas
        ("a,b;c\n1,2;3\n4,5;6\n", ","),  # two separators split every line alike: the first in the list
        ("a\tb\tc\n1\t2\t3\n", "\t"),
        ("a  b\n1   2\n3 4\n", r"\s+"),  # runs of spaces
        ("a b,c\n1 2,3\n", ","),  # commas split alike and come first
        ("", ","),
    ],
)
def test_separator_detection(tmp_path, text, expected):
    from bayes_gmm._cli_input import detect_separator

    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    assert detect_separator(path) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("velocity\n9,172\n9,35\n", ";"),  # one column, never read at the decimal character
        ('a,b\n"1,5","2,5"\n"3,5","4,5"\n', ","),  # quoted decimal commas: ',' splits every line alike
        ("a,b\n1,5,2\n3,5,4\n", ";"),  # unquoted: ',' does not split alike, so it is no separator
        ("a;b\n1,5;2,25\n", ";"),
    ],
)
def test_separator_detection_with_decimal_commas(tmp_path, text, expected):
    from bayes_gmm._cli_input import detect_separator

    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    assert detect_separator(path, decimal=",") == expected


def fitted_columns(tmp_path, text: str, *options: str) -> tuple[pd.DataFrame, str]:
    """The data columns of assignments.csv of `bayes-gmm fit --method em -k 1` of `text`, and the summary."""
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    summary, out = em_fit_of(tmp_path, path, "-k", "1", "--n-init", "1", *options)
    assignments = pd.read_csv(out / "assignments.csv")
    return assignments.loc[:, : assignments.columns[assignments.columns.get_loc("component") - 1]], summary


FAITHFUL_LINES = [f"{e:g},{w:g}" for e, w in FAITHFUL.to_numpy()]


@pytest.mark.parametrize(
    ("header", "line", "note"),
    [
        ("eruptions,waiting", "{},", "a trailing separator on each data line, ignored"),
        ("eruptions,waiting", '"r{i}",{}', "the first field of each data line is a row name"),
        (
            '"eruptions" "waiting"',
            '"{i}" {}',
            "the first field of each data line is a row name",
        ),  # write.table
    ],
    ids=["trailing-separator", "row-names", "r-write-table"],
)
def test_one_field_more_on_each_data_line_is_read_as_what_it_is(tmp_path, header, line, note):
    """Before, pandas took the first field as the index: column a held b's values (and the fit was wrong)."""
    sep = " " if " " in header else ","
    text = (
        header
        + "\n"
        + "".join(line.format(v.replace(",", sep), i=i) + "\n" for i, v in enumerate(FAITHFUL_LINES))
    )
    table, summary = fitted_columns(tmp_path, text)
    pd.testing.assert_frame_equal(table, FAITHFUL, check_dtype=False)
    assert note in summary
    summary, _ = em_fit_of(tmp_path, tmp_path / "data.csv")
    assert summary_log_likelihood(summary) == pytest.approx(FAITHFUL_FULL_2_LOGLIK, abs=0.01)


def test_shifted_columns_of_the_review_are_not_shifted(tmp_path):
    table, _ = fitted_columns(tmp_path, "a,b\n1.5,100.5,\n2.5,200.5,\n3.5,300.5,\n")
    assert table.to_dict("list") == {"a": [1.5, 2.5, 3.5], "b": [100.5, 200.5, 300.5]}


def test_one_column_of_decimal_commas_with_the_decimal_option(tmp_path):
    text = "a\n1,5\n3,5\n5,25\n4\n"
    table, summary = fitted_columns(tmp_path, text, "--decimal", ",")
    assert table["a"].tolist() == [1.5, 3.5, 5.25, 4.0]
    assert "(separator ';', detected; decimal ',')" in summary


def test_quoted_decimal_commas_in_a_comma_separated_file(tmp_path):
    """sep = decimal = ',': refused before ("--decimal ',' is also the separator"); the quotes tell them apart."""
    path = tmp_path / "data.csv"
    FAITHFUL.to_csv(path, index=False, decimal=",")  # pandas quotes the cells holding the separator
    assert '"3,6",79' in path.read_text(encoding="utf-8").splitlines()[1]
    summary, out = em_fit_of(tmp_path, path, "--decimal", ",")
    assert summary_log_likelihood(summary) == pytest.approx(FAITHFUL_FULL_2_LOGLIK, abs=0.01)
    assert "(separator ',', detected; decimal ',')" in summary
    pd.testing.assert_frame_equal(pd.read_csv(out / "assignments.csv")[["eruptions", "waiting"]], FAITHFUL)


@pytest.mark.parametrize(
    ("to_csv", "options", "grouped"),
    [
        ({}, ["--thousands", ","], "{:,.1f}"),
        ({"sep": ";", "decimal": ","}, ["--decimal", ",", "--thousands", "."], "{:,.1f}"),
    ],
    ids=["comma-groups", "point-groups"],
)
def test_thousands_option_reads_grouped_digits(tmp_path, to_csv, options, grouped):
    text = [grouped.format(1000 * w) for w in FAITHFUL.waiting]
    if to_csv:
        text = [t.translate(str.maketrans(",.", ".,")) for t in text]
    path = tmp_path / "data.csv"
    FAITHFUL.assign(waiting=text).to_csv(path, index=False, **to_csv)
    summary, out = em_fit_of(tmp_path, path, *options)
    assert "272 rows; columns used: eruptions, waiting." in summary
    written = pd.read_csv(out / "assignments.csv")
    np.testing.assert_array_equal(written["waiting"], 1000 * FAITHFUL.waiting)
    np.testing.assert_array_equal(written["eruptions"], FAITHFUL.eruptions)


def test_columns_option_takes_a_quoted_name_holding_a_comma(tmp_path):
    path = tmp_path / "data.csv"
    FAITHFUL.rename(columns={"eruptions": "length, min"}).to_csv(path, index=False)
    summary, out = em_fit_of(tmp_path, path, "--columns", '"length, min", waiting')
    assert "columns used (--columns): length, min, waiting." in summary
    assert list(pd.read_csv(out / "assignments.csv").columns[:2]) == ["length, min", "waiting"]
    assert summary_log_likelihood(summary) == pytest.approx(FAITHFUL_FULL_2_LOGLIK, abs=0.01)
    assert "a name that holds a comma in double quotes" in " ".join(_fit_help().split())


def _fit_help() -> str:
    parser = cli.build_parser()
    action = next(a for a in parser._subparsers._group_actions if a.choices)
    return action.choices["fit"].format_help()


def test_row_numbering_marks_an_id_only_from_20_rows(tmp_path):
    """A small count column (0, 1, 2 in three rows) is data; the same numbering in 20 rows is an ID."""
    from argparse import Namespace

    from bayes_gmm._cli_input import MIN_ROWS_FOR_NUMBERING, load_columns

    assert MIN_ROWS_FOR_NUMBERING == 20
    rng = np.random.default_rng(0)
    for n, left_out in [(3, {}), (19, {}), (20, {"children": "an ID: the integers 0..19, one per row"})]:
        path = tmp_path / "data.csv"
        pd.DataFrame({"a": rng.normal(size=n), "children": rng.permutation(n)}).to_csv(path, index=False)
        args = Namespace(demo=False, csv=str(path), columns=None, sep=None, decimal=".", thousands=None)
        assert load_columns(args).left_out == left_out, n


def test_text_id_and_label_columns_are_left_out_and_named(tmp_path, capsys):
    """Default columns: the numeric measurements; a name, an index, an ID and a label column are not fitted."""
    rng = np.random.default_rng(1)
    table = FAITHFUL.assign(
        name=[f"eruption {i}" for i in range(272)],
        sample_id=rng.permutation(272) + 1000,  # an ID by its name
        number=rng.permutation(272),  # 0..271 in some order: numbers the rows
        cluster=rng.integers(0, 2, 272),  # a label by its name
        visitors=rng.integers(0, 4, 272),  # a count: few distinct integers, but data
        good=rng.integers(0, 2, 272) == 1,
        empty=np.nan,
    )
    path = tmp_path / "data.csv"
    table.to_csv(path, index=True)  # pandas' index: a header cell left empty
    capsys.readouterr()
    summary, out = em_fit_of(tmp_path, path)
    printed = capsys.readouterr().out
    assert "columns used: eruptions, waiting, visitors." in summary and "visitors." in printed
    left_out = re.search(r"Left out: (.*)\. Choose the columns with --columns\.", summary).group(1)
    assert left_out == (
        "Unnamed: 0 (no name in the header, as the index pandas' to_csv writes); "
        "name (text such as 'eruption 0', not numbers); "
        "sample_id (its name marks an ID or label, not a measurement); "
        "number (an ID: the integers 0..271, one per row); "
        "cluster (its name marks an ID or label, not a measurement); "
        "good (true/false values, not numbers); "
        "empty (no values)"
    )
    assert list(pd.read_csv(out / "assignments.csv").columns[:3]) == ["eruptions", "waiting", "visitors"]
    # --columns always wins: an ID column it names is fitted
    summary, _ = em_fit_of(tmp_path, path, "--columns", "eruptions,number")
    assert "columns used (--columns): eruptions, number." in summary and "Left out" not in summary


def test_a_typo_in_a_column_that_is_not_used_is_no_error(tmp_path):
    table = FAITHFUL.astype(object)
    table.loc[3, "waiting"] = "79x"
    path = tmp_path / "data.csv"
    table.to_csv(path, index=False)
    summary, _ = em_fit_of(tmp_path, path, "--columns", "eruptions", "-k", "2")
    assert "columns used (--columns): eruptions." in summary


def test_select_k_summary_lists_the_columns(tmp_path, monkeypatch, capsys):
    """select-k's text ends with the data note (its fits replaced: only the columns they get matter here)."""
    from types import SimpleNamespace

    path = tmp_path / "data.csv"
    FAITHFUL.assign(id=range(272)).to_csv(path, sep=";", index=False)
    seen = {}

    def recorded_select_k(table, ks, **options):
        seen["columns"] = list(table.columns)
        return SimpleNamespace(fits={}, table=pd.DataFrame({"n_components": ks}).set_index("n_components"))

    monkeypatch.setattr(cli, "select_k", recorded_select_k)
    monkeypatch.setattr(cli, "format_k_selection", lambda selection: "the table")
    out = tmp_path / "k"
    argv = ["select-k", str(path), "--components", "1,2", "--quiet", "--no-plots", "--out", str(out)]
    assert cli.main(argv) == 0
    assert seen["columns"] == ["eruptions", "waiting"]
    text = (out / "selection.txt").read_text(encoding="utf-8")
    assert text == (
        f"the table\n\nData: {path} (separator ';', detected), 272 rows; columns used: eruptions, waiting.\n"
        "  Left out: id (its name marks an ID or label, not a measurement). Choose the columns with --columns.\n"
    )
    assert capsys.readouterr().out.startswith(text)


def test_em_plots_label_the_axes_with_the_column_names(tmp_path, csv_file, monkeypatch):
    from bayes_gmm import plots

    path, _ = csv_file
    labels = {}
    save = plots.save_figure

    def recording_save(figure, target):
        axes = np.ravel(figure) if isinstance(figure, np.ndarray) else figure.axes  # a pair plot's axes
        labels[Path(target).name] = {ax.get_xlabel() for ax in axes} | {ax.get_ylabel() for ax in axes}
        save(figure, target)

    monkeypatch.setattr(plots, "save_figure", recording_save)
    argv = ["fit", str(path), "--method", "em", "--n-init", "1", "--quiet", "--out", str(tmp_path / "out")]
    assert cli.main([*argv, "--columns", "b,a"]) == 0
    assert set(labels) == {"density.png", "clusters.png", "membership.png"}
    for name, texts in labels.items():
        assert {"a", "b"} <= texts and not {"x0", "x1"} & texts, (name, texts)
    labels.clear()
    assert cli.main(argv) == 0  # three features (a, b, c): the pair plot too
    assert {"a", "b", "c"} <= labels["pairs.png"] and not {"x0", "x1", "x2"} & labels["pairs.png"]


def test_bayesian_summary_lists_the_correlations(tmp_path):
    """Posterior means of each draw's correlations, against numpy's correlation of draws made here."""
    from bayes_gmm._report import format_bayes_summary
    from bayes_gmm.inference._arviz import parameter_summary
    from conftest import fake_fit

    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 3))
    fit = fake_fit([0.5, 0.5], np.zeros((2, 3)), np.stack([np.eye(3)] * 2), X, draws=5, feature_names="uvw")
    draws = (
        rng.normal(size=(2, 5, 2, 3, 8)) * np.array([1.0, 2.0, 0.5])[:, None]
    )  # 8 points per covariance draw
    draws -= draws.mean(axis=-1, keepdims=True)
    covariances = np.einsum("cdkfi,cdkgi->cdkfg", draws, draws) / 7  # the sample covariances
    dims = fit.posterior["covariances"].dims
    fit["posterior"] = fit.posterior.to_dataset().assign(covariances=(dims, covariances))
    fit.attrs.update(
        method="nuts",
        backend="nutpie",
        n_components=2,
        covariance_type="full",
        sampling_time_s=1.0,
        rhat_max=1.0,
        ess_bulk_min=900.0,
        ess_tail_min=900.0,
        n_divergences=0,
        relabelled_fraction=0.0,
    )
    text = format_bayes_summary(fit, parameter_summary(fit, ["weights"]), membership_probabilities(fit))
    block = text.split("  correlations (within component, posterior means):\n")[1].splitlines()[:2]
    for k, line in enumerate(block):
        expected = np.mean([np.corrcoef(draws[c, d, k]) for c in range(2) for d in range(5)], axis=0)
        pairs = ", ".join(
            f"{a}~{b} {expected[i, j]:+.3f}"
            for i, j, a, b in [(0, 1, "u", "v"), (0, 2, "u", "w"), (1, 2, "v", "w")]
        )
        assert line == f"  {k:>9}  {pairs}"
    fit.attrs["covariance_type"] = "diag"  # no correlations in the model: none listed
    text = format_bayes_summary(fit, parameter_summary(fit, ["weights"]), membership_probabilities(fit))
    assert "correlations" not in text


# -- the output folder: refused before fitting, hidden folders of killed runs, files before the summary ------


@pytest.fixture
def no_fit(monkeypatch):
    monkeypatch.setattr(cli, "fit_em", lambda *a, **k: pytest.fail("fitted before --out was refused"))


def test_out_on_a_mount_point_is_refused_before_fitting(tmp_path, monkeypatch, capsys, no_fit):
    out = tmp_path / "mnt"
    out.mkdir()
    real_ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == out or real_ismount(p))
    assert cli.main([*EM_RUN, "--out", str(out)]) == 2
    assert_one_error_line(
        capsys.readouterr().err,
        rf"--out {re.escape(str(out))} is a mount point, which a run cannot replace .*; give a folder inside "
        rf"it, e\.g\. --out {re.escape(str(out / 'results'))}$",
    )
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("protected", [".", "plots"])
def test_write_protected_results_are_refused_not_replaced(tmp_path, capsys, monkeypatch, protected):
    """Refused by its permission bits even for root (whom they do not stop): the earlier results stay."""
    out = tmp_path / "out"
    assert cli.main([*EM_RUN, "--out", str(out)]) == 0
    os.chmod(out / protected, 0o555)
    try:
        before = snapshot(out)
        capsys.readouterr()
        monkeypatch.setattr(cli, "fit_em", lambda *a, **k: pytest.fail("fitted before --out was refused"))
        assert cli.main([*EM_RUN, "--out", str(out)]) == 2
        assert_one_error_line(
            capsys.readouterr().err,
            rf"--out {re.escape(str(out))} is write-protected \({re.escape(str(out / protected).rstrip('/.'))}"
            rf"/?\.? may not be changed\), .*chmod -R u\+w",
        )
        assert snapshot(out) == before and stat.S_IMODE((out / protected).stat().st_mode) == 0o555
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    finally:
        os.chmod(out / protected, 0o755)


def test_out_in_a_read_only_folder_is_refused_before_fitting(tmp_path, monkeypatch, capsys, no_fit):
    """chmod alone does not stop root (as CI and containers often run): the permission test is faked."""
    parent = tmp_path / "readonly"
    parent.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != parent and real_access(p, mode))
    assert cli.main([*EM_RUN, "--out", str(parent / "new" / "out")]) == 2
    assert_one_error_line(
        capsys.readouterr().err, rf"cannot write in {re.escape(str(parent))} \(permission denied\)"
    )
    assert list(parent.iterdir()) == []


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def stage_of(tmp_path: Path, pid: int, letters: str, *, old: str | None = None) -> Path:
    """A staging folder of a run into tmp_path/out, as replace_directory makes it (not locked)."""
    from bayes_gmm._io import LOCK_NAME, OLD_NAME, _host_tag

    folder = tmp_path / f".out.partial-{_host_tag()}-{pid}-{letters}"
    (folder / "results").mkdir(parents=True)
    (folder / "results" / "summary.txt").write_text("unfinished", encoding="utf-8")
    (folder / LOCK_NAME).touch()
    if old is not None:
        (folder / OLD_NAME).mkdir()
        (folder / OLD_NAME / "summary.txt").write_text(old, encoding="utf-8")
    return folder


@contextlib.contextmanager
def locked(folder: Path):
    """Hold the staging folder's lock as its run does: an open file description of its own, so that the
    cleaner's (another one, even in this process) cannot take it."""
    import fcntl

    from bayes_gmm._io import LOCK_NAME

    with open(folder / LOCK_NAME, "rb") as file:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield


@pytest.mark.skipif(os.name != "posix", reason="flock: elsewhere no writer is judged gone")
def test_hidden_folders_of_killed_runs_are_cleaned_and_a_running_ones_kept(tmp_path):
    from bayes_gmm._cli_output import OutputFolder

    out = tmp_path / "out"
    dead = dead_pid()
    killed = stage_of(tmp_path, dead, "abc123")
    killed_swap = stage_of(tmp_path, dead, "def456", old="earlier results")
    # The bug: a running run in another PID namespace (a container on this host) has a PID that
    # os.kill(pid, 0) cannot find; its lock is what tells it runs.
    running = stage_of(tmp_path, dead, "ghi789")
    # And this process's own PID does not keep a folder whose lock no one holds.
    unlocked = stage_of(tmp_path, os.getpid(), "jkl012")
    other_host = tmp_path / f".out.partial-0badc0de-{dead}-mno345"
    other_out = tmp_path / ".out2.partial-{}-{}-pqr678".format(killed.name.split("-")[1], dead)
    for folder in (other_host, other_out):
        folder.mkdir()
    with locked(running):
        OutputFolder(str(out))
        # out was missing: the results a killed swap had moved aside are back in place
        assert (out / "summary.txt").read_text(encoding="utf-8") == "earlier results"
        kept = {running.name, other_host.name, other_out.name}
        assert {p.name for p in tmp_path.iterdir()} == kept | {"out"}
        assert not killed.exists() and not killed_swap.exists() and not unlocked.exists()
        # a run into the same --out while the other still runs: its own folder is gone afterwards
        stage_of(tmp_path, dead, "stu901")
        assert cli.main([*EM_RUN, "--no-plots", "--out", str(out)]) == 0
        assert {p.name for p in tmp_path.iterdir()} == kept | {"out"}
        assert (out / "summary.txt").read_text(encoding="utf-8").startswith("Gaussian mixture by EM")
    OutputFolder(str(out))  # the lock released: that run has gone
    assert {p.name for p in tmp_path.iterdir()} == {other_host.name, other_out.name, "out"}


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_a_stage_locked_by_another_process_is_kept(tmp_path):
    """A real second process holding the lock (as a run in another container would)."""
    running = stage_of(tmp_path, dead_pid(), "abc123")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys\nf = open(sys.argv[1], 'rb')\nfcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\nsys.stdin.read()",
            str(running / "lock"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    from bayes_gmm._io import remove_stale_stages

    try:
        assert holder.stdout.readline() == "locked\n"
        assert remove_stale_stages(tmp_path / "out") == [] and running.is_dir()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert remove_stale_stages(tmp_path / "out") == [running] and not running.exists()


def test_a_run_whose_stage_was_removed_fails_loudly_and_swaps_nothing(tmp_path):
    """Before, atomic_path made the removed folder again and the run swapped in what it wrote after."""
    from bayes_gmm._io import atomic_path, replace_directory, write_text_atomic

    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.txt").write_text("earlier", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="staging folder of this run was removed"):
        with replace_directory(out) as folder:
            write_text_atomic(folder / "summary.txt", "new")
            shutil.rmtree(folder.parent)  # a cleaner that judged this run dead
            with atomic_path(folder / "plots" / "density.png") as tmp:
                tmp.write_bytes(b"png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (out / "summary.txt").read_text(encoding="utf-8") == "earlier"


def test_a_stage_replaced_under_a_run_is_not_swapped_in(tmp_path):
    from bayes_gmm._io import replace_directory, write_text_atomic

    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="removed or replaced by another process before the swap"):
        with replace_directory(out) as folder:
            write_text_atomic(folder / "summary.txt", "new")
            shutil.rmtree(folder.parent)
            folder.mkdir(parents=True)  # the same names, other folders
            (folder.parent / "lock").touch()
            (folder / "summary.txt").write_text("someone else's", encoding="utf-8")
    assert not out.exists()


MOUNTINFO = (
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "36 22 8:1 /srv/data /home/me/my\\040results rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    "37 22 0:31 / /tmp/tab\\011and\\134slash rw - tmpfs tmpfs rw\n"
)


def test_mountinfo_parser():
    from bayes_gmm._io import mount_points

    assert mount_points(MOUNTINFO) == {"/", "/home/me/my results", "/tmp/tab\tand\\slash"}


def test_out_on_a_bind_mount_is_refused(tmp_path, monkeypatch):
    """A bind mount within one file system: os.path.ismount says no; the kernel's mount list says yes."""
    from bayes_gmm import _io
    from bayes_gmm._cli_output import OutputFolder

    out = tmp_path / "my results"
    out.mkdir()
    line = f"40 22 8:1 /srv {str(out).replace(' ', chr(92) + '040')} rw - ext4 /dev/sda1 rw\n"
    real_open = open

    def fake_open(file, *args, **kwargs):
        if file == "/proc/self/mountinfo":
            return io.StringIO(MOUNTINFO + line)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(_io, "open", fake_open, raising=False)
    assert not os.path.ismount(out) and _io.is_mount_point(out)
    with pytest.raises(cli.CLIError, match="is a mount point, which a run cannot replace"):
        OutputFolder(str(out))


BIND_MOUNTED = """
import sys
from bayes_gmm._cli_output import CLIError, OutputFolder
try:
    OutputFolder(sys.argv[1])
except CLIError as exc:
    print(exc)
"""


def _can_bind_mount() -> str | None:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return "needs Linux and unshare"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return (
        None if probe.returncode == 0 else "unshare -m is not permitted here (needs root or user namespaces)"
    )


@pytest.mark.skipif(_can_bind_mount() is not None, reason=str(_can_bind_mount()))
def test_out_on_a_real_bind_mount_is_refused(tmp_path):
    """A real bind mount in a mount namespace of its own (unshare -m: the host does not see it)."""
    out = tmp_path / "my out"
    out.mkdir()
    script = 'mount --bind "$1" "$1" && exec "$2" -c "$3" "$1"'
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(out), sys.executable, BIND_MOUNTED],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "mount" in done.stderr and done.returncode != 0:
        pytest.skip(f"mount --bind is not permitted here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert f"--out {out} is a mount point" in done.stdout
    assert not os.path.ismount(out)  # here, outside that namespace, it is a plain folder


STALLED_WHILE_WRITING = """
import sys, time
from bayes_gmm import cli

def stalled_write(path, frame):
    print("writing", flush=True)
    time.sleep(60)

cli.write_csv = stalled_write
sys.exit(cli.main(["fit", "--demo", "--method", "em", "--n-init", "1", "-q", "--out", sys.argv[1]]))
"""


def test_sigkill_while_writing_leaves_a_folder_the_next_run_cleans(tmp_path):
    """A real process killed by SIGKILL while it writes (about 8 s here, most of it importing the package)."""
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", STALLED_WHILE_WRITING, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline() == "writing\n"
        hidden = [p.name for p in tmp_path.iterdir()]
        assert len(hidden) == 1 and hidden[0].startswith(".out.partial-") and f"-{proc.pid}-" in hidden[0]
        proc.kill()
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert cli.main([*EM_RUN, "--no-plots", "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


class ClosedStdout:
    """sys.stdout after the reader of the pipe went away (``bayes-gmm ... | head -1``)."""

    def __init__(self, error=BrokenPipeError):
        self.error = error

    def write(self, text):
        raise self.error(32, "Broken pipe") if self.error is BrokenPipeError else self.error()

    def flush(self):
        pass


def test_files_are_written_before_the_summary_so_a_closed_pipe_loses_nothing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "stdout", ClosedStdout())
    assert cli.main([*EM_RUN, "--no-plots", "--out", str(out)]) == cli.EXIT_BROKEN_PIPE == 141
    assert capsys.readouterr().err == ""  # quiet: no error line, no traceback
    check_outputs(out, 272, ["eruptions", "waiting"], 2)


def test_ctrl_c_while_printing_keeps_the_written_results(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "stdout", ClosedStdout(KeyboardInterrupt))
    assert cli.main([*EM_RUN, "--no-plots", "--out", str(out)]) == cli.EXIT_INTERRUPTED
    assert_one_error_line(
        capsys.readouterr().err,
        rf"while printing; the results are in {re.escape(str(out))}$",
        prefix="bayes-gmm: interrupted",
    )
    check_outputs(out, 272, ["eruptions", "waiting"], 2)


class SignalOnWrite(io.StringIO):
    """sys.stdout that receives `signum` as the summary starts to be printed."""

    def __init__(self, signum):
        super().__init__()
        self.signum = signum

    def write(self, text):
        if self.signum is not None:
            signum, self.signum = self.signum, None
            signal.raise_signal(signum)
        return super().write(text)


STOPPED = {
    signal.SIGINT: (cli.EXIT_INTERRUPTED, "interrupted"),
    signal.SIGTERM: (143, "terminated (SIGTERM)"),
}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_printing_keeps_the_results_and_says_which_signal(
    tmp_path, monkeypatch, capsys, signum
):
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "stdout", SignalOnWrite(signum))
    status, stopped = STOPPED[signum]
    assert cli.main([*EM_RUN, "--no-plots", "--out", str(out)]) == status
    assert_one_error_line(
        capsys.readouterr().err,
        rf" while printing; the results are in {re.escape(str(out))}$",
        f"bayes-gmm: {stopped}",
    )
    check_outputs(out, 272, ["eruptions", "waiting"], 2)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_swap_is_reported_once_the_results_are_in(tmp_path, monkeypatch, capsys, signum):
    """The swap's renames are not interrupted; the signal is then reported, not dropped (exit 0)."""
    from bayes_gmm import _io

    real_swap = _io._Stage.swap_into

    def swap_into(self, path):
        signal.raise_signal(signum)
        return real_swap(self, path)

    monkeypatch.setattr(_io._Stage, "swap_into", swap_into)
    out = tmp_path / "out"
    status, stopped = STOPPED[signum]
    assert cli.main([*EM_RUN, "--no-plots", "--out", str(out)]) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_error_line(
        captured.err,
        rf"{re.escape(stopped)}; the results are in {re.escape(str(out))}$",
        f"bayes-gmm: {stopped}",
    )
    check_outputs(out, 272, ["eruptions", "waiting"], 2)


def test_broken_pipe_subprocess(tmp_path):
    """A real closed pipe: the reader closes it before the command prints (what `| true` does; about 8 s
    here, most of it importing the package)."""
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "bayes_gmm.cli", "fit", "--demo", "--method", "em", "--n-init", "1"]
    proc = subprocess.Popen(
        [*argv, "--no-plots", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == cli.EXIT_BROKEN_PIPE, stderr
    assert_only_progress(stderr)  # no "Exception ignored", no traceback
    check_outputs(out, 272, ["eruptions", "waiting"], 2)


class Panic(BaseException):
    """What pyo3 raises for a Rust panic (nutpie's sampler): a BaseException."""


def test_a_panic_in_a_library_is_one_line_not_a_traceback(monkeypatch, capsys):
    def panicking_fit_em(*args, **kwargs):
        raise Panic("assertion failed: early_end < num_tune")

    monkeypatch.setattr(cli, "fit_em", panicking_fit_em)
    assert cli.main(EM_RUN) == 2
    assert_one_error_line(
        capsys.readouterr().err,
        r"\(Panic: assertion failed: early_end < num_tune\)",
        "bayes-gmm: internal error",
    )


@pytest.mark.parametrize(
    ("status", "returncode"), [(130, -signal.SIGINT), (143, -signal.SIGTERM), (2, 2), (0, 0)]
)
def test_the_console_script_ends_by_the_signal_that_stopped_the_run(status, returncode):
    """The console script (what the shell sees), not main(): a shell loop stops only on death by SIGINT."""
    code = (
        "import sys; from bayes_gmm import cli, _cli_entry; "
        f"cli.main = lambda argv: print('cleaned up', flush=True) or {status}; "
        "sys.exit(_cli_entry.main(['fit', '--method', 'em']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (returncode, "cleaned up\n"), result.stderr
