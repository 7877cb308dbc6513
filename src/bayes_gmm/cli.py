"""The ``bayes-gmm`` command: a thin front end over the public API.

bayes-gmm fit --demo                       # EM fit of the bundled Old Faithful data, printed summary
bayes-gmm fit data.csv --columns a,b --components 3 --covariance tied --out results/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_gmm import datasets
from bayes_gmm._io import atomic_path, write_text_atomic
from bayes_gmm._report import format_em_summary
from bayes_gmm._validation import COVARIANCE_TYPES
from bayes_gmm.em_baseline import fit_em


class CLIError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


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
    if columns:
        wanted = [c.strip() for c in columns.split(",") if c.strip()]
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


def _cmd_fit(args) -> int:
    table = _select_columns(_read_table(args), args.columns)
    if len(table) < args.components:
        raise CLIError(f"{len(table)} rows is too few for {args.components} components")
    result = fit_em(
        table, args.components, covariance_type=args.covariance, n_init=args.n_init, random_seed=args.seed
    )
    summary = format_em_summary(result, feature_names=table.columns)
    print(summary)
    if args.out:
        out = Path(args.out)
        write_text_atomic(out / "summary.txt", summary + "\n")
        proba = pd.DataFrame(
            result.predict_proba(table), columns=[f"p_component_{k}" for k in range(result.n_components)]
        )
        proba.insert(0, "component", result.predict(table))
        with atomic_path(out / "assignments.csv") as tmp:
            pd.concat([table.reset_index(drop=True), proba], axis=1).to_csv(tmp, index=False)
        print(f"\nwrote {out / 'summary.txt'} and {out / 'assignments.csv'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayes-gmm", description="Gaussian mixture models, the Bayesian way."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="fit a Gaussian mixture to a CSV file or the bundled demo data")
    fit.add_argument("csv", nargs="?", help="CSV file with a header row")
    fit.add_argument("--demo", action="store_true", help="use the bundled Old Faithful data")
    fit.add_argument("--columns", help="comma-separated columns to use (default: all numeric columns)")
    fit.add_argument("--components", "-k", type=int, default=2, help="number of components (default 2)")
    fit.add_argument("--covariance", choices=COVARIANCE_TYPES, default="full", help="covariance type")
    fit.add_argument("--method", choices=("em",), default="em", help="fitting method")
    fit.add_argument("--n-init", type=int, default=10, help="EM restarts (default 10)")
    fit.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    fit.add_argument("--out", help="directory to write results into")
    fit.set_defaults(handler=_cmd_fit)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (CLIError, ValueError, TypeError) as exc:
        print(f"bayes-gmm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
