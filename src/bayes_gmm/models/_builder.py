"""PyMC model builders for Gaussian mixtures, one per covariance type, with the assignments marginalised."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_gmm._validation import (
    check_choice,
    check_covariance_type,
    check_n_components,
    check_positive_int,
    check_sample_weight,
    checked_data,
)
from bayes_gmm.covariance import get_structure
from bayes_gmm.models._covariance_priors import COVARIANCE_PRIORS, PACKED, check_bayesian_covariance_type
from bayes_gmm.models._likelihood import LIKELIHOOD_IMPLEMENTATIONS, make_mixture_logp, make_mixture_random
from bayes_gmm.models._priors import GMMPriors, data_moments

#: Name of the observed variable; its pointwise log-likelihood lands in ``idata.log_likelihood[OBSERVED]``.
OBSERVED = "obs"
#: Name of the ``pm.Data`` container holding the observations.
DATA = "X"
#: Second feature dimension of the ``covariances`` deterministic (xarray forbids repeating a dimension).
FEATURE_COV = "feature_cov"
#: Data container with the data mean, subtracted inside the likelihood (see ``make_mixture_logp``).
CENTER = "X_center"
#: Data container with the per-observation weights of a weighted model (``build_model(sample_weight=...)``).
SAMPLE_WEIGHT = "sample_weight"
#: Data container names of the prior hyper-parameters, by ``GMMPriors`` field.
PRIOR_DATA = {
    "weights_concentration": "prior_weights_concentration",
    "means_loc": "prior_means_loc",
    "means_scale": "prior_means_scale",
    "variance_shape": "prior_variance_shape",
    "variance_scale": "prior_variance_scale",
}


def build_model(
    X,
    n_components: int,
    *,
    covariance_type: str = "full",
    priors: GMMPriors | None = None,
    minibatch_size: int | None = None,
    likelihood: str = "fused",
    sample_weight=None,
) -> pm.Model:
    """Build the PyMC model of a Gaussian mixture with the component assignments marginalised out.

    Generative story, for components k = 1..K and observations n = 1..N::

        weights ~ Dirichlet(weights_concentration)
        means[k] ~ Normal(means_loc, means_scale)                  (independently per feature)
        Sigma[k] = diag(sd[k]) Omega[k] diag(sd[k]),  sd[k, d]^2 ~ InverseGamma(a, b[d]),
                   Omega[k] ~ LKJ(lkj_eta)                          ("full"; "tied" shares one Sigma)
        Sigma[k] = diag(sigma[k]^2), sigma[k, d]^2 ~ InverseGamma(a, b[d])           ("diag")
        Sigma[k] = sigma[k]^2 I,     sigma[k]^2 ~ InverseGamma(a, mean(b))         ("spherical")
        x[n] ~ sum_k weights[k] Normal(means[k], Sigma[k])

    with ``a = variance_shape`` and ``b = variance_scale``. The default hyper-parameters are scaled to the
    data (see :class:`GMMPriors`): the means' prior is centred on the data mean with twice the data's
    standard deviation; a variance's prior is InverseGamma(1/2, var_d / 200), whose density vanishes at
    zero, so no component's variances shrink onto repeated values (see
    :mod:`bayes_gmm.models._variance_prior`). Results do not depend on the units of X.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Observations; pandas column names become the ``feature`` coordinate.
    n_components : int
        Number of mixture components K.
    covariance_type : str, default "full"
        "full", "tied", "diag" or "spherical", or mclust's name of a model with a Bayesian prior: "VVV",
        "EEE", "VVI", "VII" (the same four), "EII", "EEI"; "E" or "V" for one feature.
    priors : GMMPriors, optional
        Hyper-parameters; fields left as None take the data-scaled defaults.
    minibatch_size : int, optional
        If given, the likelihood is evaluated on random minibatches of this many rows (``pm.Minibatch``) and
        scaled by ``total_size = n_samples``: for ADVI on large data. Such a model has no ``obs_id`` dim.
    likelihood : {"fused", "graph"}, default "fused"
        How the likelihood is computed: "fused" is one compiled Op with a hand-written gradient, run by PyMC's
        own NUTS and ADVI (nutpie runs the same kernels without the graph, see
        :mod:`bayes_gmm.models._model_kernel`); "graph" is plain PyTensor operations, which the JAX back end
        (numpyro) needs. Both give the same values.
    sample_weight : array-like of shape (n_samples,), optional
        Non-negative weight of each observation: its log-likelihood is multiplied by it (``w_n log p(x_n)``),
        so integer weights give the model of the data with rows repeated that often, and coreset weights
        (:func:`bayes_gmm.coreset.lightweight_coreset`) make a small sample stand in for a large data set.
        The data-scaled default priors and the centring use the weighted mean and standard deviation. The
        weights are a data container (``pm.Data("sample_weight")``), so a compiled model serves any weights.
        Not with `minibatch_size`.

    Returns
    -------
    pm.Model
        Coords ``component``, ``feature``, ``feature_cov`` and ``obs_id``. Free variables ``weights``,
        ``means`` and, by covariance type, ``chol_cov`` (full, tied) or ``sigma`` (diag, spherical);
        deterministic ``covariances`` of shape (component, feature, feature_cov) for every type; the data
        as ``pm.Data("X")`` and the observed variable ``obs`` whose pointwise log-likelihood is one value
        per observation (for WAIC and LOO; in a weighted model it is the weighted value ``w_n log p(x_n)``).
    """
    n_components = check_n_components(n_components)
    covariance_type = check_bayesian_covariance_type(check_covariance_type(covariance_type))
    data = checked_data(X, min_samples=n_components)
    X, feature_names = data.values, list(data.feature_names)
    get_structure(covariance_type).check_features(X.shape[1])
    likelihood = check_choice(likelihood, "likelihood", LIKELIHOOD_IMPLEMENTATIONS)
    n_samples, n_features = X.shape
    weights_values = check_sample_weight(sample_weight, n_samples)
    if weights_values is not None and minibatch_size is not None:
        raise ValueError(
            "sample_weight and minibatch_size cannot be combined: a minibatch would need its rows' weights. "
            "Leave minibatch_size as None for a weighted model."
        )
    if priors is None:
        priors = GMMPriors()
    elif not isinstance(priors, GMMPriors):
        raise TypeError(f"priors must be a GMMPriors instance or None; got {type(priors).__name__}.")
    center_values, _ = data_moments(X, weights_values)
    priors = priors.resolve(X, n_components, sample_weight=weights_values)
    coords = {
        "component": np.arange(n_components),
        "feature": feature_names,
        FEATURE_COV: feature_names,
        PACKED: np.arange(n_features * (n_features + 1) // 2),
        "obs_id": np.arange(n_samples),
    }
    with pm.Model(coords=coords) as model:
        if minibatch_size is None:
            data = pm.Data(DATA, X, dims=("obs_id", "feature"))
            observed_kwargs = {"dims": ("obs_id", "feature")}
        else:
            batch = check_positive_int(minibatch_size, "minibatch_size")
            if batch > n_samples:
                raise ValueError(
                    f"minibatch_size must be at most the number of samples ({n_samples}); got {batch}. "
                    f"Use a smaller minibatch or leave it as None for full-data inference."
                )
            data = pm.Minibatch(X, batch_size=batch)  # reseeded by pm.fit(random_seed=...)
            observed_kwargs = {"total_size": n_samples}
        # Everything that depends on the data is a data container, not a constant of the graph, so that a
        # compiled model serves any data of the same shape; nutpie's model kernel reads them from here.
        center = pm.Data(CENTER, center_values)
        point_weights = None
        if weights_values is not None:
            point_weights = pm.Data(SAMPLE_WEIGHT, weights_values, dims="obs_id")
        priors = replace(
            priors, **{field: pm.Data(name, getattr(priors, field)) for field, name in PRIOR_DATA.items()}
        )
        weights = pm.Dirichlet("weights", a=priors.weights_concentration, dims="component")
        means = pm.Normal(
            "means", mu=priors.means_loc, sigma=priors.means_scale, dims=("component", "feature")
        )
        scale, structure, chol = COVARIANCE_PRIORS[covariance_type].add_to_model(
            priors, n_components, n_features
        )
        pm.Deterministic(
            "covariances", chol @ pt.swapaxes(chol, -1, -2), dims=("component", "feature", FEATURE_COV)
        )
        signature = "(k),(k,d),(j,d,d)->(d)" if structure == "cholesky" else "(k),(k,d),(k,d)->(d)"
        pm.CustomDist(
            OBSERVED,
            weights,
            means,
            scale,
            logp=make_mixture_logp(structure, center, likelihood, sample_weight=point_weights),
            random=make_mixture_random(structure),
            signature=signature,
            observed=data,
            **observed_kwargs,
        )
    # Two models with equal structure keys differ only in the values of their data containers.
    weighted = weights_values is not None
    model.bayes_gmm_structure = (
        covariance_type,
        n_components,
        n_features,
        likelihood,
        priors.lkj_eta,
        weighted,
    )
    return model
