"""The command line's input: a CSV file, the demo data, or (through Dask) a zarr store or parquet folder."""

from __future__ import annotations

import argparse
import csv
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_gmm import datasets
from bayes_gmm._cli_output import CLIError
from bayes_gmm.covariance import COVARIANCE_TYPES
from bayes_gmm.em_baseline import INIT_METHODS
from bayes_gmm.inference._backends import ADVI_BACKENDS, NUTS_BACKENDS
from bayes_gmm.sources import DaskData, open_dask, source_kind

#: pandas' separator for runs of whitespace (--sep whitespace).
WHITESPACE = r"\s+"


#: Separators tried, in this order of preference, when the file's is not given (--sep).
SEPARATORS = (",", ";", "\t", "|")
#: --sep names for characters that are awkward to type; "whitespace" is any run of spaces and tabs.
SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "space": " ", "whitespace": WHITESPACE}
#: Records of the file that separator detection reads.
SNIFF_LINES = 50
#: A line starting with this is a comment: skipped (but counted in the line numbers of messages).
COMMENT = "#"
#: Characters that group digits (1,234.5 or 1.234,5 or 1'234.5 or 1 234,5): --thousands gives the file's.
THOUSANDS = (",", ".", "'", " ")
#: How each is given on a command line.
THOUSANDS_OPTION = {",": ",", ".": ".", "'": '"\'"', " ": "space"}
#: The row-numbering rule (0..n-1 or 1..n marks an ID) applies from this many rows: in fewer, a small
#: count (0, 1, 2 in three rows) numbers the rows by chance.
MIN_ROWS_FOR_NUMBERING = 20

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
    decimal = check_decimal(args.decimal)
    thousands = check_thousands(args.thousands, decimal)
    table, source, lines = read_table(args)
    return select_columns(
        table, args.columns, source=source, decimal=decimal, thousands=thousands, lines=lines
    )


def read_table(args) -> tuple[pd.DataFrame, str, list[int] | None]:
    """The CSV file (or the demo data) as read, a description of it for the summary, each row's file line."""
    if args.demo:
        if args.csv is not None:
            raise CLIError("give either a CSV file or --demo, not both")
        return datasets.load_faithful(), "the bundled Old Faithful data", None
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
    lines = _file_lines(path)
    if args.sep is None:
        sep, how = _detect(lines, decimal), "detected"
    else:
        sep, how = separator_option(args.sep), "--sep"
    shown = "whitespace" if sep == WHITESPACE else repr(sep)
    layout = _layout(path, _records(lines, sep), f"separator {shown}, {how}", sep, decimal)
    try:
        with warnings.catch_warnings():  # index_col=False on a trailing separator: the empty field is dropped
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            table = pd.read_csv(
                io.StringIO("".join(lines)),
                sep=sep,
                # the decimal character may also separate, in quoted cells: select_columns reads those
                decimal="." if sep == decimal else decimal,
                dtype=str if sep == decimal else None,
                index_col=0 if layout.row_names else False,
            )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CLIError(f"could not read {path} as CSV: {' '.join(str(exc).split())}") from None
    if layout.row_names:
        table = table.reset_index(drop=True)
    rows = layout.lines if len(layout.lines) == len(table) else None  # as pandas counts, if it differs
    notes = "".join(f"; {note}" for note in layout.notes)
    decimal_note = f"; decimal {decimal!r}" if decimal != "." else ""
    return table, f"{path} (separator {shown}, {how}{decimal_note}{notes})", rows


def detect_separator(path: Path, decimal: str = ".") -> str:
    """The separator of a delimited text file, from its first :data:`SNIFF_LINES` records.

    Of :data:`SEPARATORS` (``,`` ``;`` tab ``|``), one fits if it splits every data line (quotes respected)
    into as many fields as the header, at least two, or every one into one field more (a trailing
    separator, or R's row names); if several fit, one that gives the header's number of fields wins, then
    the one giving the most fields, then one that is not the decimal character, then the first.
    Failing that, runs of whitespace, if they fit. The decimal character fits only if it splits every line
    alike (quoted decimal commas). If none fits, the one that splits the header into most fields is
    returned (reading then names the first line that does not match it); a file whose header none splits
    is one column (read with ``,``, or ``;`` where ``,`` is the decimal character: never the decimal).
    This is stricter than :class:`csv.Sniffer` (character frequencies, which raises on a one-column file)
    and than pandas' ``sep=None`` (which sniffs the first line only): a line of ``1,5;2,3`` (decimal
    commas) splits alike at ``;`` but not at ``,`` once the header is counted. Lines starting with
    ``#`` are comments.
    """
    return _detect(_file_lines(path), decimal)


def _detect(lines: list[str], decimal: str) -> str:
    sniffed = [line for line in lines if line.strip()][:SNIFF_LINES]
    one_column = ";" if decimal == "," else ","
    if not sniffed:
        return one_column  # reading reports the empty file
    fitting, header_fields = {}, {}
    for sep in (*SEPARATORS, WHITESPACE):
        counts = [len(fields) for _, fields in _records(sniffed, sep)]
        header, data = counts[0], set(counts[1:])
        alike = data <= {header} if sep == decimal else len(data) <= 1 and data <= {header, header + 1}
        if alike and max(counts) >= 2:
            fitting[sep] = (
                data <= {header},
                max(counts),
                sep != decimal,
            )  # as many fields as the header first
        if sep != WHITESPACE and sep != decimal:
            header_fields[sep] = header
    chars = {sep: n for sep, n in fitting.items() if sep != WHITESPACE}
    if chars:
        return max(chars, key=chars.get)  # the first of the best
    if WHITESPACE in fitting:
        return WHITESPACE
    most = max(header_fields, key=header_fields.get)
    return most if header_fields[most] >= 2 else one_column


@dataclass(frozen=True)
class _Layout:
    lines: list[int]  # the file line of each data row
    row_names: bool  # each data line starts with a row name the header does not name (R's write.table)
    notes: tuple[str, ...]  # for the summary


def _layout(path: Path, records: list[tuple[int, list[str]]], how: str, sep: str, decimal: str) -> _Layout:
    """How the records split at `sep` line up with the header, or a CLIError naming the first that does not."""
    if not records:
        raise CLIError(f"could not read {path} as CSV: it is empty")
    (header_line, header), data = records[0], records[1:]
    if not data:
        raise CLIError(f"{path} has no data rows: only a header (line {header_line})")
    split = [(line, cells) for line, cells in data if len(cells) > 1]
    if len(header) == 1 and split and sep == "," and decimal == ".":
        if all(re.fullmatch(r"[+-]?\d*,\d+", ",".join(cells).strip()) for _, cells in split[:SNIFF_LINES]):
            line, cells = split[0]
            raise CLIError(
                f"{path} is one column of numbers written with a decimal comma ({','.join(cells)!r} on line "
                f"{line}); give --decimal ,"
            )
    fields = len(data[0][1])
    expected = fields if fields in (len(header), len(header) + 1) else len(header)
    for line, cells in data:
        if len(cells) != expected:
            if expected == len(header):
                model = f"the header (line {header_line}) has {_fields(len(header))}"
            else:
                model = (
                    f"line {data[0][0]} has {_fields(fields)}, one more than the header (line {header_line})"
                )
            raise CLIError(
                f"{path}: line {line} has {_fields(len(cells))} where {model} ({how}); correct that line, or "
                f"give the separator with --sep"
            )
    lines = [line for line, _ in data]
    if expected == len(header):
        return _Layout(lines, row_names=False, notes=())
    if all(not cells[-1].strip() for _, cells in data):
        return _Layout(lines, row_names=False, notes=("a trailing separator on each data line, ignored",))
    return _Layout(
        lines,
        row_names=True,
        notes=("the first field of each data line is a row name the header does not name, not fitted",),
    )


def _fields(n: int) -> str:
    return f"{n} field" if n == 1 else f"{n} fields"


def _file_lines(path: Path) -> list[str]:
    """The file's lines, comment (``#``) and blank lines emptied: pandas skips them, their numbers count."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            text = file.read()
    except UnicodeDecodeError as exc:
        raise CLIError(
            f"could not read {path} as CSV: it is not UTF-8 text ({exc.reason} at byte {exc.start}); "
            f"save it as UTF-8"
        ) from None
    return [
        "\n" if not line.strip() or line.lstrip().startswith(COMMENT) else line
        for line in io.StringIO(text, newline="")
    ]


def _records(lines: list[str], sep: str) -> list[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank record of `lines`, split at `sep`, quotes respected."""
    if sep == WHITESPACE:
        split = (
            (
                number,
                next(csv.reader([line.replace("\t", " ").strip()], delimiter=" ", skipinitialspace=True)),
            )
            for number, line in enumerate(lines, 1)
            if line.strip()
        )
        return list(split)
    records, start = [], 1
    try:
        reader = csv.reader(lines, delimiter=sep)
        for fields in reader:
            if fields:
                records.append((start, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise CLIError(f"could not read the CSV file near line {start}: {exc}") from None
    return records


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


def check_thousands(text: str | None, decimal: str) -> str | None:
    if text is None:
        return None
    if text.lower() == "space":
        text = " "
    if text not in THOUSANDS or text == decimal:
        raise CLIError(
            f"--thousands must be one of , . ' space, not the decimal character {decimal!r}; got {text!r}. "
            f"Use e.g. --thousands {',' if decimal != ',' else '.'}"
        )
    return text


def select_columns(
    table: pd.DataFrame,
    columns: str | None,
    *,
    source: str = "the data",
    decimal: str = ".",
    thousands: str | None = None,
    lines: list[int] | None = None,
) -> InputColumns:
    """The columns to fit: those named by --columns, or by default every numeric column that is not an ID.

    A column of numbers with a cell that is not one (``79x``, ``inf``) is an error, named with its line
    (`lines`: the file line of each row; without, the data row) and text, whether or not --columns names
    it: it is never dropped silently. By default a column of text (no numbers in the majority of its
    cells) or true/false values is left out, and so is an integer column that :func:`id_like` calls an ID
    or label; the summary says so. Integer columns with few distinct values are kept: counts are data,
    and only a name or a numbering of many rows marks a column as labels.
    """
    kinds = {name: _column_kind(table[name], decimal, thousands) for name in table.columns}
    where = _where(lines)
    for name, (kind, detail) in kinds.items():
        if kind == "mixed" and (columns is None or name in column_names(columns)):
            row, text, n_bad = detail
            raise CLIError(
                _bad_cell_message(name, where(row), text, n_bad, decimal=decimal, thousands=thousands)
            )
    left_out = {}
    if columns is not None:
        wanted = column_names(columns)
        if not wanted:
            raise CLIError(
                f"--columns names no column; got {columns!r}. Use e.g. --columns {columns_text(table.columns[:2])}"
            )
        repeated = sorted({c for c in wanted if wanted.count(c) > 1})
        if repeated:
            raise CLIError(
                f"--columns names {repeated} more than once; give each column once, e.g. "
                f"--columns {columns_text(dict.fromkeys(wanted))}"
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
    values = table.to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        rows = np.flatnonzero(np.isnan(values).any(axis=1))
        column = table.columns[np.flatnonzero(np.isnan(values[rows[0]]))[0]]
        raise CLIError(
            f"{len(rows)} row(s) have missing values (first: column {column!r} {where(rows[0])}); "
            f"drop or impute them"
        )
    if not np.isfinite(values).all():
        row, j = np.argwhere(~np.isfinite(values))[0]
        raise CLIError(
            f"column {table.columns[j]!r} holds {values[row, j]} {where(row)}, which is not a finite number; "
            f"correct the file, or leave the column out with --columns"
        )
    return InputColumns(table=table, source=source, left_out=left_out, chosen=columns is not None)


def id_like(name, column: pd.Series) -> str | None:
    """Why an integer column is an ID or label rather than a measurement, or None if it is neither.

    An integer column is one if its name says so (:data:`ID_NAMES`, a name ending in ``_id`` or ``Id``, or
    pandas' ``Unnamed: 0`` for a header cell left empty, as an index written by ``to_csv`` has), or, in a
    table of at least :data:`MIN_ROWS_FOR_NUMBERING` rows, if its values number the rows: 0..n-1 or
    1..n, each once, in any order.
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
        if n >= MIN_ROWS_FOR_NUMBERING and np.array_equal(values, np.arange(first, first + n)):
            return f"an ID: the integers {first}..{first + n - 1}, one per row"
    return None


def column_names(text: str) -> list[str]:
    """The names --columns gives: comma-separated; a name holding a comma in double quotes (``"a, b",c``)."""
    return [name.strip() for name in next(csv.reader([text], skipinitialspace=True), []) if name.strip()]


def columns_text(names) -> str:
    """Names as --columns takes them (the inverse of :func:`column_names`), quoted for a shell."""
    text = ",".join(f'"{name}"' if "," in str(name) or '"' in str(name) else str(name) for name in names)
    return text if re.fullmatch(r"[\w.,:+-]*", text) else "'" + text.replace("'", "'\\''") + "'"


def _reasons(left_out: dict[str, str]) -> str:
    return "; ".join(f"{name} ({why})" for name, why in left_out.items())


def _where(lines: list[int] | None):
    """Where the table's row (from 0) is, in messages: its file line, or without lines its data row."""
    if lines is None:
        return lambda row: f"in data row {row + 1} (counting from 1 below the header)"
    return lambda row: f"on line {lines[row]}"


def _grouped(thousands: str, decimal: str) -> str:
    """A regular expression for a number whose digits `thousands` groups by three (1,234,567.5)."""
    t, d = re.escape(thousands), re.escape(decimal)
    return rf"[+-]?\d{{1,3}}(?:{t}\d{{3}})+(?:{d}\d*)?"


def _column_kind(column: pd.Series, decimal: str, thousands: str | None = None) -> tuple[str, object]:
    """("numeric", its numbers), ("text", why), or ("mixed", (row from 0, text, number of bad cells))."""
    if pd.api.types.is_bool_dtype(column):
        return "text", "true/false values, not numbers"
    if not column.notna().any():  # a header cell over nothing
        return "text", "no values"
    if pd.api.types.is_numeric_dtype(column):
        return "numeric", column
    present = column.notna().to_numpy()
    raw = column.astype(str).str.strip()
    text = raw
    if thousands is not None:  # only where the digits are grouped by three: 1,2 is no thousand
        grouped = raw.str.fullmatch(_grouped(thousands, decimal)).fillna(False).astype(bool)
        text = raw.where(~grouped, raw.str.replace(thousands, "", regex=False))
    if decimal != ".":  # a point is then no decimal point (1.500 may be a thousand and a half)
        text = text.where(~text.str.contains(".", regex=False)).str.replace(decimal, ".", regex=False)
    numbers = _parses(text, present)
    bad = np.flatnonzero(present & ~numbers)
    if len(bad) == 0:
        return "numeric", pd.to_numeric(text.where(present))
    # numbers in another notation (decimal commas without --decimal ,, points with it, grouped digits)
    # count as numbers: such a column is mostly numbers, so a bad cell is an error, not a text column
    numbers = numbers | _parses(raw.str.replace(",", ".", regex=False) if decimal == "." else raw, present)
    for mark in THOUSANDS:
        if mark != decimal:
            numbers = numbers | raw.str.fullmatch(_grouped(mark, decimal)).fillna(False).to_numpy(dtype=bool)
    if 2 * numbers.sum() > present.sum():  # mostly numbers: a typo, not a column of text
        return "mixed", (int(bad[0]), column.iloc[bad[0]], len(bad))
    return "text", f"text such as {column.iloc[bad[0]]!r}, not numbers"


def _parses(text: pd.Series, present: np.ndarray) -> np.ndarray:
    return pd.to_numeric(text.where(present), errors="coerce").notna().to_numpy()


def _bad_cell_message(name, where: str, text, n_bad: int, *, decimal: str, thousands: str | None) -> str:
    cell = str(text).strip()
    marks = [
        m for m in THOUSANDS if m not in (decimal, thousands) and re.fullmatch(_grouped(m, decimal), cell)
    ]
    option = f"--thousands {THOUSANDS_OPTION[marks[0]]}" if marks else ""
    grouping = f"; or, if {marks[0]!r} groups digits by three, give {option}" if marks else ""
    if decimal == "." and re.fullmatch(r"[+-]?\d*,\d+", cell):
        return (
            f"column {name!r} holds numbers written with a decimal comma ({cell!r} {where}); "
            f"give --decimal ,{grouping}"
        )
    if decimal != "." and re.fullmatch(r"[+-]?\d*\.\d+", cell):
        return (
            f"column {name!r} holds a number written with a decimal point ({cell!r} {where}) "
            f"where --decimal is {decimal!r}; correct the file, or leave out --decimal if it writes points"
            f"{grouping}"
        )
    if marks:
        return (
            f"column {name!r} holds numbers with digits grouped by {marks[0]!r} ({cell!r} {where}); "
            f"give {option}"
        )
    others = f" ({n_bad} such cells in all)" if n_bad > 1 else ""
    return (
        f"column {name!r} holds numbers but {where} it has {cell!r}, which is not a number{others}; "
        f"correct the file, or leave the column out with --columns"
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
        columns = column_names(args.columns)
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
        help="comma-separated columns to use, a name that holds a comma in double quotes: "
        "--columns '\"length, cm\",width' (default: every numeric column but IDs and labels, see the summary)",
    )
    parser.add_argument(
        "--sep",
        help="the CSV file's separator: one character, tab or whitespace (default: detected among , ; tab |)",
    )
    parser.add_argument("--decimal", default=".", help="the CSV file's decimal point (default .; e.g. ,)")
    parser.add_argument(
        "--thousands",
        help="the character grouping the digits of large numbers in the CSV file (1,234.5: ,; 1.234,5: .), "
        "if it has one: , . ' or space",
    )
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
        "--init",
        choices=INIT_METHODS,
        default="hc",
        help="EM initialisation (default hc: mclust's hierarchical start plus screened k-means++ starts)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", help="directory to write results into")
    parser.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
