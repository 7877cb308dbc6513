"""The command line's input: a CSV file, the demo data, or (through Dask) a zarr store or parquet folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_gmm import datasets
from bayes_gmm._cli_output import CLIError
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
    if args.method != "em":
        raise CLIError(
            f"--method {args.method} needs the data in memory; a zarr store or parquet folder is fitted with "
            f"--method em (EM on Dask, out of core)"
        )
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
    return data
