"""The ``bayes-gmm`` command: a thin front end over the public API.

bayes-gmm fit --demo --out results/            # Bayesian (NUTS) fit of the bundled Old Faithful data, plots
bayes-gmm fit data.csv --columns a,b -k 3 --covariance tied --method advi --out results/
bayes-gmm fit data.csv --method em             # maximum likelihood only, in a second
bayes-gmm fit big.zarr --method em -k 3        # a zarr store or parquet folder: EM on Dask, out of core
bayes-gmm select-k --demo --components 1,2,3,4 --out k_choice/

A run's results appear in --out together or not at all: they are written to a hidden folder beside it,
which replaces --out as a whole at the end (so --out never mixes two runs). Errors are one line on stderr
and exit status 2. An interrupted run writes nothing (or, stopped once its results are in, keeps them)
and then ends by the signal, so that a shell sees 130 for Ctrl-C (SIGINT) and 143 for ``kill`` (SIGTERM,
handled as Ctrl-C) and stops a loop; :func:`main` returns those statuses (the console script ends by
:func:`bayes_gmm._interrupt.exit_by_signal`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import traceback
import warnings
from pathlib import Path

import pandas as pd

# PyTensor warns on import when it finds no BLAS to link; the compiled likelihood does not use it, and a
# command-line user can do nothing about it, so the command does not repeat it on every run.
warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS", category=UserWarning)

from bayes_gmm._cli_input import (
    add_data_options,
    bayesian_options,
    check_options,
    load_columns,
    open_large,
    parse_components,
)
from bayes_gmm._cli_output import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    CLIError,
    OutputFolder,
    assignments_table,
    parameters_json,
    write_assignments_parquet,
    write_csv,
)
from bayes_gmm._interrupt import INTERRUPT, exit_by_signal
from bayes_gmm._io import atomic_path, write_text_atomic
from bayes_gmm._report import (
    format_bayes_summary,
    format_em_comparison,
    format_em_summary,
    format_k_selection,
)
from bayes_gmm._validation import check_data, check_fit_data, check_n_components
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import (
    METHODS,
    compare_with_em,
    fit_coreset_gmm,
    fit_gmm,
    membership_probabilities,
    prepare_nutpie,
    select_k,
)
from bayes_gmm.inference._arviz import has_group, loo, parameter_summary, set_group, to_netcdf
from bayes_gmm.inference._coreset import DEFAULT_CORESET_SIZE
from bayes_gmm.models._covariance_priors import check_bayesian_covariance_type
from bayes_gmm.sources import source_kind

__all__ = ["EXIT_INTERRUPTED", "EXIT_TERMINATED", "TRACEBACK_ENV", "CLIError", "build_parser", "main"]

#: Exit status of a run stopped by SIGTERM (``kill``), as shells report 128 + the signal number.
EXIT_TERMINATED = 128 + signal.SIGTERM

#: Set BAYES_GMM_TRACEBACK=1 to see the traceback behind an unexpected error.
TRACEBACK_ENV = "BAYES_GMM_TRACEBACK"


def _check_bayesian_data(table: pd.DataFrame, n_components: int, covariance_type: str) -> None:
    """fit_gmm's data checks, up front (before EM): its warnings come later, from fit_gmm itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_bayesian_covariance_type(covariance_type)
        check_fit_data(table, n_components, covariance_type)


def _check_complete(fit, args) -> None:
    """An interrupted sampler returns fewer chains or draws than asked for: never report those."""
    INTERRUPT.check()
    if fit.attrs.get("method") != "nuts":
        return
    chains, draws = fit.posterior.sizes["chain"], fit.posterior.sizes["draw"]
    if (chains, draws) != (args.chains, args.draws):
        raise CLIError(
            f"sampling stopped early: {chains} chains x {draws} draws of the {args.chains} x {args.draws} asked "
            f"for; nothing was written. Run it again"
        )


def _cmd_fit(args) -> int:
    check_options(args)
    if len(args.covariance) > 1:
        raise CLIError(
            f"fit takes one --covariance type; got {','.join(args.covariance)}. Compare several with "
            f"select-k --covariance {','.join(args.covariance)}"
        )
    args.covariance = args.covariance[0]
    if args.method == "nuts":
        # compiled aside, the first time, while the data are read and EM runs
        prepare_nutpie(args.backend, args.covariance)
    if args.csv is not None and source_kind(args.csv) is not None:
        return _cmd_fit_large(args)
    data = load_columns(args)
    table = data.table
    if len(table) < args.components:
        raise CLIError(f"{len(table)} rows is too few for {args.components} components")
    check_data(table, min_samples=check_n_components(args.components))  # fail before any progress output
    if args.method != "em":
        _check_bayesian_data(table, args.components, args.covariance)
    out = OutputFolder(args.out) if args.out else None  # checked before the fit, not after
    say = _reporter(args.quiet)
    say(f"EM fit ({args.n_init} restarts) ...")
    em = fit_em(
        table,
        args.components,
        covariance_type=args.covariance,
        init=args.init,
        n_init=args.n_init,
        random_seed=args.seed,
    )
    if args.method == "em":
        fit, summary = em, format_em_summary(em, feature_names=table.columns)
        membership = membership_probabilities(em, table)
    else:
        say(f"{args.method} fit ...")
        fit = fit_gmm(
            table,
            args.components,
            covariance_type=args.covariance,
            em=em,
            random_seed=args.seed,
            **bayesian_options(args),
        )
        _check_complete(fit, args)
        membership = membership_probabilities(fit)
        comparison = compare_with_em(fit, em)
        summary = "\n\n".join(
            [
                format_bayes_summary(
                    fit, parameter_summary(fit, ["weights", "means"]), membership, loo=_loo_or_none(fit)
                ),
                format_em_comparison(comparison),
            ]
        )
    summary += "\n\n" + data.note()
    INTERRUPT.check()
    paths = []  # the summary is printed after the files are written
    if out is not None:

        def write_files(folder: Path) -> list[str]:
            written = ["summary.txt", "assignments.csv"]
            write_text_atomic(folder / "summary.txt", summary + "\n")
            write_csv(folder / "assignments.csv", assignments_table(table, membership))
            if args.method != "em":
                written += ["posterior.nc", "compare_em.csv"]
                set_group(fit, "membership", membership)
                with atomic_path(folder / "posterior.nc") as tmp:
                    to_netcdf(fit, tmp)
                write_csv(folder / "compare_em.csv", comparison)
            if not args.no_plots:
                say("plots ...")
                plots = _write_fit_plots(folder / "plots", fit, table, em, args.seed)
                written += [str(p.relative_to(folder)) for p in plots]
            return written

        paths = out.write(write_files)
    return _print_summary(summary, out, paths)


def _cmd_fit_large(args) -> int:
    """`fit` of a zarr store or parquet folder, never loading the data whole: EM on Dask, or NUTS/ADVI on a
    weighted coreset drawn in two passes."""
    data = open_large(args)
    out = OutputFolder(args.out) if args.out else None
    say = _reporter(args.quiet)
    source = (
        f"Read through Dask from the {data.kind} data {args.csv} ({data.shape[0]} rows; columns used: "
        f"{', '.join(data.feature_names)}); no plots are drawn."
    )
    if args.method != "em":
        return _fit_coreset(args, data, out, say, source)
    em = fit_em(
        data.array,
        args.components,
        covariance_type=args.covariance,
        init=args.init,
        n_init=args.n_init,
        random_seed=args.seed,
        init_sample_size=args.init_sample_size,
        progress=say,
    )
    notes = [
        source,
        "assignments.parquet: one row per sample (parquet files, written through Dask)."
        if args.assignments
        else "Per-sample assignments were not written (one row per sample); --assignments writes them as "
        "parquet files.",
    ]
    summary = format_em_summary(em, feature_names=data.feature_names) + "\n\n" + "\n".join(notes)
    INTERRUPT.check()
    paths = []  # the summary is printed after the files are written
    if out is not None:

        def write_files(folder: Path) -> list[str]:
            write_text_atomic(folder / "summary.txt", summary + "\n")
            write_text_atomic(folder / "parameters.json", parameters_json(em, data.feature_names))
            if not args.assignments:
                return ["summary.txt", "parameters.json"]
            say("assignments: one pass over the data ...")
            write_assignments_parquet(folder / "assignments.parquet", data.array, data.feature_names, em)
            return ["summary.txt", "parameters.json", "assignments.parquet"]

        paths = out.write(write_files)
    return _print_summary(summary, out, paths)


def _fit_coreset(args, data, out, say, source: str) -> int:
    say(
        f"coreset of {args.coreset_size} points: two passes over the data, then a weighted {args.method} fit ..."
    )
    fit = fit_coreset_gmm(
        data.array,
        args.components,
        coreset_size=args.coreset_size,
        feature_names=data.feature_names,
        em_init=args.init,
        em_n_init=args.n_init,
        covariance_type=args.covariance,
        random_seed=args.seed,
        **bayesian_options(args),
    )
    _check_complete(fit, args)
    note = (
        f"{source}\nThe fit is of a lightweight coreset of {fit.attrs['coreset_size']} weighted points standing "
        f"for the {fit.attrs['n_source']} rows (bayes_gmm.inference.fit_coreset_gmm); the assignment line above "
        "counts coreset points. No WAIC/LOO (use bayes_gmm.inference.loo_subsampled)."
    )
    membership = membership_probabilities(fit)
    parameters = parameter_summary(fit, ["weights", "means"])
    summary = format_bayes_summary(fit, parameters, membership) + "\n\n" + note
    INTERRUPT.check()
    paths = []  # the summary is printed after the files are written
    if out is not None:

        def write_files(folder: Path) -> list[str]:
            write_text_atomic(folder / "summary.txt", summary + "\n")
            with atomic_path(folder / "posterior.nc") as tmp:
                to_netcdf(fit, tmp)
            return ["summary.txt", "posterior.nc"]

        paths = out.write(write_files)
    return _print_summary(summary, out, paths)


def _cmd_select_k(args) -> int:
    check_options(args)
    data = load_columns(args)
    table = data.table
    ks = parse_components(args.components)
    if ks and len(table) < max(ks):
        raise CLIError(f"{len(table)} rows is too few for {max(ks)} components")
    check_data(table)
    if ks and min(ks) >= 1:
        for name in args.covariance:  # the largest k needs the most data
            _check_bayesian_data(table, max(ks), name)
    out = OutputFolder(args.out) if args.out else None
    say = _reporter(args.quiet)
    selection = select_k(
        table,
        ks,
        covariance_type=args.covariance,
        em_n_init=args.n_init,
        em_init=args.init,
        random_seed=args.seed,
        progress=say,
        include_unconverged=args.include_unconverged,
        **bayesian_options(args),
    )
    for fit in selection.fits.values():
        _check_complete(fit, args)
    text = format_k_selection(selection) + "\n\n" + data.note()
    paths = []  # the summary is printed after the files are written
    if out is not None:

        def write_files(folder: Path) -> list[str]:
            write_text_atomic(folder / "selection.txt", text + "\n")
            write_csv(folder / "selection.csv", selection.table.reset_index())
            written = ["selection.txt", "selection.csv"]
            if not args.no_plots:
                from bayes_gmm import plots

                plots.save_figure(plots.plot_k_selection(selection), folder / "k_selection.png")
                written.append("k_selection.png")
            return written

        paths = out.write(write_files)
    return _print_summary(text, out, paths)


def _print_summary(summary: str, out: OutputFolder | None, paths: list[Path]) -> int:
    """Print the summary once the files are written (in `paths`): a closed stdout loses no results.

    Output to a closed pipe (``bayes-gmm fit ... | head -1``) ends the command quietly with status 141, as a
    shell reports a process stopped by SIGPIPE; a Ctrl-C or SIGTERM while printing (or during the swap, which
    it does not stop) does not undo what was written, and is reported as such.
    """
    printing = False
    try:
        INTERRUPT.check()  # a signal during the swap, which it does not stop: the results are in
        printing = True
        print(summary)
        if paths:
            print("\nwrote " + ", ".join(str(p) for p in paths))
        sys.stdout.flush()
    except BrokenPipeError:
        # The Python docs' recipe: stdout is closed, so point it at devnull, or the flush at exit fails again.
        with contextlib.suppress(OSError, ValueError, AttributeError):  # a stdout without a file (tests)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        if not paths:
            raise
        stopped, status = _stopped_by()
        when = " while printing" if printing else ""
        print(f"bayes-gmm: {stopped}{when}; the results are in {out.shown}", file=sys.stderr)
        return status
    return 0


def _loo_or_none(idata):
    return loo(idata) if has_group(idata, "log_likelihood") else None


def _write_fit_plots(directory: Path, fit, table: pd.DataFrame, em, seed: int) -> list[Path]:
    from bayes_gmm import plots

    X = table.to_numpy(dtype=float)
    bayesian = fit is not em
    figures = {}
    if X.shape[1] <= 2:
        figures["density.png"] = plots.plot_density(fit, X).figure
    if X.shape[1] >= 2:
        figures["clusters.png"] = plots.plot_clusters(
            fit, X, em=em if bayesian else None, random_seed=seed
        ).figure
        figures["membership.png"] = plots.plot_membership_uncertainty(fit, X).figure
    if X.shape[1] > 2:
        # A pair plot stays readable up to 6 features; beyond that the first 6 are shown.
        figures["pairs.png"] = plots.plot_pairs(fit, X, features=list(range(min(X.shape[1], 6))))
    if bayesian:
        figures["trace.png"] = plots.plot_trace(fit, ["weights", "means"])
    written = []
    for name, figure in figures.items():
        plots.save_figure(figure, directory / name)
        written.append(directory / name)
    return written


def _reporter(quiet: bool):
    if quiet:  # PyMC's own progress lines ("Initializing NUTS ...", "Sampling ...") too
        logging.getLogger("pymc").setLevel(logging.WARNING)

    def say(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    return say


def build_parser() -> argparse.ArgumentParser:
    # No abbreviated options (--cov for --covariance): the console script reads the options that decide
    # which model kernel to compile before this parser runs (bayes_gmm._cli_entry), by their full names.
    parser = argparse.ArgumentParser(
        prog="bayes-gmm", description="Gaussian mixture models, the Bayesian way.", allow_abbrev=False
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser(
        "fit",
        allow_abbrev=False,
        help="fit a Gaussian mixture to a CSV file or the bundled demo data",
        description="Fit a Gaussian mixture. With --out DIR writes summary.txt, assignments.csv (per-point "
        "membership probabilities), and for Bayesian methods posterior.nc (xarray DataTree for ArviZ 1, "
        "az.from_netcdf) and compare_em.csv, plus PNG plots in DIR/plots. A zarr store or parquet folder "
        "is fitted by EM on Dask without loading it whole (summary.txt, parameters.json, and with "
        "--assignments assignments.parquet).",
    )
    add_data_options(fit)
    fit.add_argument("--components", "-k", type=int, default=2, help="number of components (default 2)")
    fit.add_argument(
        "--method", choices=(*METHODS, "em"), default="nuts", help="nuts (default), advi, fullrank_advi or em"
    )
    fit.add_argument(
        "--init-sample-size",
        type=int,
        default=100_000,
        help="zarr/parquet input: rows of the random sample the EM starts are made on (default 100000)",
    )
    fit.add_argument(
        "--coreset-size",
        type=int,
        default=DEFAULT_CORESET_SIZE,
        help=f"zarr/parquet input, --method nuts or advi: points of the weighted coreset (default {DEFAULT_CORESET_SIZE})",
    )
    fit.add_argument(
        "--assignments",
        action="store_true",
        help="zarr/parquet input: write per-sample assignments as parquet files (another pass)",
    )
    fit.set_defaults(handler=_cmd_fit)
    select = sub.add_parser(
        "select-k",
        allow_abbrev=False,
        help="compare numbers of components by WAIC, PSIS-LOO, BIC, AIC and ICL",
        description="Fit each k and compare. With --out DIR writes selection.txt, selection.csv and "
        "k_selection.png.",
    )
    add_data_options(select)
    select.add_argument(
        "--components",
        "-k",
        default="5",
        help="k values: K for 1..K (default 5), a range 2-5 or a list 2,3,4",
    )
    select.add_argument("--method", choices=METHODS, default="nuts", help="Bayesian method (default nuts)")
    select.add_argument(
        "--include-unconverged",
        action="store_true",
        help="let fits that did not converge take part in the WAIC/LOO picks and weights (default: excluded)",
    )
    select.set_defaults(handler=_cmd_select_k)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:  # a Ctrl-C in the instant the handlers are put back, after the run
        return _interrupted(args)


def _run(args) -> int:
    # The handlers sit inside INTERRUPT: freeing an interrupted run's frames runs finalizers, and what they
    # raise must still meet its hook (see Interrupt). SIGTERM stops a run as Ctrl-C does.
    with INTERRUPT.catching((signal.SIGINT, signal.SIGTERM), take_over=True), warnings.catch_warnings():
        try:
            # Warnings meant for users are shown as one line each; library-internal noise (deprecations,
            # floating-point notices from diagnostics of fixed parameters) is not.
            for category in (DeprecationWarning, FutureWarning, RuntimeWarning):
                warnings.simplefilter("ignore", category)
            warnings.simplefilter("always", ConvergenceWarning)
            warnings.showwarning = _show_warning
            return args.handler(args)
        except KeyboardInterrupt:
            return _interrupted(args)
        except (SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # one line, whatever went wrong (a Rust panic too); never a traceback
            if INTERRUPT.interrupted:  # e.g. a half-filled trace after Ctrl-C failed a later check
                return _interrupted(args)
            if os.environ.get(TRACEBACK_ENV):
                traceback.print_exc()
            print(f"bayes-gmm: {_error_line(exc)}", file=sys.stderr)
            return 2


def _interrupted(args) -> int:
    kept = f"; {args.out} is as it was" if getattr(args, "out", None) else ""
    stopped, status = _stopped_by()
    print(f"bayes-gmm: {stopped}: nothing was written{kept}", file=sys.stderr)
    return status


def _stopped_by() -> tuple[str, int]:
    """How the signal that stopped the command is reported: words and exit status."""
    if INTERRUPT.signum == signal.SIGTERM:
        return "terminated (SIGTERM)", EXIT_TERMINATED
    return "interrupted", EXIT_INTERRUPTED


def _error_line(exc: BaseException) -> str:
    message = " ".join(str(exc).split())  # one line, even for multi-line library messages
    if isinstance(exc, ZeroDivisionError):
        return (
            "error: the fit reached a covariance with a zero standard deviation (a collapsed component). "
            "Use fewer components or --covariance diag, and check the data for duplicated or collinear columns"
        )
    if isinstance(exc, (CLIError, ValueError, TypeError, ImportError, ArithmeticError)):
        return f"error: {message}"
    if isinstance(exc, OSError):
        return f"error: could not read or write a file: {message}"
    return (
        f"internal error ({type(exc).__name__}: {message}). Please report it with the command line; "
        f"{TRACEBACK_ENV}=1 shows the traceback"
    )


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"bayes-gmm: warning: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(exit_by_signal(main()))
