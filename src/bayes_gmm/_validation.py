"""Input checks at the public boundary, with messages that say what to change.

Every message names the parameter, what was expected, what was given and a fix.
"""

from __future__ import annotations

import numbers

import numpy as np

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def check_data(X, *, name: str = "X", min_samples: int = 1, n_features: int | None = None) -> np.ndarray:
    """Return `X` as a C-contiguous float64 array of shape (n_samples, n_features).

    Accepts NumPy arrays, nested lists and pandas DataFrames. A 1-D input is rejected rather than
    guessed at, because a vector is ambiguous (many samples of one feature, or one sample).
    """
    if hasattr(X, "to_numpy") and hasattr(X, "dtypes") and hasattr(X.dtypes, "items"):  # pandas DataFrame
        non_numeric = [str(c) for c, t in X.dtypes.items() if not _is_numeric_dtype(t)]
        if non_numeric:
            raise TypeError(
                f"{name} must contain only numeric columns; got non-numeric column(s) {non_numeric}. "
                f"Select the numeric columns first, e.g. {name}[[...numeric columns...]]."
            )
        X = X.to_numpy()
    if hasattr(X, "to_numpy"):  # pandas Series: its values, so the 1-D check below explains the fix
        X = X.to_numpy()
    if np.iscomplexobj(X):
        raise TypeError(
            f"{name} must be real-valued; got complex numbers. Pass the real part ({name}.real), the modulus "
            f"(abs({name})), or both as separate features."
        )
    arr = as_float_array(
        X,
        name,
        "numeric data of shape (n_samples, n_features)",
        fix=" Convert or drop the non-numeric entries.",
    )
    if arr.ndim != 2:
        hint = (
            f" For a single feature use {name}.reshape(-1, 1); for a single sample use {name}.reshape(1, -1)."
            if arr.ndim == 1
            else ""
        )
        raise ValueError(
            f"{name} must be 2-D with shape (n_samples, n_features); got an array with {arr.ndim} "
            f"dimension(s) and shape {arr.shape}.{hint}"
        )
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one feature (column); got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        rows = np.unique(bad[:, 0])
        raise ValueError(
            f"{name} must contain only finite values; found NaN or infinity in {len(rows)} row(s), first at "
            f"row {rows[0]}, column {bad[0, 1]}. Drop or impute those rows before fitting."
        )
    if arr.shape[0] < min_samples:
        raise ValueError(
            f"{name} has {arr.shape[0]} sample(s) but at least {min_samples} are needed (one per mixture "
            f"component). Use fewer components or more data."
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name} has {arr.shape[1]} feature(s) but the model was fitted on {n_features}. Pass data with "
            f"the same columns, in the same order, as at fit time."
        )
    return np.ascontiguousarray(arr)


def as_float_array(value, name: str, expected: str, *, fix: str = "") -> np.ndarray:
    """Return `value` as a float64 array, or raise a TypeError naming `name`, what was `expected` and a fix."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name} must be {expected}; got values that cannot be converted to float ({exc}).{fix}"
        ) from None


def _is_numeric_dtype(dtype) -> bool:
    try:
        dtype = np.dtype(dtype)
        return (np.issubdtype(dtype, np.number) and not np.issubdtype(dtype, np.complexfloating)) or (
            np.issubdtype(dtype, np.bool_)
        )
    except TypeError:  # pandas extension dtypes (e.g. category, string)
        return bool(getattr(dtype, "_is_numeric", False))


def check_n_components(n_components) -> int:
    """Return `n_components` as an int >= 1."""
    if isinstance(n_components, bool) or not isinstance(n_components, numbers.Integral):
        raise TypeError(
            f"n_components must be a positive integer; got {n_components!r} of type "
            f"{type(n_components).__name__}. Pass e.g. n_components=3."
        )
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1; got {n_components}. Pass e.g. n_components=3.")
    return int(n_components)


def check_covariance_type(covariance_type) -> str:
    """Return `covariance_type` if it is one of full, tied, diag, spherical."""
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {COVARIANCE_TYPES}; got {covariance_type!r}. "
            f"Use 'full' for one unrestricted covariance per component."
        )
    return covariance_type


def check_choice(value, name: str, choices) -> str:
    """Return `value` if it is one of `choices`, else raise a ValueError naming the parameter."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}.")
    return value


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """Return `value` as an int >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_nonnegative_float(value, name: str) -> float:
    """Return `value` as a finite float >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}.")
    return float(value)
