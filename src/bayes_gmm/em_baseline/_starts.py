"""The starts fit_em runs EM from: which ones, in which order, and their parameters.

A start is named by ``(method, transform)``: the method is one of :data:`INIT_METHODS`, and the transform
the hierarchical clustering's (:data:`~bayes_gmm.em_baseline._hc.HC_TRANSFORMS`; None for the others).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from bayes_gmm._validation import child_seed
from bayes_gmm.em_baseline._hc import HC_TRANSFORMS, hc_start
from bayes_gmm.em_baseline._init import initial_responsibilities, quantile_labels
from bayes_gmm.em_baseline._mstep import parameters_from_responsibilities
from bayes_gmm.em_baseline._result import EMResult
from bayes_gmm.exceptions import IllConditionedCovarianceError

#: With ``init="hc"`` or ``"kmeans"``, this many candidate starts are screened per start that runs to
#: convergence ...
SCREENED_PER_RUN = 4
#: ... each by at most this many EM updates (the emEM strategy of Biernacki, Celeux & Govaert 2003).
SCREENING_ITERATIONS = 10
#: The methods whose first start is followed by screened k-means++ starts.
SCREENED_METHODS = ("hc", "kmeans")
#: The hierarchical start runs EM as mclust does, each iterative M-step (VEI, VEE, EVE, VVE, VEV) iterated
#: to convergence (tol 1e-8, at most this many inner iterations, warm-started from the last covariances)
#: rather than the 10 of a generalised EM step: from the same start the two follow different paths and can
#: end at different maxima (crabs, EVE, K = 6: 25 log-likelihood units apart; 30 and 100 iterations reach
#: the same maxima on the test fixtures, 100 takes 10% longer).
HC_INNER_ITERATIONS = 30


def spawn_generators(root: np.random.SeedSequence, n):
    """Generators of the streams 0, ..., n - 1 of `root`: start ``i`` draws from stream ``i`` whatever `n`."""
    return [np.random.default_rng(child_seed(root, i)) for i in range(n)]


def planned_starts(init, n_init, hc_use):
    """The starts of a fit: ``init``'s own start, then the screened candidates or more of its own."""
    screened = init in SCREENED_METHODS and n_init > 1
    first = (init, hc_use if init == "hc" else None)
    if screened:
        return [first] + [("kmeans++", None)] * (SCREENED_PER_RUN * n_init - 1)
    return [first] * n_init


def further_starts(init, n_init, hc_use, n_features):
    """The starts tried, each to convergence, when every planned start collapsed: the hierarchical starts
    not tried yet (the other transformation; one for one feature, where none is used), then `n_init`
    fresh k-means++ starts."""
    tried = {hc_use} if init == "hc" else set()
    uses = (hc_use, *HC_TRANSFORMS) if n_features > 1 else (hc_use,)
    hierarchical = [("hc", use) for use in uses if use not in tried]
    return list(dict.fromkeys(hierarchical)) + [("kmeans++", None)] * n_init


def describe_starts(starts, n_features) -> str:
    """E.g. "1 hierarchical (hc_use='SVD'), 19 k-means++" ("quantile" for the hierarchical start of one
    feature)."""
    words = {"kmeans": "k-means", "kmeans++": "k-means++", "random": "random"}
    counts = {}
    for method, use in starts:
        if method == "hc":
            name = f"hierarchical (hc_use={use!r})" if n_features > 1 else "quantile"
        else:
            name = words[method]
        counts[name] = counts.get(name, 0) + 1
    return ", ".join(f"{count} {name}" for name, count in counts.items())


def start_parameters(
    X, n_components, start, rng, *, reg_covar, covariance_type, sample_weight, hc_sample_size
):
    """Weights, means and covariances of one start: the M-step of its partition (or responsibilities).

    The hierarchical start's partition is of the rows it clustered (all rows of positive weight, or a
    random subset of `hc_sample_size` of them), and its M-step uses those rows only. For one feature it
    is mclust's start there, the classes between quantiles (:func:`~bayes_gmm.em_baseline._init.
    quantile_labels`), of all rows.

    Raises
    ------
    IllConditionedCovarianceError
        If the start has no parameters: the M-step met a singular scatter, or the rows hold fewer distinct
        points than components.
    """
    method, use = start
    if method != "hc":
        resp = initial_responsibilities(X, n_components, method, rng, sample_weight)
        return parameters_from_responsibilities(X, resp, reg_covar, covariance_type, sample_weight)
    if X.shape[1] == 1:
        rows, labels = np.arange(len(X)), quantile_labels(X[:, 0], n_components, sample_weight)
    else:
        found = hc_start(
            X, n_components, rng, use=use, sample_size=hc_sample_size, sample_weight=sample_weight
        )
        rows, labels = found if found is not None else (None, None)
    if labels is None or labels.max() < n_components - 1:
        raise IllConditionedCovarianceError(
            f"the hierarchical start found fewer distinct points than n_components = {n_components}. Use "
            f"fewer components."
        )
    resp = np.zeros((len(rows), n_components))
    resp[np.arange(len(rows)), labels] = 1.0
    weights = None if sample_weight is None else sample_weight[rows]
    return parameters_from_responsibilities(
        X[rows], resp, reg_covar, covariance_type, weights, inner_iterations=HC_INNER_ITERATIONS
    )


@dataclasses.dataclass(frozen=True)
class Start:
    """A start's parameters, the inner iterations of its iterative M-steps (None: the default), and a
    structure whose M-step EM also runs from it, continued by the exact one (None: none)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    inner_iterations: int | None = None
    also_via: object = None

    def __iter__(self):  # unpacks as (weights, means, covariances)
        return iter((self.weights, self.means, self.covariances))


@dataclasses.dataclass(frozen=True)
class Screened:
    """A screened start: its parameters after screening, and the screening run's history."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    history: np.ndarray
    n_iter: int
    converged: bool
    inner_iterations = None
    also_via = None

    def __iter__(self):  # unpacks as (weights, means, covariances), like any start
        return iter((self.weights, self.means, self.covariances))

    def continued_by(self, result: EMResult) -> EMResult:
        """`result` (the run continued from this start) with the screening updates prepended."""
        return dataclasses.replace(
            result,
            log_likelihood_history=np.concatenate([self.history, result.log_likelihood_history[1:]]),
            n_iter=self.n_iter + result.n_iter,
            converged=self.converged or result.converged,
        )
