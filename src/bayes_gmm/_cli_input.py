"""The command line's input: a CSV file, the demo data, or (through Dask) a zarr store or parquet folder."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_gmm import datasets
from bayes_gmm._cli_output import CLIError
from bayes_gmm.covariance import COVARIANCE_TYPES
from bayes_gmm.em_baseline._init import INIT_METHODS
from bayes_gmm.inference._backends import NUTS_BACKENDS
from bayes_gmm.sources import DaskData, open_dask, source_kind


def read_table(args) -> pd.DataFrame:
    if args.demo:
        if args.csv is not None:
            raise CLIError("give either a CSV file or --demo, not both")
        return datasets.load_faithful()
    if args.csv is None:
        raise CLIError("no data: give a CSV file, or --demo for the bundled Old Faithful data")
    path = Path(args.csv)
    if source_kind(path) is not None:
        raise CLIError(
            f"{path} is a zarr store or parquet data, which only `bayes-gmm fit {path} --method em` reads; "
            f"select-k needs a CSV file"
        )
    if not path.is_file():
        raise CLIError(f"CSV file not found: {path}")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CLIError(f"could not read {path} as CSV: {exc}") from None


def select_columns(table: pd.DataFrame, columns: str | None) -> pd.DataFrame:
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


def open_large(args) -> DaskData:
    """The zarr store or parquet folder named on the command line, opened through Dask (not read yet)."""
    if args.demo:
        raise CLIError("give either a data path or --demo, not both")
    if args.method != "em" and args.assignments:
        raise CLIError(
            f"--assignments is for --method em on zarr/parquet input; a --method {args.method} fit of such data "
            f"is of a coreset, whose posterior.nc holds the parameters"
        )
    if args.coreset_size < 1:
        raise CLIError(f"--coreset-size must be an integer >= 1; got {args.coreset_size}")
    if args.init_sample_size < 1:
        raise CLIError(f"--init-sample-size must be an integer >= 1; got {args.init_sample_size}")
    columns = None
    if args.columns is not None:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()]
        if not columns or len(set(columns)) != len(columns):
            raise CLIError(f"--columns must name each column once; got {args.columns!r}")
    try:
        data = open_dask(args.csv, columns=columns)
    except ImportError as exc:
        raise CLIError(
            f"reading {args.csv} needs Dask, zarr and pyarrow ({exc}); install them with "
            f'pip install "bayes-gmm[scale]"'
        ) from None
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None
    if data.shape[0] < args.components:
        raise CLIError(f"{data.shape[0]} rows is too few for {args.components} components")
    if args.method != "em" and args.coreset_size >= data.shape[0]:
        raise CLIError(
            f"--coreset-size must be below the {data.shape[0]} rows of {args.csv}; got {args.coreset_size}. Use "
            f"e.g. --coreset-size {max(1, data.shape[0] // 2)}, or --method em, or fit a CSV of these rows"
        )
    return data


#: Integer options: their smallest allowed value and a value to suggest.
INT_OPTIONS = {"draws": (1, 1000), "tune": (0, 1000), "chains": (1, 4), "n_init": (1, 10), "seed": (0, 0)}


def check_options(args) -> None:
    """Name the option in every complaint about an integer option (before anything runs)."""
    for name, (minimum, example) in INT_OPTIONS.items():
        value = getattr(args, name)
        if value < minimum:
            flag = "--" + name.replace("_", "-")
            raise CLIError(f"{flag} must be an integer >= {minimum}; got {value}. Use e.g. {flag} {example}")
    if isinstance(args.components, int) and args.components < 1:
        raise CLIError(f"--components (-k) must be an integer >= 1; got {args.components}. Use e.g. -k 2")


def bayesian_options(args) -> dict:
    """The fit_gmm options that `fit` and `select-k` share."""
    return {
        "method": args.method,
        "backend": args.backend,
        "draws": args.draws,
        "tune": args.tune,
        "chains": args.chains,
        "progressbar": not args.quiet,
    }


def parse_components(text: str) -> list[int]:
    try:
        if text.strip().isdigit():  # "5" means k = 1..5, as select_k(X, 5)
            return list(range(1, int(text) + 1))
        if "-" in text and "," not in text:
            first, last = (int(v) for v in text.split("-"))
            return list(range(first, last + 1))
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise CLIError(f"--components must be a list like 1,2,3 or a range like 1-5; got {text!r}") from None


def covariance_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in COVARIANCE_TYPES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown covariance type(s) {unknown or [text]}; choose from {', '.join(COVARIANCE_TYPES)}"
        )
    return names


def add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "csv", nargs="?", help="CSV file with a header row; for fit also a zarr store or parquet folder"
    )
    parser.add_argument("--demo", action="store_true", help="use the bundled Old Faithful data")
    parser.add_argument("--columns", help="comma-separated columns to use (default: all numeric columns)")
    parser.add_argument(
        "--covariance",
        type=covariance_names,
        default=["full"],
        metavar="TYPE",
        help="covariance type: full, tied, diag, spherical or mclust's EII ... VVV (E, V for one feature); "
        "select-k compares several, e.g. full,EEE,EII",
    )
    parser.add_argument("--backend", choices=("auto", *NUTS_BACKENDS), default="auto", help="NUTS back end")
    parser.add_argument("--draws", type=int, default=1000, help="posterior draws per chain (default 1000)")
    parser.add_argument("--tune", type=int, default=1000, help="NUTS tuning steps per chain (default 1000)")
    parser.add_argument("--chains", type=int, default=4, help="NUTS chains (default 4)")
    parser.add_argument("--n-init", type=int, default=10, help="EM restarts (default 10)")
    parser.add_argument(
        "--init",
        choices=INIT_METHODS,
        default="hc",
        help="EM initialisation (default hc: mclust's hierarchical start plus screened k-means++ starts)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", help="directory to write results into")
    parser.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
