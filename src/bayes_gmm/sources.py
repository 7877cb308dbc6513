"""Data larger than memory, read through Dask: a zarr store or a folder of parquet files.

:func:`open_dask` opens either as a 2-D ``dask.array.Array`` of float64 (rows in chunks, the features in
one) with the features' names, without reading the values; :func:`bayes_gmm.em_baseline.fit_em` fits it
chunk by chunk. Needs the ``scale`` extra: ``pip install "bayes-gmm[scale]"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bayes_gmm._validation import _is_numeric_dtype, default_feature_names

#: The zarr attribute (a list of strings) read as the features' names, if present.
FEATURE_NAMES_ATTR = "feature_names"


@dataclass(frozen=True, eq=False)
class DaskData:
    """Data opened by :func:`open_dask`.

    Attributes
    ----------
    array : dask.array.Array of shape (n_samples, n_features)
        float64, chunked by rows (all features in one chunk), not yet read.
    feature_names : tuple of str
        The parquet columns, the zarr array's ``feature_names`` attribute, or ``x0, x1, ...``.
    kind : {"zarr", "parquet"}
    path : pathlib.Path
    """

    array: object
    feature_names: tuple[str, ...]
    kind: str
    path: Path

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(int(n) for n in self.array.shape)


def source_kind(path) -> str | None:
    """ "zarr" for a zarr store (v2 or v3), "parquet" for a parquet file or a folder holding parquet files,
    None otherwise."""
    path = Path(path)
    if path.is_dir():
        if any((path / name).is_file() for name in ("zarr.json", ".zarray", ".zgroup")):
            return "zarr"
        if path.suffix == ".parquet" or any(path.rglob("*.parquet")):
            return "parquet"
        return None
    if path.is_file() and path.suffix == ".parquet":
        return "parquet"
    return None


def open_dask(path, *, columns=None, array_name: str | None = None) -> DaskData:
    """Open a zarr store or a folder of parquet files as a Dask array, without reading the values.

    Parameters
    ----------
    path : str or path-like
        A zarr store (a folder with ``zarr.json``, ``.zarray`` or ``.zgroup``) holding a 2-D numeric array
        (rows are samples), or a parquet file or folder of parquet files (numeric columns are features).
    columns : sequence of str, optional
        The features to use, by name (default: every numeric column of a parquet folder, every column of a
        zarr array).
    array_name : str, optional
        For a zarr group: the array to read (default: its only 2-D array).

    Returns
    -------
    DaskData

    Raises
    ------
    ValueError
        If `path` is neither, a zarr array is not 2-D, or `columns` names a missing column.
    TypeError
        If a requested column is not numeric.
    """
    path = Path(path).expanduser()
    kind = source_kind(path)
    if kind is None:
        raise ValueError(
            f"{path} is not a zarr store or parquet data: expected a folder with zarr.json (or .zarray/.zgroup) "
            f"or parquet files (*.parquet). Check the path."
        )
    array, names = _open_zarr(path, array_name) if kind == "zarr" else _open_parquet(path, columns)
    if kind == "zarr" and columns is not None:
        array, names = _select_zarr_columns(array, names, columns, path)
    if array.numblocks[1] != 1:
        array = array.rechunk({1: -1})
    return DaskData(array.astype("float64"), tuple(names), kind, path)


def _open_zarr(path: Path, array_name):
    import dask.array as da
    import zarr

    node = zarr.open(str(path), mode="r")
    if isinstance(node, zarr.Group):
        arrays = {name: a for name, a in node.arrays() if a.ndim == 2}
        if array_name is None:
            if len(arrays) != 1:
                raise ValueError(
                    f"the zarr group {path} holds {len(arrays)} 2-D arrays ({sorted(arrays) or 'none'}); name "
                    f"the one to read" + (f", e.g. {sorted(arrays)[0]!r}" if arrays else "")
                )
            array_name = next(iter(arrays))
        if array_name not in arrays:
            raise ValueError(
                f"the zarr group {path} has no 2-D array {array_name!r}; it has {sorted(arrays)}"
            )
        node = arrays[array_name]
    if node.ndim != 2:
        raise ValueError(
            f"the zarr array {path} must be 2-D (rows are samples, columns features); got shape {node.shape}"
        )
    if not _is_numeric_dtype(node.dtype):
        raise TypeError(f"the zarr array {path} must be numeric; got dtype {node.dtype}")
    names = node.attrs.get(FEATURE_NAMES_ATTR)
    if not (isinstance(names, list) and len(names) == node.shape[1]):
        names = default_feature_names(node.shape[1])
    return da.from_array(node, chunks=node.chunks), [str(n) for n in names]


def _select_zarr_columns(array, names, columns, path):
    columns = list(columns)
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(f"column(s) {missing} not in the zarr array {path}; available: {list(names)}")
    index = [names.index(c) for c in columns]
    return array[:, index], columns


def _open_parquet(path: Path, columns):
    import dask.dataframe as dd

    frame = dd.read_parquet(str(path))
    if columns is not None:
        columns = list(columns)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"column(s) {missing} not in {path}; available: {list(frame.columns)}")
        non_numeric = [c for c in columns if not _is_numeric_dtype(frame.dtypes[c])]
        if non_numeric:
            raise TypeError(f"column(s) {non_numeric} of {path} are not numeric; choose numeric columns")
        frame = frame[columns]
    else:
        # Numbers only, as for a CSV: boolean flags are left out unless named.
        numeric = [c for c, t in frame.dtypes.items() if _is_numeric_dtype(t) and not _is_boolean(t)]
        if not numeric:
            raise ValueError(f"{path} has no numeric columns; choose columns by name")
        frame = frame[numeric]
    # float64, so that a missing value of a nullable column (pd.NA) becomes NaN, which the first pass
    # reports by row and column. Row counts per partition come from one pass (Dask needs them to slice).
    return frame.astype("float64").to_dask_array(lengths=True), [str(c) for c in frame.columns]


def _is_boolean(dtype) -> bool:
    return str(dtype).lower() in ("bool", "boolean")
