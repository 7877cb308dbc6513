"""Input checks at the public boundary, with messages that say what to change.

Every message names the parameter, what was expected, what was given and a fix.
"""

from __future__ import annotations

import difflib
import numbers
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from bayes_gmm.covariance import get_structure

#: Largest magnitude accepted in data: squares and sums of squares of larger values overflow float64.
MAX_ABS_VALUE = 1e100
#: Smallest column standard deviation a Bayesian fit accepts (its variance must not underflow).
MIN_COLUMN_SD = 1e-100
#: Largest ratio of column standard deviations a Bayesian fit accepts (float64 holds ~16 digits).
MAX_SCALE_RATIO = 1e10
#: Condition number of the standardised data from which columns count as linearly dependent (an error
#: for 'full' and 'tied' covariances), and from which as nearly so (a warning: NUTS mixes poorly).
COLLINEAR_CONDITION = 1e6
NEAR_COLLINEAR_CONDITION = 1e3


def default_feature_names(n_features: int) -> tuple[str, ...]:
    """Names of the features of data without column names: ``x0, x1, ...``."""
    return tuple(f"x{d}" for d in range(n_features))


@dataclass(frozen=True, eq=False)
class CheckedData:
    """Data checked once at the public boundary: the values and the features' names.

    Attributes
    ----------
    values : ndarray of shape (n_samples, n_features)
        C-contiguous, finite float64.
    feature_names : tuple of str
        A DataFrame's column names, or ``x0, x1, ...`` (:func:`default_feature_names`).
    """

    values: np.ndarray
    feature_names: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    @property
    def named(self) -> bool:
        """Whether the feature names came with the data (a DataFrame's columns)."""
        return self.feature_names != default_feature_names(self.values.shape[1])


def checked_data(X, *, name: str = "X", min_samples: int = 1, n_features: int | None = None) -> CheckedData:
    """`X` checked by :func:`check_data`, with its feature names; a :class:`CheckedData` passes through
    (after the `min_samples` and `n_features` checks)."""
    if isinstance(X, CheckedData):
        _check_size(X.values, name, min_samples, n_features)
        return X
    names = feature_names_of(X, name=name)
    values = check_data(X, name=name, min_samples=min_samples, n_features=n_features)
    return CheckedData(values, names if names is not None else default_feature_names(values.shape[1]))


def feature_names_of(X, *, name: str = "X") -> tuple[str, ...] | None:
    """The names of `X`'s features, or None for data without names.

    A DataFrame's (pandas or Dask) column names, as strings, or a :class:`CheckedData`'s names when they came
    with its data; None for arrays, lists and an unnamed :class:`CheckedData`. Column names that repeat
    (as strings) are refused (:func:`check_unique_columns`).
    """
    if isinstance(X, CheckedData):
        return X.feature_names if X.named else None
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = tuple(str(c) for c in columns)
    check_unique_columns(names, name=name)
    return names


def check_unique_columns(names, *, name: str = "X") -> None:
    """Raise a ValueError naming the repeated column names, if any of `names` repeats."""
    names = [str(c) for c in names]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        raise ValueError(
            f"{name} must have distinct column names, one per feature; got the column(s) {repeated} more than "
            f"once (columns: {names}). Rename or drop the repeated columns, e.g. "
            f"{name} = {name}.loc[:, ~{name}.columns.duplicated()] to keep the first of each."
        )


def data_in_fit_order(X, feature_names, n_features: int, *, name: str = "X") -> np.ndarray:
    """`X` checked by :func:`check_data`, its columns in the order of a fit's `feature_names`.

    How a fit meets new data: the columns are matched as :func:`columns_in_fit_order` says, and `X` must
    then have `n_features` of them.
    """
    return check_data(columns_in_fit_order(X, feature_names, name=name), name=name, n_features=n_features)


def columns_in_fit_order(X, feature_names, *, name: str = "X"):
    """`X` with its columns in the order of a fit's `feature_names` (same kind of object, not checked).

    Where both have names (a DataFrame, or a named :class:`CheckedData`, and a fit made from one), columns
    are matched by name: the same columns in another order are put in the fit's order, and a missing or
    unknown column is refused with a ValueError naming it. Otherwise (an array, a list; or a fit whose
    `feature_names` is None, made from data without names) `X` is returned as it is, its columns to be
    taken by position.
    """
    given = feature_names_of(X, name=name)
    if feature_names is None or given is None or given == tuple(feature_names):
        return X
    feature_names = tuple(feature_names)
    missing = [f for f in feature_names if f not in given]
    unknown = [c for c in given if c not in feature_names]
    if missing or unknown:
        found = ", ".join(
            f"{what} {names}" for what, names in (("missing", missing), ("unknown", unknown)) if names
        )
        raise ValueError(
            f"{name} must have the fit's feature columns {list(feature_names)}; got columns {list(given)} "
            f"({found}). Select or rename the columns, e.g. {name}[{list(feature_names)}], or pass a NumPy "
            f"array with the columns in the fit's order."
        )
    order = [given.index(f) for f in feature_names]
    return CheckedData(X.values[:, order], feature_names) if isinstance(X, CheckedData) else X.iloc[:, order]


def check_data(X, *, name: str = "X", min_samples: int = 1, n_features: int | None = None) -> np.ndarray:
    """Return `X` as a C-contiguous float64 array of shape (n_samples, n_features).

    Accepts NumPy arrays, nested lists, pandas DataFrames, objects NumPy converts with ``__array__``, and
    :class:`CheckedData`; SciPy sparse input is refused (with how to densify it). A 1-D input is
    rejected rather than guessed at, because a vector is ambiguous (many samples of one feature, or one
    sample).
    """
    if isinstance(X, CheckedData):  # its values were checked when it was made
        return _check_size(X.values, name, min_samples, n_features)
    if _is_sparse(X):
        raise TypeError(
            f"{name} must be dense numeric data of shape (n_samples, n_features); got a SciPy sparse "
            f"{type(X).__name__} of shape {X.shape}, which bayes-gmm does not support (the fitted means and "
            f"covariances are dense anyway). Densify it first with {name}.toarray()."
        )
    if hasattr(X, "to_numpy") and hasattr(X, "dtypes") and hasattr(X.dtypes, "items"):  # pandas DataFrame
        check_unique_columns(X.columns, name=name)
        non_numeric = [str(c) for c, t in X.dtypes.items() if not _is_numeric_dtype(t)]
        if non_numeric:
            raise TypeError(
                f"{name} must contain only numeric columns; got non-numeric column(s) {non_numeric}. "
                f"Select the numeric columns first, e.g. {name}[[...numeric columns...]]."
            )
        X = X.to_numpy()
    if hasattr(X, "to_numpy"):  # pandas Series: its values, so the 1-D check below explains the fix
        X = X.to_numpy()
    if isinstance(X, np.ma.MaskedArray):
        X = _unmasked(X, name)
    if X is None:
        raise TypeError(
            f"{name} must be numeric data of shape (n_samples, n_features); got None. Pass the data, e.g. a "
            f"NumPy array or a pandas DataFrame of numeric columns."
        )
    try:
        # Converted first: an array-like may support conversion (__array__) and no other NumPy function.
        X = np.asarray(X)
    except ValueError as exc:  # ragged nested lists
        raise TypeError(
            f"{name} must be numeric data of shape (n_samples, n_features); got a nested sequence NumPy cannot "
            f"make into one array ({' '.join(str(exc).split()[:12])} ...). Give every row the same length."
        ) from None
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
    if arr.size and np.abs(arr).max() > MAX_ABS_VALUE:
        row, column = np.unravel_index(np.abs(arr).argmax(), arr.shape)
        big = abs(arr[row, column])
        raise ValueError(
            f"{name} has values too large for float64 arithmetic: {arr[row, column]:.3g} at row {row}, column "
            f"{column} (variances of values beyond {MAX_ABS_VALUE:.0e} overflow). Rescale the data first, e.g. "
            f"divide that column by 1e{int(np.floor(np.log10(big)))}, and scale the results back."
        )
    return _check_size(np.ascontiguousarray(arr), name, min_samples, n_features)


def _check_size(arr: np.ndarray, name: str, min_samples: int, n_features: int | None) -> np.ndarray:
    """`arr` (2-D) if it has at least `min_samples` rows and, when given, `n_features` columns."""
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
    return arr


def _is_sparse(X) -> bool:
    """Whether `X` is a SciPy sparse array or matrix (without importing SciPy when it is not loaded)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def _unmasked(X: np.ma.MaskedArray, name: str) -> np.ndarray:
    """The data of a masked array that masks nothing; a masked value is an error (masks are not used)."""
    mask = np.ma.getmaskarray(X)
    if not mask.any():
        return np.ma.getdata(X)
    rows = (
        np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1)) if mask.ndim > 1 else np.flatnonzero(mask)
    )
    raise ValueError(
        f"{name} is a NumPy masked array with {int(mask.sum())} masked value(s) in {len(rows)} row(s) (first: "
        f"row {rows[0]}); bayes-gmm does not read masks, so the hidden values would be fitted as data. Drop "
        f"the masked rows first, e.g. {name} = {name}[~np.ma.getmaskarray({name}).any(axis=1)].data, or fill "
        f"them with {name}.filled(value)."
    )


def check_fit_data(X, n_components: int, covariance_type: str, *, name: str = "X") -> None:
    """Refuse, before any sampling, data on which a Bayesian mixture's posterior is degenerate.

    `X` is data as :func:`checked_data` takes it (best, what it returned: the data are not checked twice). Raises a ValueError naming the problem and a fix for: fewer
    samples than the covariance type needs per component, fewer distinct rows than that, a constant
    column, a column whose spread underflows float64, columns whose scales differ by more than
    :data:`MAX_SCALE_RATIO`, and (``full``, ``tied``) linearly dependent columns (condition number of the
    standardised data above :data:`COLLINEAR_CONDITION`). Warns (UserWarning) when columns are nearly
    dependent (above :data:`NEAR_COLLINEAR_CONDITION`) or when half the rows or more repeat other rows:
    components can then collapse onto repeated points or a thin slice of the data, which shows as
    divergences and poor mixing.
    """
    X = checked_data(X, name=name)
    n_samples, n_features = X.shape
    k, d = n_components, n_features
    # How columns are named in messages: 'waiting' for a DataFrame's column, 1 for an array's.
    labels = [repr(f) for f in X.feature_names] if X.named else [str(j) for j in range(d)]
    X = X.values
    structure = get_structure(covariance_type)
    structure.check_features(d)
    needed, per = structure.min_samples(k, d)
    fix = (
        "Use fewer components, fewer features, or covariance_type='diag' or 'spherical'."
        if structure.correlated
        else "Use fewer components."
    )
    if n_samples < needed:
        raise ValueError(
            f"{name} has {n_samples} samples of {d} feature(s), too few for {k} component(s) with "
            f"covariance_type={covariance_type!r}: that needs at least {per}, or a component's covariance is "
            f"singular. {fix}"
        )
    distinct = _n_distinct_rows(X)
    if distinct < needed:
        raise ValueError(
            f"{name} has only {distinct} distinct row(s) among {n_samples}, too few for {k} component(s) with "
            f"covariance_type={covariance_type!r}: that needs {per}, or components collapse onto repeated "
            f"points (the posterior density is unbounded there). {fix}"
        )
    sd = _column_sd(X)
    constant = np.flatnonzero(np.ptp(X, axis=0) == 0)
    if constant.size:
        j = constant[0]
        raise ValueError(
            f"{name}'s column {labels[j]} is constant (every value is {X[0, j]:.6g}): a mixture component "
            f"cannot have a spread of zero (the posterior piles up there). Drop the column."
        )
    if sd.min() < MIN_COLUMN_SD:
        j = int(sd.argmin())
        raise ValueError(
            f"{name}'s column {labels[j]} varies on a scale of {sd[j]:.3g}, below {MIN_COLUMN_SD:.0e}: its "
            f"variance underflows float64. Rescale it first, e.g. multiply it by 1e{-int(np.floor(np.log10(max(sd[j], 1e-300))))}."
        )
    ratio = sd.max() / sd.min()
    if ratio > MAX_SCALE_RATIO:
        small, large = int(sd.argmin()), int(sd.argmax())
        raise ValueError(
            f"{name}'s columns differ in scale by a factor of {ratio:.1e} (column {labels[small]} has "
            f"standard deviation {sd[small]:.3g}, column {labels[large]} {sd[large]:.3g}); beyond "
            f"{MAX_SCALE_RATIO:.0e} one covariance matrix cannot hold both in float64. Standardise the "
            f"columns first, e.g. X = (X - X.mean(axis=0)) / X.std(axis=0), and scale the results back."
        )
    if structure.correlated and d > 1:
        z = (X - X.mean(axis=0)) / sd
        _, singular, vt = np.linalg.svd(z / np.sqrt(n_samples), full_matrices=False)
        condition = singular[0] / singular[-1] if singular[-1] > 0 else np.inf
        if condition >= NEAR_COLLINEAR_CONDITION:
            loading = np.abs(vt[-1])
            involved = ", ".join(labels[j] for j in np.flatnonzero(loading >= 0.1 * loading.max()))
            what = (
                f"{name}'s columns {involved} are linearly dependent (one is a linear function of the others "
                f"to within {1 / condition:.1e} of the data's spread"
            )
            if condition >= COLLINEAR_CONDITION:
                raise ValueError(
                    f"{what}), so every {covariance_type!r} covariance fitted to them is singular and the "
                    f"posterior has no proper density. Drop all but one of these columns, or use "
                    f"covariance_type='diag' or 'spherical'."
                )
            warnings.warn(
                f"{what}, condition number {condition:.1e}): the covariances are nearly singular, so NUTS "
                f"mixes poorly. Consider dropping all but one of these columns, or covariance_type='diag'.",
                UserWarning,
                stacklevel=3,
            )
    if 2 * distinct <= n_samples:
        warnings.warn(
            f"{name} has only {distinct} distinct rows among {n_samples}: components can collapse onto "
            f"repeated points (the posterior density is unbounded there), which shows as divergences and "
            f"poor mixing. Remove the duplicates or add measurement noise if the values are rounded.",
            UserWarning,
            stacklevel=3,
        )


def warn_if_regularisation_dominates(X: np.ndarray, reg_covar: float, *, name: str = "X") -> None:
    """Warn (UserWarning) when `reg_covar` is not small next to some column's variance.

    EM adds `reg_covar` to every covariance's diagonal, in the data's units: a column whose variance is
    below ten times that has its spread set by the regularisation, so its structure is lost.
    """
    variance = np.square(_column_sd(X))
    small = np.flatnonzero((np.ptp(X, axis=0) > 0) & (variance < 10 * reg_covar))
    if small.size:
        j = small[0]
        warnings.warn(
            f"{name}'s column {j} has variance {variance[j]:.3g}, below 10 x reg_covar ({reg_covar:g}): the "
            f"regularisation, not the data, sets that column's spread, so EM ignores its structure. "
            f"Standardise the columns, e.g. X = (X - X.mean(axis=0)) / X.std(axis=0), or lower reg_covar.",
            UserWarning,
            stacklevel=3,
        )


def _column_sd(X: np.ndarray) -> np.ndarray:
    """Column standard deviations, computed on columns scaled to at most 1 so that squares do not underflow."""
    scale = np.abs(X).max(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return (X / scale).std(axis=0) * scale


def _n_distinct_rows(X: np.ndarray) -> int:
    rows = np.ascontiguousarray(X + 0.0)  # + 0.0 turns -0.0 into 0.0, so both count as one value
    return len(np.unique(rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))))


def check_positive_float(value, name: str, *, example: str = "") -> float:
    """Return `value` as a finite float > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}.{example}")
    return float(value)


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
    """Return the name of `covariance_type` if it is a known structure (see :data:`COVARIANCE_TYPES`)."""
    return get_structure(covariance_type).name


def check_choice(value, name: str, choices) -> str:
    """Return `value` if it is one of `choices`, else raise a ValueError naming the parameter and the fix
    (the closest choice, as spelled without case, "-" and "_", when one is close)."""
    if value not in choices:
        raise ValueError(
            f"{name} must be one of {tuple(choices)}; got {value!r}. {_closest_choice(value, name, choices)}"
        )
    return value


def _closest_choice(value, name: str, choices) -> str:
    def plain(text) -> str:
        return str(text).lower().replace("-", "").replace("_", "")

    choices = list(choices)
    same = [c for c in choices if plain(c) == plain(value)]
    close = same or difflib.get_close_matches(plain(value), [plain(c) for c in choices], n=1, cutoff=0.6)
    if close:
        best = same[0] if same else choices[[plain(c) for c in choices].index(close[0])]
        return f"Did you mean {name}={best!r}?"
    return f"Pass one of them, e.g. {name}={choices[0]!r}."


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


def check_sample_weight(sample_weight, n_samples: int, n_components: int = 1) -> np.ndarray | None:
    """`sample_weight` as a C-contiguous float64 array of `n_samples` finite weights >= 0, or None.

    Raises a TypeError or ValueError that names sample_weight, says what was expected, what was given and
    how to fix it; at least `n_components` weights must be positive.
    """
    if sample_weight is None:
        return None
    expected = f"a 1-D array of n_samples = {n_samples} finite, non-negative weights (one per row of X)"
    if hasattr(sample_weight, "to_numpy"):  # pandas Series
        sample_weight = sample_weight.to_numpy()
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"sample_weight must be {expected}; got values that cannot be converted to float ({exc}). "
            f"Pass numbers, e.g. np.ones(len(X))."
        ) from None
    if weights.shape != (n_samples,):
        raise ValueError(
            f"sample_weight must be {expected}; got shape {weights.shape}. Pass one weight per row of X, "
            f"e.g. np.ones({n_samples})"
            + (" (flatten a column with .ravel())." if weights.ndim == 2 else ".")
        )
    finite = np.isfinite(weights)
    if not finite.all():
        first = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"sample_weight must be {expected}; got {int((~finite).sum())} NaN or infinite weight(s), first at "
            f"index {first} ({weights[first]}). Replace them with finite weights, or use 0 to leave a row out."
        )
    negative = weights < 0
    if negative.any():
        first = int(np.flatnonzero(negative)[0])
        raise ValueError(
            f"sample_weight must be {expected}; got {int(negative.sum())} negative weight(s), first at index "
            f"{first} ({weights[first]:g}). A weight counts how many points a row stands for: use 0 to leave "
            f"a row out."
        )
    n_positive = int(np.count_nonzero(weights))
    if n_positive < n_components:
        raise ValueError(
            f"sample_weight must give at least n_components = {n_components} rows a positive weight (one per "
            f"mixture component); got {n_positive} positive weight(s), the other {n_samples - n_positive} zero. Give "
            f"more rows a weight > 0 or use "
            f"fewer components."
        )
    return np.ascontiguousarray(weights)


def is_dask_collection(X) -> bool:
    """Whether `X` is a Dask collection (without importing Dask when it is not loaded)."""
    if "dask" not in sys.modules:
        return False
    import dask

    return dask.is_dask_collection(X)


#: What every ``random_seed`` accepts (see :func:`seed_sequence`), for docstrings and messages.
RANDOM_SEED_TYPES = "None, an int >= 0, a numpy.random.SeedSequence or a numpy.random.Generator"


def seed_sequence(random_seed, *, name: str = "random_seed") -> np.random.SeedSequence:
    """`random_seed` as a SeedSequence: how every random entry point of bayes-gmm reads its seed.

    Every public function or method with a `random_seed` takes the same four kinds of seed:

    - None: fresh entropy from the operating system, so each call gives a different result;
    - an int >= 0: the same int gives the same result;
    - a ``numpy.random.SeedSequence``: used as it is (never spawned from, so it is not changed), and its
      child streams are numbered by position from its ``spawn_key``; the same SeedSequence gives the same
      result;
    - a ``numpy.random.Generator``: a function that needs several streams seeds them from one integer
      drawn from it; one that needs a single stream draws from it directly (:func:`random_generator`).
      Either way the generator advances, so reusing one generator object gives a new result each time,
      while a generator made afresh from the same seed (``np.random.default_rng(0)``) gives the same.

    Anything else (a float, a string, a legacy ``RandomState``) raises a TypeError saying so; a negative
    int raises a ValueError.
    """
    if isinstance(random_seed, np.random.SeedSequence):
        return random_seed
    if isinstance(random_seed, np.random.Generator):
        return np.random.SeedSequence(int(random_seed.integers(2**63)))
    if random_seed is None:
        return np.random.SeedSequence()
    if isinstance(random_seed, bool) or not isinstance(random_seed, numbers.Integral):
        raise TypeError(
            f"{name} must be {RANDOM_SEED_TYPES}; got {random_seed!r:.60} of type {type(random_seed).__name__}. "
            f"Pass e.g. {name}=0 or {name}=np.random.default_rng(0)."
        )
    if random_seed < 0:
        raise ValueError(f"{name} must be {RANDOM_SEED_TYPES}; got {random_seed}. Pass e.g. {name}=0.")
    return np.random.SeedSequence(int(random_seed))


def child_seed(root: np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    """The stream of `root` numbered `key` (a position, not a spawn: `root` is not changed).

    ``child_seed(root, i)`` equals the ``i``-th child of ``root.spawn`` for a root that never spawned.
    """
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, *key), pool_size=root.pool_size)


def random_generator(random_seed, *, name: str = "random_seed") -> np.random.Generator:
    """A Generator for `random_seed` (see :func:`seed_sequence`): a Generator itself, else one seeded from it.

    An int gives the stream of ``np.random.default_rng(int)``.
    """
    if isinstance(random_seed, np.random.Generator):
        return random_seed
    return np.random.default_rng(seed_sequence(random_seed, name=name))
