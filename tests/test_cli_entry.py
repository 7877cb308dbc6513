"""The console script starts the model kernel's compile before the command's heavy imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from bayes_gmm._cli_entry import nutpie_covariance_types


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["fit", "--demo", "--out", "x"], ["full"]),  # NUTS on nutpie and "full" by default
        (["fit", "data.csv", "--covariance", "diag"], ["diag"]),
        (["select-k", "--demo", "--covariance=full,EII"], ["full", "EII"]),
        (["fit", "--demo", "--backend", "nutpie", "--covariance", "VVV"], ["VVV"]),
        (["fit", "--demo", "--method", "em"], []),
        (["fit", "--demo", "--method=advi"], ["full"]),  # ADVI runs on the same kernel by default
        (
            ["fit", "--demo", "--method", "fullrank_advi", "--backend", "kernel", "--covariance", "EEI"],
            ["EEI"],
        ),
        (["fit", "--demo", "--method", "advi", "--backend", "pymc"], []),
        (["select-k", "--demo", "--covariance", "diag, full"], ["diag", "full"]),
        (["fit", "--demo", "--backend", "pymc"], []),
        (["fit", "--help"], []),
        ([], []),
        (["--version"], []),
    ],
)
def test_the_command_line_says_which_kernels_to_compile(argv, expected):
    assert nutpie_covariance_types(argv) == expected


@pytest.mark.parametrize("abbreviated", [["--cov", "diag"], ["--meth", "em"], ["--back", "pymc"]])
def test_the_command_takes_no_abbreviated_options(abbreviated, capsys):
    # the entry reads the options by their full names, so the parser must not take a prefix of one
    from bayes_gmm import cli

    with pytest.raises(SystemExit) as stopped:
        cli.build_parser().parse_args(["fit", "--demo", *abbreviated])
    assert stopped.value.code == 2
    assert f"unrecognized arguments: {abbreviated[0]}" in capsys.readouterr().err


def test_the_compile_starts_before_the_command_imports_pymc_and_arviz():
    code = textwrap.dedent(
        """
        import sys, types
        from bayes_gmm.models import _model_kernel as mk

        heavy = ("pymc", "arviz", "matplotlib")
        started = []
        mk.start_compiling = lambda names: started.append([list(names), *(m in sys.modules for m in heavy)])
        cli = types.ModuleType("bayes_gmm.cli")  # the command itself, imported by the entry after the start
        cli.main = lambda argv: print(started, argv) or 0
        sys.modules["bayes_gmm.cli"] = cli
        from bayes_gmm import _cli_entry
        sys.exit(_cli_entry.main(["fit", "--demo", "--covariance", "tied"]))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip() == "[[['tied'], False, False, False]] ['fit', '--demo', '--covariance', 'tied']"
    )


def test_the_console_script_runs_the_command():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from bayes_gmm._cli_entry import main; sys.exit(main())",
            "fit",
            "--method",
            "em",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and result.stderr.startswith("bayes-gmm: error:")  # no data given
