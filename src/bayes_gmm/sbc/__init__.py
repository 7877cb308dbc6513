"""Simulation-based calibration (SBC) of the Bayesian GMM with nutpie (issue 12).

SBC (Talts et al. 2018, "Validating Bayesian inference algorithms with simulation-based calibration")
checks a model and its sampler together. Repeat R times: draw parameters theta from the prior, data y from
the model given theta, fit the model to y, and record the rank of f(theta) among L roughly independent
posterior draws of f. If the sampler draws from the exact posterior of the model that simulated the data,
every such rank is uniform on {0, ..., L}, for any function f (Modrák et al. 2023 show that f may depend on
the data too, as the log-likelihood below does).

The quantities f are functions of the parameters that do not depend on the components' labels, so that label
switching (within or between chains; the posterior is label-symmetric) cannot distort them:

- ``weight[j]``: the weights sorted ascending, all but the largest (which is one minus their sum);
- ``mean[k,x_d]``: the means with the components ordered by their first coordinate (the same rule in the
  truth and in every draw), so ``mean[0,x0]`` is the smallest first coordinate of any mean;
- ``logdet[j]``: log-determinants of the covariances sorted ascending (``tied``: the one shared covariance);
- ``corr[k,x_i,x_j]`` (full, tied): correlations, components ordered by their means as above;
- ``loglik``: the log-likelihood of the simulated data, a label-invariant scalar that depends on every
  parameter at once.

The truth and the data come from PyMC's own prior sampling (``pm.sample_prior_predictive`` of the model
built by :func:`bayes_gmm.models.build_model`), so the check does not rest on a reading of the model.
Priors are explicit (not data-scaled): ``SBC_PRIORS``. ``prior_scale_error`` makes the fitting model's prior
scale on the means and/or the standard deviations differ from the simulating one by a factor, a wrong model
that SBC should detect.

Uniformity is tested per quantity by a chi-square test of the binned ranks and by the simultaneous ECDF
test of Säilynoja, Bürkner & Vehtari (2022, "Graphical test for discrete uniformity and its applications
in goodness-of-fit evaluation and multiple sample comparison"), whose p-value is a Monte Carlo estimate.
"""

from bayes_gmm.sbc._plots import plot_ecdf_differences, plot_rank_histograms
from bayes_gmm.sbc._quantities import sbc_quantities
from bayes_gmm.sbc._run import run_sbc
from bayes_gmm.sbc._settings import COVARIANCE_TYPES as COVARIANCE_TYPES
from bayes_gmm.sbc._settings import PRIOR_ERROR_TARGETS as PRIOR_ERROR_TARGETS
from bayes_gmm.sbc._settings import SBC_PRIORS, SBCResult, SBCSettings
from bayes_gmm.sbc._settings import START_MODES as START_MODES
from bayes_gmm.sbc._uniformity import (
    chi_square_uniformity,
    default_bins,
    ecdf_uniformity,
    uniformity_table,
)

__all__ = [
    "SBC_PRIORS",
    "SBCResult",
    "SBCSettings",
    "chi_square_uniformity",
    "default_bins",
    "ecdf_uniformity",
    "plot_ecdf_differences",
    "plot_rank_histograms",
    "run_sbc",
    "sbc_quantities",
    "uniformity_table",
]
