"""A Bayesian GMM fit at any size: NUTS on a weighted lightweight coreset of the data."""

from __future__ import annotations

import inspect

import pandas as pd

from bayes_gmm._validation import (
    check_choice,
    check_covariance_type,
    check_n_components,
    check_positive_int,
    child_seed,
    is_dask_collection,
    seed_sequence,
)
from bayes_gmm.coreset import lightweight_coreset
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.inference._fit import METHODS, fit_gmm
from bayes_gmm.models._covariance_priors import check_bayesian_covariance_type

#: Default number of coreset draws m (see :func:`fit_coreset_gmm`, Notes, for the reason).
DEFAULT_CORESET_SIZE = 10_000
#: Options of :func:`fit_gmm` that a coreset fit sets itself.
_SET_HERE = ("sample_weight", "log_likelihood")


def fit_coreset_gmm(
    X,
    n_components: int,
    *,
    coreset_size: int = DEFAULT_CORESET_SIZE,
    feature_names=None,
    em_init: str = "hc",
    em_n_init: int = 10,
    random_seed=None,
    **fit_options,
):
    """Fit a Bayesian GMM to data of any size by NUTS on a weighted lightweight coreset.

    A lightweight coreset (Bachem, Lucic & Krause 2018; :func:`bayes_gmm.coreset.lightweight_coreset`) of
    `coreset_size` points is drawn in two passes over `X` (chunk by chunk for a Dask array, which is never
    loaded whole), and :func:`fit_gmm` samples the posterior whose likelihood is the coreset's weighted
    likelihood ``sum_j w_j log p(c_j | theta)``, an unbiased estimate of the full-data log-likelihood
    (Lucic et al. 2018, "Training Gaussian mixture models at scale via coresets"). One NUTS gradient then
    costs `coreset_size` point evaluations instead of n.

    Parameters
    ----------
    X : array-like or dask.array.Array of shape (n_samples, n_features)
        The data; a pandas or Dask DataFrame keeps its column names as the ``feature`` coordinate.
    n_components : int
    coreset_size : int, default 10_000
        Number of coreset draws m; must be below the number of rows (fit small data with
        :func:`fit_gmm`). See Notes for the default.
    feature_names : sequence of str, optional
        Names of the features (default: a DataFrame's columns, else ``x0, x1, ...``).
    em_init, em_n_init
        Initialisation and number of starts of the weighted EM fit on the coreset that starts the chains
        and is the relabelling reference (see :func:`bayes_gmm.em_baseline.fit_em`); ignored when
        ``em`` is given.
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seeds the coreset, EM and the fit; the same seed (and, for Dask, the same chunks) gives the same
        result (the accepted kinds: see :func:`bayes_gmm._validation.seed_sequence`).
    **fit_options
        Passed to :func:`fit_gmm` (``covariance_type``, ``draws``, ``tune``, ``chains``, ``backend``,
        ``em``, ...), except ``sample_weight`` and ``log_likelihood``, which are set here.

    Returns
    -------
    xarray.DataTree
        As :func:`fit_gmm`, with the coreset points as ``observed_data`` and their weights as
        ``constant_data["sample_weight"]``, no ``log_likelihood`` group, and ``attrs`` ``coreset_size`` (m),
        ``n_source`` (rows of `X`) and ``coreset_weight_sum``. Membership of all rows:
        ``membership_probabilities(fit, X)`` for in-memory `X`.

    Raises
    ------
    ValueError
        For bad arguments, before the coreset is drawn; for data on which the fit is degenerate (see
        :func:`fit_gmm`), after it.

    Notes
    -----
    **How close the posterior is to the full-data one.** The coreset likelihood has the total weight of
    the data (the weights sum to about n), so the posterior has the full-data posterior's width; its
    centre moves with the sampling error of the coreset, which scales like ``1 / sqrt(m)`` of the data's
    spread, not ``1 / sqrt(n)``. Measured with ``benchmarks/scale_coreset.py`` (2-D, K=3, full
    covariances, m = 10,000, 2 chains x 1000 draws): on 1e5 rows, every posterior mean (weights, means,
    covariance entries) was within 0.019 data standard deviations of the full-data NUTS posterior mean,
    which is up to 7 full-data posterior SDs, and the posterior SDs were 0.88 to 1.06 times the
    full-data ones; at 1e6 and 1e7 rows the posterior means were within 0.024 and 0.011 data SDs of EM
    on all 1e7 rows, while the posterior SDs shrink like ``1/sqrt(n)`` (0.0002 to 0.001 at 1e7), so
    there the offset is tens of posterior SDs. Read a coreset posterior as the full-data posterior
    shifted by an error of order ``1/sqrt(m)`` of the data's spread: its credible intervals have the
    full-data width and do not include the coreset's own error; raise `coreset_size` to shrink it.

    **Default size.** m = 10,000 keeps that error near 1 to 2% of the data's spread (a cluster with
    weight 0.1 still gets at least 500 draws, half of them from the uniform part of q), while the NUTS fit stays cheap whatever n is: in
    the benchmark above, 15 to 18 s per fit on 2 cores at 1e6 and 1e7 rows (the two passes over 1e7
    rows took under half a second), plus about 10 s to compile the weighted model once per process.

    **WAIC and LOO.** The pointwise log-likelihood of a coreset fit would be of the weighted coreset
    points, which are no sample of held-out data (leaving out a point that stands for 1000 rows is not
    leaving out one observation), so none is stored and ``loo``/``select_k`` do not apply. Use
    :func:`bayes_gmm.inference.loo_subsampled` with the full data `X`: it treats the coreset posterior
    as the full-data posterior (an approximation as good as the closeness above) and estimates the
    full-data elpd from a subsample of the rows.
    """
    n_components = check_n_components(n_components)
    coreset_size = check_positive_int(coreset_size, "coreset_size")
    _check_fit_options(fit_options)
    columns = getattr(X, "columns", None)
    if feature_names is None and columns is not None:
        feature_names = [str(c) for c in columns]
    if is_dask_collection(X):
        from bayes_gmm.em_baseline._dask import as_dask_array

        X = as_dask_array(X, n_components)[0]  # known row counts (one pass if unknown), numeric columns
    n_rows = X.shape[0] if hasattr(X, "shape") else len(X)
    if not coreset_size < n_rows:
        raise ValueError(
            f"coreset_size must be smaller than the number of rows of X ({n_rows}); got {coreset_size}. "
            f"A coreset only pays off for large data: fit these rows directly with fit_gmm, or pass a "
            f"smaller coreset_size."
        )
    root = seed_sequence(random_seed)
    coreset_seed, em_seed, fit_seed = (child_seed(root, i) for i in range(3))
    coreset = lightweight_coreset(X, coreset_size, random_seed=coreset_seed)
    points = coreset.points
    if feature_names is not None:
        feature_names = [str(name) for name in feature_names]
        if len(feature_names) != points.shape[1]:
            raise ValueError(
                f"feature_names must name the {points.shape[1]} features of X; got {len(feature_names)} name(s) "
                f"{feature_names}. Pass one name per column, or leave feature_names as None."
            )
        points = pd.DataFrame(points, columns=feature_names)
    if fit_options.get("em") is None:
        fit_options["em"] = fit_em(
            points,
            n_components,
            covariance_type=fit_options.get("covariance_type", "full"),
            init=em_init,
            n_init=em_n_init,
            sample_weight=coreset.weights,
            random_seed=int(em_seed.generate_state(1)[0]),
        )
    fit = fit_gmm(
        points,
        n_components,
        sample_weight=coreset.weights,
        random_seed=int(fit_seed.generate_state(1)[0]),
        **fit_options,
    )
    fit.attrs.update(
        coreset_size=coreset.size,
        n_source=coreset.n_source,
        coreset_weight_sum=float(coreset.weights.sum()),
        coreset_method="lightweight (Bachem, Lucic & Krause 2018)",
    )
    return fit


def _check_fit_options(options: dict) -> None:
    """Refuse options fit_gmm does not know, or that are set here, before the coreset is drawn."""
    known = set(inspect.signature(fit_gmm).parameters) - {"X", "n_components", "random_seed"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"fit_coreset_gmm got unknown options {unknown}; it passes on those of fit_gmm: {sorted(known)}."
        )
    set_here = [name for name in _SET_HERE if name in options]
    if set_here:
        raise ValueError(
            f"fit_coreset_gmm sets {set_here} itself (the coreset's weights; no pointwise log-likelihood of "
            f"weighted points); remove them from the options."
        )
    if "method" in options:
        check_choice(options["method"], "method", METHODS)
    if "covariance_type" in options:
        check_bayesian_covariance_type(check_covariance_type(options["covariance_type"]))
