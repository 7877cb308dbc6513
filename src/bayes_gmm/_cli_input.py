"""The command line's input: a CSV file, the demo data, or (through Dask) a zarr store or parquet folder."""

from __future__ import annotations

import argparse
import csv
import itertools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_gmm import datasets
from bayes_gmm._cli_output import CLIError
from bayes_gmm.covariance import COVARIANCE_TYPES
from bayes_gmm.inference._backends import ADVI_BACKENDS, NUTS_BACKENDS
from bayes_gmm.sources import DaskData, open_dask, source_kind

#: pandas' separator for runs of whitespace (--sep whitespace).
WHITESPACE = r"\s+"


#: Separators tried, in this order of preference, when the file's is not given (--sep).
SEPARATORS = (",", ";", "\t", "|")
#: --sep names for characters that are awkward to type; "whitespace" is any run of spaces and tabs.
SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "space": " ", "whitespace": WHITESPACE}
#: Lines of the file that separator detection reads.
SNIFF_LINES = 50

#: Integer columns by these names (lower case, spaces, dots and dashes as "_") hold labels or IDs.
ID_NAMES = frozenset(
    {"id", "index", "idx", "row", "rownames", "label", "labels", "class", "cluster", "target", "group"}
)


@dataclass(frozen=True)
class InputColumns:
    """The columns a command fits, and for its summary where they came from and what was left out."""

    table: pd.DataFrame
    source: str
    left_out: dict[str, str]
    chosen: bool  # named by --columns

    def note(self) -> str:
        """The summary's lines on the data: the source, the columns used, and each left out and why."""
        used = "columns used (--columns)" if self.chosen else "columns used"
        lines = [f"Data: {self.source}, {len(self.table)} rows; {used}: {', '.join(map(str, self.table))}."]
        if self.left_out:
            lines.append(f"  Left out: {_reasons(self.left_out)}. Choose the columns with --columns.")
        return "\n".join(lines)


def load_columns(args) -> InputColumns:
    """The data a `fit` or `select-k` of a CSV file (or --demo) fits: read, checked, columns chosen."""
    table, source = read_table(args)
    return select_columns(table, args.columns, source=source, decimal=args.decimal)


def read_table(args) -> tuple[pd.DataFrame, str]:
    """The CSV file (or the demo data) as read, and a description of it for the summary."""
    if args.demo:
        if args.csv is not None:
            raise CLIError("give either a CSV file or --demo, not both")
        return datasets.load_faithful(), "the bundled Old Faithful data"
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
    decimal = check_decimal(args.decimal)
    if args.sep is None:
        sep, how = detect_separator(path, decimal), "detected"
    else:
        sep, how = separator_option(args.sep), "--sep"
    if sep == decimal:
        raise CLIError(
            f"--decimal {decimal!r} is also the separator ({how}); give another, e.g. --sep ';' --decimal ','"
        )
    try:
        table = pd.read_csv(path, sep=sep, decimal=decimal)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CLIError(f"could not read {path} as CSV: {exc}") from None
    shown = "whitespace" if sep == WHITESPACE else repr(sep)
    return table, f"{path} (separator {shown}, {how}" + (f"; decimal {decimal!r})" if decimal != "." else ")")


def detect_separator(path: Path, decimal: str = ".") -> str:
    """The separator of a delimited text file, from its first :data:`SNIFF_LINES` non-blank lines.

    Of :data:`SEPARATORS` (``,`` ``;`` tab ``|``), the one that splits every one of those lines (header
    included, quotes respected) into the same number of fields, at least two, wins; if several do, the one
    giving the most fields, then the first. Failing that, runs of whitespace if they split every line alike; failing that, the
    file is one column (``,``). This is stricter than :class:`csv.Sniffer` (character frequencies, which
    raises on a one-column file) and than pandas' ``sep=None`` (which sniffs the first line only): a line
    of ``1,5;2,3`` (decimal commas) splits alike at ``;`` but not at ``,`` once the header is counted.
    """
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as file:
        lines = list(itertools.islice((line for line in file if line.strip()), SNIFF_LINES))
    if not lines:
        return ","  # pandas reports the empty file
    best, most = None, 1
    for sep in SEPARATORS:
        if sep == decimal:
            continue
        counts = {len(fields) for fields in csv.reader(lines, delimiter=sep)}
        if len(counts) == 1 and (n := counts.pop()) > most:
            best, most = sep, n
    if best is not None:
        return best
    if len({len(line.split()) for line in lines}) == 1 and len(lines[0].split()) > 1:
        return WHITESPACE
    return ","


def separator_option(text: str) -> str:
    sep = SEPARATOR_NAMES.get(text.lower(), text)
    if len(sep) != 1 and sep != WHITESPACE:
        raise CLIError(
            f"--sep must be one character, tab or whitespace; got {text!r}. Use e.g. --sep ';' or --sep tab"
        )
    return sep


def check_decimal(text: str) -> str:
    if len(text) != 1 or text.isalnum() or text.isspace():
        raise CLIError(
            f"--decimal must be one character such as '.' or ','; got {text!r}. Use e.g. --decimal ,"
        )
    return text


def select_columns(
    table: pd.DataFrame, columns: str | None, *, source: str = "the data", decimal: str = "."
) -> InputColumns:
    """The columns to fit: those named by --columns, or by default every numeric column that is not an ID.

    A column of numbers with a cell that is not one (``79x``) is an error, named with its row and text,
    whether or not --columns names it: it is never dropped silently. By default a column of text (no
    numbers in the majority of its cells) or true/false values is left out, and so is an integer column
    that :func:`id_like` calls an ID or label; the summary says so. Integer columns with few distinct
    values are kept: counts are data, and only a name or a 1..n numbering marks a column as labels.
    """
    kinds = {name: _column_kind(table[name], decimal) for name in table.columns}
    for name, (kind, detail) in kinds.items():
        if kind == "mixed" and (columns is None or name in _column_list(columns)):
            raise CLIError(_bad_cell_message(name, *detail, decimal=decimal))
    left_out = {}
    if columns is not None:
        wanted = _column_list(columns)
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
        non_numeric = [c for c in wanted if kinds[c][0] != "numeric"]
        if non_numeric:
            example = next(detail for kind, detail in (kinds[c] for c in non_numeric))
            raise CLIError(
                f"column(s) {non_numeric} are not numeric ({example}); choose numeric columns with --columns"
            )
        table = pd.DataFrame({c: kinds[c][1] for c in wanted})
    else:
        for name, (kind, detail) in kinds.items():
            reason = detail if kind != "numeric" else id_like(name, table[name])
            if reason is not None:
                left_out[str(name)] = reason
        table = pd.DataFrame({c: kinds[c][1] for c in table.columns if str(c) not in left_out})
        if table.shape[1] == 0:
            what = f" (left out: {_reasons(left_out)})" if left_out else ""
            raise CLIError(f"the data has no numeric columns{what}; choose columns with --columns")
    if table.isna().to_numpy().any():
        rows = np.flatnonzero(table.isna().to_numpy().any(axis=1))
        raise CLIError(
            f"{len(rows)} row(s) have missing values (first: data row {rows[0] + 1}); drop or impute them"
        )
    return InputColumns(table=table, source=source, left_out=left_out, chosen=columns is not None)


def id_like(name, column: pd.Series) -> str | None:
    """Why an integer column is an ID or label rather than a measurement, or None if it is neither.

    An integer column is one if its name says so (:data:`ID_NAMES`, a name ending in ``_id`` or ``Id``, or
    pandas' ``Unnamed: 0`` for a header cell left empty, as an index written by ``to_csv`` has), or if its
    values number the rows: 0..n-1 or 1..n, each once, in any order.
    """
    if not pd.api.types.is_integer_dtype(column):
        return None
    text = str(name).strip()
    key = re.sub(r"[\s.\-]+", "_", text.lower())
    if re.fullmatch(r"unnamed:_\d+", key):
        return "no name in the header, as the index pandas' to_csv writes"
    if key in ID_NAMES or key.endswith("_id") or re.search(r"[a-z]I[dD]$", text):
        return "its name marks an ID or label, not a measurement"
    values = np.sort(column.to_numpy())
    n = len(values)
    for first in (0, 1):
        if n > 1 and values[0] == first and np.array_equal(values, np.arange(first, first + n)):
            return f"an ID: the integers {first}..{first + n - 1}, one per row"
    return None


def _reasons(left_out: dict[str, str]) -> str:
    return "; ".join(f"{name} ({why})" for name, why in left_out.items())


def _column_list(columns: str) -> list[str]:
    return [c.strip() for c in columns.split(",") if c.strip()]


def _column_kind(column: pd.Series, decimal: str) -> tuple[str, object]:
    """("numeric", its numbers), ("text", why), or ("mixed", (data row, text, number of bad cells))."""
    if pd.api.types.is_bool_dtype(column):
        return "text", "true/false values, not numbers"
    if not column.notna().any():  # a trailing separator on every line makes one
        return "text", "no values"
    if pd.api.types.is_numeric_dtype(column):
        return "numeric", column
    present = column.notna().to_numpy()
    raw = column.astype(str).str.strip()
    text = raw
    if decimal != ".":  # a point is then no decimal point (1.500 may be a thousand and a half)
        text = raw.where(~raw.str.contains(".", regex=False)).str.replace(decimal, ".", regex=False)
    numbers = _parses(text, present)
    bad = np.flatnonzero(present & ~numbers)
    if len(bad) == 0:
        return "numeric", pd.to_numeric(text.where(present))
    # numbers in the other notation (decimal commas without --decimal ,, or points with it) count as numbers
    numbers = numbers | _parses(raw.str.replace(",", ".", regex=False) if decimal == "." else raw, present)
    if 2 * numbers.sum() > present.sum():  # mostly numbers: a typo, not a column of text
        return "mixed", (int(bad[0]) + 1, column.iloc[bad[0]], len(bad))
    return "text", f"text such as {column.iloc[bad[0]]!r}, not numbers"


def _parses(text: pd.Series, present: np.ndarray) -> np.ndarray:
    return pd.to_numeric(text.where(present), errors="coerce").notna().to_numpy()


def _bad_cell_message(name, row: int, text, n_bad: int, *, decimal: str) -> str:
    if decimal == "." and re.fullmatch(r"[+-]?\d*,\d+", str(text).strip()):
        return (
            f"column {name!r} holds numbers written with a decimal comma ({str(text)!r} in data row {row}); "
            f"give --decimal ,"
        )
    if decimal != "." and re.fullmatch(r"[+-]?\d*\.\d+", str(text).strip()):
        return (
            f"column {name!r} holds a number written with a decimal point ({str(text)!r} in data row {row}) "
            f"where --decimal is {decimal!r}; correct the file, or leave out --decimal if it writes points"
        )
    others = f" ({n_bad} such cells in all)" if n_bad > 1 else ""
    return (
        f"column {name!r} holds numbers but data row {row} (counting from 1 below the header) has "
        f"{str(text)!r}, which is not a number{others}; correct the file, or leave the column out with --columns"
    )


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
INT_OPTIONS = {"draws": (1, 1000), "tune": (1, 1000), "chains": (1, 4), "n_init": (1, 10), "seed": (0, 0)}


def check_options(args) -> None:
    """Name the option in every complaint about an integer option (before anything runs)."""
    for name, (minimum, example) in INT_OPTIONS.items():
        value = getattr(args, name)
        if value < minimum:
            flag = "--" + name.replace("_", "-")
            raise CLIError(f"{flag} must be an integer >= {minimum}; got {value}. Use e.g. {flag} {example}")
    if isinstance(args.components, int) and args.components < 1:
        raise CLIError(f"--components (-k) must be an integer >= 1; got {args.components}. Use e.g. -k 2")
    method, backend = getattr(args, "method", None), getattr(args, "backend", "auto")
    if method == "nuts" and backend not in ("auto", *NUTS_BACKENDS):
        raise CLIError(
            f"--backend {backend} runs ADVI; NUTS runs on {', '.join(NUTS_BACKENDS)}. Use --backend auto"
        )
    if method in ("advi", "fullrank_advi") and backend not in ("auto", *ADVI_BACKENDS):
        raise CLIError(
            f"--backend {backend} runs NUTS; --method {method} runs on {' or '.join(ADVI_BACKENDS)}. "
            f"Use --backend auto"
        )


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
    parser.add_argument(
        "--columns",
        help="comma-separated columns to use (default: every numeric column but IDs and labels, see the summary)",
    )
    parser.add_argument(
        "--sep",
        help="the CSV file's separator: one character, tab or whitespace (default: detected among , ; tab |)",
    )
    parser.add_argument("--decimal", default=".", help="the CSV file's decimal point (default .; e.g. ,)")
    parser.add_argument(
        "--covariance",
        type=covariance_names,
        default=["full"],
        metavar="TYPE",
        help="covariance type: full, tied, diag, spherical or mclust's EII ... VVV (E, V for one feature); "
        "select-k compares several, e.g. full,EEE,EII",
    )
    parser.add_argument(
        "--backend",
        choices=("auto", *dict.fromkeys(NUTS_BACKENDS + ADVI_BACKENDS)),
        default="auto",
        help="NUTS back end (nutpie, pymc, numpyro) or ADVI's (kernel, pymc); auto: nutpie or kernel",
    )
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
