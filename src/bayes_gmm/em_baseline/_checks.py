"""Checks of fit_em's options and starting values, with messages that say what to change."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bayes_gmm._validation import check_choice, check_nonnegative_float, check_positive_int
from bayes_gmm.covariance import get_structure
from bayes_gmm.em_baseline._init import INIT_METHODS
from bayes_gmm.em_baseline._result import EMResult


def check_options(init, n_init, max_iter, tol, reg_covar, initial_params, initial_resp) -> dict:
    """fit_em's scalar options, checked (in memory and on Dask alike)."""
    check_choice(init, "init", INIT_METHODS)
    options = {
        "init": init,
        "n_init": check_positive_int(n_init, "n_init"),
        "max_iter": check_positive_int(max_iter, "max_iter", minimum=0),
        "tol": check_nonnegative_float(tol, "tol"),
        "reg_covar": check_nonnegative_float(reg_covar, "reg_covar"),
    }
    if initial_params is not None and initial_resp is not None:
        raise ValueError("Pass at most one of initial_params and initial_resp; got both.")
    if (initial_params is not None or initial_resp is not None) and options["n_init"] != 1:
        raise ValueError(
            f"n_init must be 1 when initial_params or initial_resp is given (every start would be the same); "
            f"got n_init={options['n_init']}. Pass n_init=1."
        )
    return options


def check_initial_params(params, covariance_type, n_components, n_features):
    if isinstance(params, EMResult):
        if get_structure(params.covariance_type) is not get_structure(covariance_type):  # VVV is full
            raise ValueError(
                f"initial_params was fitted with covariance_type={params.covariance_type!r} but "
                f"covariance_type={covariance_type!r} was requested. Use the same covariance_type."
            )
        params = {"weights": params.weights, "means": params.means, "covariances": params.covariances}
    if not isinstance(params, Mapping) or not {"weights", "means", "covariances"} <= set(params):
        raise ValueError(
            "initial_params must be an EMResult or a mapping with keys 'weights', 'means' and "
            f"'covariances'; got {type(params).__name__}"
            + (f" with keys {sorted(params)}" if isinstance(params, Mapping) else "")
            + "."
        )
    structure = get_structure(covariance_type)
    expected = {
        "weights": (n_components,),
        "means": (n_components, n_features),
        "covariances": structure.shape(n_components, n_features),
    }
    arrays = {}
    for key, shape in expected.items():
        value = np.asarray(params[key], dtype=np.float64)
        if value.shape != shape:
            raise ValueError(
                f"initial_params[{key!r}] must have shape {shape} for {n_components} components, "
                f"{n_features} features and covariance_type={covariance_type!r}; got shape {value.shape}."
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"initial_params[{key!r}] must be finite; it contains NaN or infinity.")
        arrays[key] = value
    weights = arrays["weights"]
    if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0, rtol=1e-6):
        raise ValueError(
            f"initial_params['weights'] must be non-negative and sum to 1; got sum {weights.sum():.6g}. "
            "Normalise them with weights / weights.sum()."
        )
    _check_symmetric_positive_definite(arrays["covariances"], structure, n_components, n_features)
    structure.precision_cholesky(arrays["covariances"])  # and positive definite to working precision
    return arrays["weights"], arrays["means"], arrays["covariances"]


def _check_symmetric_positive_definite(covariances, structure, n_components, n_features):
    """Raise a ValueError unless every matrix of initial_params' `covariances` is symmetric (to
    scikit-learn's tolerance, ``np.allclose``) and positive definite.

    A Cholesky factorisation reads one triangle only, so a non-symmetric matrix would pass unseen.
    """
    full = structure.to_full(covariances, n_components, n_features)
    transposed = np.swapaxes(full, -1, -2)
    expected = "initial_params['covariances'] must be symmetric, positive-definite"

    def which(k):
        return "the tied covariance" if structure.name == "tied" else f"component {k}'s covariance"

    for k in range(n_components):
        if not np.allclose(full[k], transposed[k]):
            i, j = np.unravel_index(np.argmax(np.abs(full[k] - transposed[k])), full[k].shape)
            raise ValueError(
                f"{expected}; {which(k)} is not symmetric (entry [{i}, {j}] is {full[k][i, j]:.6g} but "
                f"[{j}, {i}] is {full[k][j, i]:.6g}). Pass whole symmetric matrices (not one triangle), "
                f"e.g. (C + C.T) / 2 for each matrix C."
            )
    smallest = np.linalg.eigvalsh((full + transposed) / 2.0).min(axis=-1)
    if np.any(smallest <= 0.0):
        k = int(np.argmin(smallest))
        variances = structure.name in ("diag", "spherical")
        raise ValueError(
            f"{expected}; {which(k)} has "
            + (f"a variance of {smallest[k]:.6g}" if variances else f"eigenvalue {smallest[k]:.6g}")
            + " <= 0. Pass "
            + ("positive variances" if variances else "covariances with positive eigenvalues")
            + ", e.g. from the data's covariance np.cov(X, rowvar=False), or start from initial_resp instead."
        )


def check_initial_resp(resp, n_samples, n_components):
    resp = np.asarray(resp, dtype=np.float64)
    if resp.shape != (n_samples, n_components):
        raise ValueError(
            f"initial_resp must have shape (n_samples, n_components) = {(n_samples, n_components)}; "
            f"got {resp.shape}."
        )
    if not np.all(np.isfinite(resp)) or np.any(resp < 0) or np.any(resp.sum(axis=1) <= 0):
        raise ValueError(
            "initial_resp must be finite and non-negative with a positive sum in every row; "
            "pass probabilities (e.g. one-hot labels)."
        )
    return resp / resp.sum(axis=1, keepdims=True)
