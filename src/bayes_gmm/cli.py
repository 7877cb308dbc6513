"""The ``bayes-gmm`` command: a thin front end over the public API.

bayes-gmm fit --demo --out results/            # Bayesian (NUTS) fit of the bundled Old Faithful data, plots
bayes-gmm fit data.csv --columns a,b -k 3 --covariance tied --method advi --out results/
bayes-gmm fit data.csv --method em             # maximum likelihood only, in a second
bayes-gmm select-k --demo --components 1,2,3,4 --out k_choice/

A run's results appear in --out together or not at all: they are written to a hidden folder beside it,
which replaces --out as a whole at the end (so --out never mixes two runs). Errors are one line on stderr
and exit status 2; an interrupted run (Ctrl-C) writes nothing and exits with status 130.
"""

from __future__ import annotations

import _thread
import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

# PyTensor warns on import when it finds no BLAS to link; the compiled likelihood does not use it, and a
# command-line user can do nothing about it, so the command does not repeat it on every run.
warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS", category=UserWarning)

from bayes_gmm import datasets
from bayes_gmm._io import atomic_path, replace_directory, write_text_atomic
from bayes_gmm._report import (
    format_bayes_summary,
    format_em_comparison,
    format_em_summary,
    format_k_selection,
)
from bayes_gmm._validation import check_data, check_fit_data, check_n_components
from bayes_gmm.covariance import COVARIANCE_TYPES
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import (
    METHODS,
    NUTS_BACKENDS,
    compare_with_em,
    fit_gmm,
    membership_probabilities,
    select_k,
)
from bayes_gmm.inference._arviz import has_group, loo, parameter_summary, set_group, to_netcdf
from bayes_gmm.models._covariance_priors import check_bayesian_covariance_type


class CLIError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


#: Exit status of a run stopped by Ctrl-C (SIGINT), as shells report 128 + the signal number.
EXIT_INTERRUPTED = 130
#: Set BAYES_GMM_TRACEBACK=1 to see the traceback behind an unexpected error.
TRACEBACK_ENV = "BAYES_GMM_TRACEBACK"


class _Interrupt:
    """Ctrl-C handling that a sampler cannot hide.

    PyMC, nutpie and PyMC's ADVI catch KeyboardInterrupt and return the draws made so far as if the run
    had finished. The handler installed here records the signal before raising KeyboardInterrupt as
    Python would, so the command can tell an interrupted fit from a finished one (:meth:`check`). While
    `deferred` (the few renames that swap the results in), the signal is recorded but does not interrupt.
    """

    def __init__(self):
        self.interrupted = False
        self.deferred = False
        self._previous = None
        self._previous_unraisable = None

    def __enter__(self):
        self.interrupted = self.deferred = False
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        self._previous_unraisable, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        sys.unraisablehook = self._previous_unraisable

    def _handle(self, signum, frame):
        self.interrupted = True
        if self.deferred:
            return
        raise KeyboardInterrupt

    def _unraisable(self, unraisable) -> None:
        # A KeyboardInterrupt raised inside __del__ or a C callback (numba's cache writer, say) cannot
        # propagate: Python would print "Exception ignored in ..." with a traceback and drop the interrupt.
        # Keep quiet and interrupt again a moment later, in ordinary code.
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            threading.Timer(0.05, _thread.interrupt_main).start()
            return
        self._previous_unraisable(unraisable)

    def check(self) -> None:
        """Raise KeyboardInterrupt if Ctrl-C was pressed, even if a library swallowed it."""
        if self.interrupted:
            raise KeyboardInterrupt


_INTERRUPT = _Interrupt()

#: What a run writes into --out (folders: their files). A folder holding anything else is not replaced.
_OUTPUT_FILES = {
    "summary.txt",
    "assignments.csv",
    "posterior.nc",
    "compare_em.csv",
    "selection.txt",
    "selection.csv",
    "k_selection.png",
}
_OUTPUT_FOLDERS = {"plots": ".png"}


class _OutputFolder:
    """The --out folder: checked before any fitting, then replaced as a whole by the run's results."""

    def __init__(self, text: str):
        self.shown = Path(text)
        path = Path(text).expanduser()
        try:
            # A symbolic link to a folder: the folder it points to is replaced, the link kept.
            self.path = Path(os.path.abspath(path.resolve() if path.is_symlink() else path))
            self._check()
        except OSError as exc:
            raise CLIError(
                f"--out {text}: cannot use it ({exc.strerror or exc}); choose another folder"
            ) from None

    def _check(self) -> None:
        path, shown = self.path, self.shown
        if path.exists() and not path.is_dir():
            raise CLIError(
                f"--out {shown} is an existing file, not a folder; give a folder path (created if missing)"
            )
        if path.is_dir():
            cwd = Path.cwd().resolve()
            if path.resolve() == cwd or path.resolve() in cwd.parents:
                raise CLIError(
                    f"--out {shown} is the current folder or one above it, which a run would replace; "
                    f"give a subfolder, e.g. --out results"
                )
            self.check_only_outputs()
        ancestor = path.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise CLIError(
                f"--out {shown}: {ancestor} is a file, so no folder can be made in it; give a folder path"
            )
        try:  # the only reliable test of writability (root, read-only mounts, /proc)
            os.rmdir(tempfile.mkdtemp(dir=ancestor, prefix=".bayes-gmm-probe-"))
        except OSError as exc:
            raise CLIError(
                f"--out {shown}: cannot write in {ancestor} ({exc.strerror or exc}); choose a writable location"
            ) from None

    def check_only_outputs(self, path: Path | None = None) -> None:
        """Refuse to replace a folder that holds anything a bayes-gmm run did not write."""
        path = self.path if path is None else path
        if not path.is_dir():
            return
        foreign = sorted(entry.name for entry in path.iterdir() if not _is_output(entry))
        if foreign:
            listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise CLIError(
                f"--out {self.shown} holds files that bayes-gmm did not write ({listed}); a run replaces the "
                f"whole folder, so give a new or empty folder, or one an earlier run wrote"
            )

    def write(self, write_files) -> list[Path]:
        """Run ``write_files(folder)`` on a fresh folder, then swap it in; returns the written paths."""

        def before_swap(stage: Path) -> None:
            _INTERRUPT.check()
            _INTERRUPT.deferred = True  # from here on a Ctrl-C no longer stops the (quick) swap
            self.check_only_outputs()

        try:
            with replace_directory(self.path, before_swap=before_swap) as stage:
                names = write_files(stage)
        finally:
            _INTERRUPT.deferred = False
        return [self.shown / name for name in names]


def _is_output(entry: Path) -> bool:
    if entry.name in _OUTPUT_FILES:
        return entry.is_file() and not entry.is_symlink()
    suffix = _OUTPUT_FOLDERS.get(entry.name)
    return (
        suffix is not None
        and entry.is_dir()
        and not entry.is_symlink()
        and all(f.is_file() and f.suffix == suffix for f in entry.iterdir())
    )


#: Integer options: their smallest allowed value and a value to suggest.
_INT_OPTIONS = {"draws": (1, 1000), "tune": (0, 1000), "chains": (1, 4), "n_init": (1, 10), "seed": (0, 0)}


def _check_options(args) -> None:
    """Name the option in every complaint about an integer option (before anything runs)."""
    for name, (minimum, example) in _INT_OPTIONS.items():
        value = getattr(args, name)
        if value < minimum:
            flag = "--" + name.replace("_", "-")
            raise CLIError(f"{flag} must be an integer >= {minimum}; got {value}. Use e.g. {flag} {example}")
    if isinstance(args.components, int) and args.components < 1:
        raise CLIError(f"--components (-k) must be an integer >= 1; got {args.components}. Use e.g. -k 2")


def _read_table(args) -> pd.DataFrame:
    if args.demo:
        if args.csv is not None:
            raise CLIError("give either a CSV file or --demo, not both")
        return datasets.load_faithful()
    if args.csv is None:
        raise CLIError("no data: give a CSV file, or --demo for the bundled Old Faithful data")
    path = Path(args.csv)
    if not path.is_file():
        raise CLIError(f"CSV file not found: {path}")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CLIError(f"could not read {path} as CSV: {exc}") from None


def _select_columns(table: pd.DataFrame, columns: str | None) -> pd.DataFrame:
    if columns is not None:
        wanted = [c.strip() for c in columns.split(",") if c.strip()]
        if not wanted:
            raise CLIError(
                f"--columns names no column; got {columns!r}. Use e.g. --columns {','.join(table.columns[:2])}"
            )
        repeated = sorted({c for c in wanted if wanted.count(c) > 1})
        if repeated:
            raise CLIError(
                f"--columns names {repeated} more than once; give each column once, e.g. "
                f"--columns {','.join(dict.fromkeys(wanted))}"
            )
        missing = [c for c in wanted if c not in table.columns]
        if missing:
            raise CLIError(f"column(s) {missing} not in the data; available: {list(table.columns)}")
        table = table[wanted]
    else:
        table = table.select_dtypes(include="number")
        if table.shape[1] == 0:
            raise CLIError("the data has no numeric columns; choose columns with --columns")
    non_numeric = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    if non_numeric:
        raise CLIError(f"column(s) {non_numeric} are not numeric; choose numeric columns with --columns")
    if table.isna().to_numpy().any():
        rows = np.flatnonzero(table.isna().to_numpy().any(axis=1))
        raise CLIError(
            f"{len(rows)} row(s) have missing values (first: row {rows[0] + 1}); drop or impute them"
        )
    return table


def _check_bayesian_data(table: pd.DataFrame, n_components: int, covariance_type: str) -> None:
    """fit_gmm's data checks, up front (before EM): its warnings come later, from fit_gmm itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_bayesian_covariance_type(covariance_type)
        check_fit_data(table, n_components, covariance_type)


def _check_complete(fit, args) -> None:
    """An interrupted sampler returns fewer chains or draws than asked for: never report those."""
    _INTERRUPT.check()
    if fit.attrs.get("method") != "nuts":
        return
    chains, draws = fit.posterior.sizes["chain"], fit.posterior.sizes["draw"]
    if (chains, draws) != (args.chains, args.draws):
        raise CLIError(
            f"sampling stopped early: {chains} chains x {draws} draws of the {args.chains} x {args.draws} asked "
            f"for; nothing was written. Run it again"
        )


def _cmd_fit(args) -> int:
    _check_options(args)
    table = _select_columns(_read_table(args), args.columns)
    if len(table) < args.components:
        raise CLIError(f"{len(table)} rows is too few for {args.components} components")
    check_data(table, min_samples=check_n_components(args.components))  # fail before any progress output
    if args.method != "em":
        _check_bayesian_data(table, args.components, args.covariance)
    out = _OutputFolder(args.out) if args.out else None  # checked before the fit, not after
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
            **_bayesian_options(args),
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
    _INTERRUPT.check()
    print(summary)
    if out is not None:

        def write_files(folder: Path) -> list[str]:
            written = ["summary.txt", "assignments.csv"]
            write_text_atomic(folder / "summary.txt", summary + "\n")
            _write_csv(folder / "assignments.csv", _assignments_table(table, membership))
            if args.method != "em":
                written += ["posterior.nc", "compare_em.csv"]
                set_group(fit, "membership", membership)
                with atomic_path(folder / "posterior.nc") as tmp:
                    to_netcdf(fit, tmp)
                _write_csv(folder / "compare_em.csv", comparison)
            if not args.no_plots:
                say("plots ...")
                plots = _write_fit_plots(folder / "plots", fit, table, em, args.seed)
                written += [str(p.relative_to(folder)) for p in plots]
            return written

        print("\nwrote " + ", ".join(str(p) for p in out.write(write_files)))
    return 0


def _cmd_select_k(args) -> int:
    _check_options(args)
    table = _select_columns(_read_table(args), args.columns)
    ks = _parse_components(args.components)
    if ks and len(table) < max(ks):
        raise CLIError(f"{len(table)} rows is too few for {max(ks)} components")
    check_data(table)
    if ks and min(ks) >= 1:
        _check_bayesian_data(table, max(ks), args.covariance)  # the largest k needs the most data
    out = _OutputFolder(args.out) if args.out else None
    say = _reporter(args.quiet)
    selection = select_k(
        table,
        ks,
        covariance_type=args.covariance,
        em_n_init=args.n_init,
        em_init=args.init,
        random_seed=args.seed,
        progress=say,
        **_bayesian_options(args),
    )
    for fit in selection.fits.values():
        _check_complete(fit, args)
    text = format_k_selection(selection)
    print(text)
    if out is not None:

        def write_files(folder: Path) -> list[str]:
            write_text_atomic(folder / "selection.txt", text + "\n")
            _write_csv(folder / "selection.csv", selection.table.reset_index())
            written = ["selection.txt", "selection.csv"]
            if not args.no_plots:
                from bayes_gmm import plots

                plots.save_figure(plots.plot_k_selection(selection), folder / "k_selection.png")
                written.append("k_selection.png")
            return written

        print("\nwrote " + ", ".join(str(p) for p in out.write(write_files)))
    return 0


def _bayesian_options(args) -> dict:
    """The fit_gmm options that `fit` and `select-k` share."""
    return {
        "method": args.method,
        "backend": args.backend,
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "progressbar": not args.quiet,
    }


def _parse_components(text: str) -> list[int]:
    try:
        if text.strip().isdigit():  # "5" means k = 1..5, as select_k(X, 5)
            return list(range(1, int(text) + 1))
        if "-" in text and "," not in text:
            first, last = (int(v) for v in text.split("-"))
            return list(range(first, last + 1))
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"--components must be a list like 1,2,3 or a range like 1-5; got {text!r}") from None


def _loo_or_none(idata):
    return loo(idata) if has_group(idata, "log_likelihood") else None


def _assignments_table(table: pd.DataFrame, membership) -> pd.DataFrame:
    columns = {
        "component": membership["most_probable"].values,
        "max_probability": membership["max_probability"].values,
        "entropy": membership["entropy"].values,
    }
    for j, k in enumerate(membership["component"].values):
        columns[f"p_component_{k}"] = membership["probability"].values[:, j]
    if "probability_lower" in membership:
        level = round(100 * membership.attrs["interval_prob"])
        for j, k in enumerate(membership["component"].values):
            columns[f"p_component_{k}_lower{level}"] = membership["probability_lower"].values[:, j]
            columns[f"p_component_{k}_upper{level}"] = membership["probability_upper"].values[:, j]
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(columns)], axis=1)


def _write_fit_plots(directory: Path, fit, table: pd.DataFrame, em, seed: int) -> list[Path]:
    from bayes_gmm import plots
    from bayes_gmm.inference._arviz import plot_trace

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
        figures["trace.png"] = plot_trace(fit, ["weights", "means"])
    written = []
    for name, figure in figures.items():
        plots.save_figure(figure, directory / name)
        written.append(directory / name)
    return written


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def _reporter(quiet: bool):
    if quiet:  # PyMC's own progress lines ("Initializing NUTS ...", "Sampling ...") too
        logging.getLogger("pymc").setLevel(logging.WARNING)

    def say(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr, flush=True)

    return say


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("csv", nargs="?", help="CSV file with a header row")
    parser.add_argument("--demo", action="store_true", help="use the bundled Old Faithful data")
    parser.add_argument("--columns", help="comma-separated columns to use (default: all numeric columns)")
    parser.add_argument("--covariance", choices=COVARIANCE_TYPES, default="full", help="covariance type")
    parser.add_argument("--backend", choices=("auto", *NUTS_BACKENDS), default="auto", help="NUTS back end")
    parser.add_argument("--draws", type=int, default=1000, help="posterior draws per chain (default 1000)")
    parser.add_argument("--tune", type=int, default=1000, help="NUTS tuning steps per chain (default 1000)")
    parser.add_argument("--chains", type=int, default=4, help="NUTS chains (default 4)")
    parser.add_argument("--n-init", type=int, default=10, help="EM restarts (default 10)")
    parser.add_argument(
        "--init", choices=("kmeans", "kmeans++", "random"), default="kmeans", help="EM initialisation"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", help="directory to write results into")
    parser.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress messages")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayes-gmm", description="Gaussian mixture models, the Bayesian way."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser(
        "fit",
        help="fit a Gaussian mixture to a CSV file or the bundled demo data",
        description="Fit a Gaussian mixture. With --out DIR writes summary.txt, assignments.csv (per-point "
        "membership probabilities), and for Bayesian methods posterior.nc (xarray DataTree for ArviZ 1, "
        "az.from_netcdf) and compare_em.csv, plus PNG plots in DIR/plots.",
    )
    _add_data_options(fit)
    fit.add_argument("--components", "-k", type=int, default=2, help="number of components (default 2)")
    fit.add_argument(
        "--method", choices=(*METHODS, "em"), default="nuts", help="nuts (default), advi, fullrank_advi or em"
    )
    fit.set_defaults(handler=_cmd_fit)
    select = sub.add_parser(
        "select-k",
        help="compare numbers of components by WAIC, PSIS-LOO, BIC, AIC and ICL",
        description="Fit each k and compare. With --out DIR writes selection.txt, selection.csv and "
        "k_selection.png.",
    )
    _add_data_options(select)
    select.add_argument(
        "--components",
        "-k",
        default="5",
        help="k values: K for 1..K (default 5), a range 2-5 or a list 2,3,4",
    )
    select.add_argument("--method", choices=METHODS, default="nuts", help="Bayesian method (default nuts)")
    select.set_defaults(handler=_cmd_select_k)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _INTERRUPT, warnings.catch_warnings():
            # Warnings meant for users are shown as one line each; library-internal noise (deprecations,
            # floating-point notices from diagnostics of fixed parameters) is not.
            for category in (DeprecationWarning, FutureWarning, RuntimeWarning):
                warnings.simplefilter("ignore", category)
            warnings.simplefilter("always", ConvergenceWarning)
            warnings.showwarning = _show_warning
            return args.handler(args)
    except KeyboardInterrupt:
        return _interrupted(args)
    except Exception as exc:  # one line for the user, whatever went wrong; never a traceback
        if _INTERRUPT.interrupted:  # e.g. a half-filled trace after Ctrl-C failed a later check
            return _interrupted(args)
        if os.environ.get(TRACEBACK_ENV):
            traceback.print_exc()
        print(f"bayes-gmm: {_error_line(exc)}", file=sys.stderr)
        return 2


def _interrupted(args) -> int:
    kept = f"; {args.out} is as it was" if getattr(args, "out", None) else ""
    print(f"bayes-gmm: interrupted: nothing was written{kept}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _error_line(exc: Exception) -> str:
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
    sys.exit(main())
