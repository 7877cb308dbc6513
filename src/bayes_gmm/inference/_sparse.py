"""An overfitted ("sparse") mixture: more components than needed, and a prior that empties the extra ones.

With a symmetric Dirichlet prior of small concentration ``e0`` on the weights, the posterior puts almost
no weight on components the data do not need (Rousseau & Mengersen 2011: extra components empty when
``e0 < d / 2``, ``d`` the number of parameters per component; Malsiner-Walli, Frühwirth-Schnatter & Grün
2016). The number of clusters is then the number of *non-empty* components of an allocation drawn from each
posterior draw's responsibilities, and its posterior distribution answers "how many clusters?" in one fit.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import xarray as xr

from bayes_gmm._validation import check_covariance_type, check_data, check_n_components, seed_sequence
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference._arviz import convergence_diagnostics
from bayes_gmm.inference._fit import fit_gmm
from bayes_gmm.inference._membership import draw_responsibilities
from bayes_gmm.inference._verdict import record_verdict
from bayes_gmm.models import GMMPriors

#: Default Dirichlet concentration: small enough to empty unneeded components (below d/2 for every
#: covariance type and dimension), large enough that NUTS can still move the empty components' weights.
DEFAULT_CONCENTRATION = 0.1
#: NUTS acceptance target of a sparse fit unless given: the empty components wander over their prior, a
#: geometry where 0.9 and 0.95 left a few divergent transitions in 800 (3 clusters, 6 components, 3 seeds)
#: and 0.99 none.
DEFAULT_TARGET_ACCEPT = 0.99
#: Relative size of the covariance regularisation of the EM start (an overfitted EM fit has tiny components).
_START_REG = 1e-3


def fit_sparse_gmm(
    X,
    max_components: int = 10,
    *,
    concentration: float = DEFAULT_CONCENTRATION,
    covariance_type: str = "full",
    random_seed=None,
    **fit_options,
):
    """Fit an overfitted mixture whose sparse weight prior empties unneeded components.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    max_components : int, default 10
        Number of components in the model; choose more than the number of clusters you expect.
    concentration : float, default 0.1
        Concentration ``e0`` of the symmetric Dirichlet prior on the weights. Smaller values empty extra
        components more decisively but make the empty components' weights harder for NUTS to explore.
    covariance_type : str, default "full"
        "full", "tied", "diag" or "spherical", or mclust's name of a model with a Bayesian prior: "VVV",
        "EEE", "VVI", "VII" (the same four), "EII", "EEI"; "E" or "V" for one feature.
    random_seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Seeds the EM start, the sampler and the drawn allocations; the same seed gives the same result.
    **fit_options
        Passed to :func:`fit_gmm` (``draws``, ``tune``, ``chains``, ``target_accept``, ``backend``, ...);
        ``target_accept`` defaults to 0.99 here (:data:`DEFAULT_TARGET_ACCEPT`).
        The empty components make the posterior hard to sample (long trajectories); ``backend="nutpie"``
        is much faster here. On galaxies (two cores), 8 components with 4 x (1000 tune + 1000 draws) took
        2 min with nutpie, while PyMC's sampler needed 6 min for only 6 components and 4 x (500 + 200).
        Other prior settings can be given as ``priors=GMMPriors(...)``; its weights concentration is
        replaced by `concentration`.

    Returns
    -------
    xarray.DataTree
        The fit, as from :func:`fit_gmm`, with ``posterior["n_clusters"]`` (chain, draw): the number of
        non-empty components in an allocation drawn from that draw's responsibilities. ``attrs`` add
        ``sparse_concentration`` and ``n_clusters_rhat``. Summarise it with
        :func:`n_clusters_distribution`. Parameter R-hat values of empty components are not meaningful
        (those components wander over the prior), so the convergence verdict (``attrs["converged"]``,
        ``convergence_problems``) of a sparse fit is instead that no transition diverged and that the
        chains agree about ``n_clusters`` (its R-hat at most 1.05); a
        :class:`~bayes_gmm.exceptions.ConvergenceWarning` is raised when they do not.

    Raises
    ------
    ValueError
        If `concentration` is not a positive number, or `max_components` exceeds the number of samples.
    """
    max_components = check_n_components(max_components)
    X = check_data(X, min_samples=max_components)
    covariance_type = check_covariance_type(covariance_type)
    concentration = float(concentration)
    if not np.isfinite(concentration) or concentration <= 0:
        raise ValueError(
            f"concentration must be a finite number > 0; got {concentration!r}. Use e.g. 0.1 (smaller "
            f"values empty extra components more decisively)."
        )
    em_seed, fit_seed, allocation_seed = seed_sequence(random_seed).generate_state(3)
    reg_covar = _START_REG * float(X.var(axis=0).mean())
    em = fit_em(
        X,
        max_components,
        covariance_type=covariance_type,
        n_init=10,
        reg_covar=reg_covar,
        random_seed=int(em_seed),
    )
    fit_options.setdefault("target_accept", DEFAULT_TARGET_ACCEPT)
    priors = fit_options.pop("priors", None) or GMMPriors()
    priors = replace(priors, weights_concentration=concentration)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        idata = fit_gmm(
            X,
            max_components,
            covariance_type=covariance_type,
            priors=priors,
            em=em,
            random_seed=int(fit_seed),
            **fit_options,
        )
    resp = draw_responsibilities(idata)
    counts = _occupied_components(resp, np.random.default_rng(allocation_seed))
    shape = (idata.posterior.sizes["chain"], idata.posterior.sizes["draw"])
    idata.posterior["n_clusters"] = xr.DataArray(counts.reshape(shape), dims=("chain", "draw"))
    idata.attrs["sparse_concentration"] = concentration
    if shape[0] > 1:
        # Every draw agreeing on one number of clusters is perfect agreement (ArviZ's R-hat is undefined).
        constant = np.all(counts == counts[0])
        rhat = 1.0 if constant else convergence_diagnostics(idata.posterior, ["n_clusters"])["rhat_max"]
        idata.attrs["n_clusters_rhat"] = rhat
    record_verdict(idata)  # judged as a sparse fit: divergences and the R-hat of n_clusters
    return idata


def _occupied_components(resp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Number of distinct components in one allocation z_i ~ Categorical(resp[s, i]) per draw s."""
    u = rng.random(resp.shape[:2])[..., None]
    allocation = np.minimum((np.cumsum(resp, axis=-1) < u).sum(axis=-1), resp.shape[-1] - 1)
    occupied = np.zeros((resp.shape[0], resp.shape[-1]), dtype=bool)
    np.put_along_axis(occupied, allocation, True, axis=1)
    return occupied.sum(axis=1)


def n_clusters_distribution(idata) -> pd.Series:
    """Posterior probability of each number of non-empty components, from :func:`fit_sparse_gmm`.

    Parameters
    ----------
    idata : xarray.DataTree
        A fit from :func:`fit_sparse_gmm` (its posterior has ``n_clusters``).

    Raises
    ------
    ValueError
        If `idata` has no posterior ``n_clusters``.

    Returns
    -------
    pandas.Series
        Index ``n_clusters`` (1 .. max_components), values summing to 1 (zeros included).
    """
    if "n_clusters" not in idata.posterior:
        raise ValueError(
            "idata has no posterior 'n_clusters'; it must come from fit_sparse_gmm(X, max_components)."
        )
    counts = idata.posterior["n_clusters"].to_numpy().ravel()
    index = pd.RangeIndex(1, idata.posterior.sizes["component"] + 1, name="n_clusters")
    return pd.Series(
        np.bincount(counts, minlength=index.stop)[1:] / counts.size, index=index, name="probability"
    )
