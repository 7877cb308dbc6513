"""fit_em reproduces published maximum-likelihood fits (mclust) on classic data sets.

Every number below is copied by hand from tests/data/REFERENCE.md ("Published maximum-likelihood fits",
mclust vignette "A quick tour of mclust", mclust 5.4 to 6.1.3); none was produced by this package.

mclust's BIC is ``2 logL - p ln(n)`` (higher is better); ours is scikit-learn's ``-2 logL + p ln(n)``.
mclust stops EM at a relative change of 1e-5, so a tightly converged EM may land up to ~0.03 above
mclust's logL (REFERENCE.md); a fit at or above the published value, within LOGLIK_TOL, passes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_iris

from bayes_gmm.em_baseline import fit_em

LOGLIK_TOL = 0.05
N_INIT = 10

# (data set, covariance_type, K, published logL, free parameters, published BIC (mclust sign), n rows)
# Source: tests/data/REFERENCE.md, table "Published maximum-likelihood fits".
PUBLISHED = [
    pytest.param("faithful", "tied", 3, -1126.326, 11, -2314.316, 272, id="faithful-EEE-3"),
    # galaxies velocities in 1000 km/s (REFERENCE.md: MASS::galaxies divided by 1000), as mclust uses them
    pytest.param("galaxies", "full", 3, -203.1792, 8, -441.6122, 82, id="galaxies-V-3"),
    pytest.param("acidity", "tied", 2, -185.9493, 4, -392.0723, 155, id="acidity-E-2"),
]

# Source: tests/data/REFERENCE.md, "Other known figures" (logL only).
PUBLISHED_LOGLIK_FULL = [
    pytest.param("faithful", 1, -1289.797, id="faithful-full-1"),
    pytest.param("faithful", 2, -1130.264, id="faithful-full-2"),
    # "a local maximum at -1127.199 and a better one near -1119.21": not claimed to be the best, and it is
    # not: restarts from k-means++ seeds (ours, and scikit-learn's) find a higher, non-collapsed maximum
    # (tests/test_em_restarts.py). A fit at or above the published value passes.
    pytest.param("faithful", 3, -1119.21, id="faithful-full-3"),
    pytest.param("iris", 2, -214.355, id="iris-full-2"),
    pytest.param("iris", 3, -180.186, id="iris-full-3"),
]


def load(name, load_reference_csv):
    if name == "iris":
        return load_iris().data  # REFERENCE.md: iris ships inside scikit-learn
    return load_reference_csv(name)


@pytest.mark.parametrize(("name", "covariance_type", "k", "loglik", "n_params", "bic", "n_rows"), PUBLISHED)
def test_published_mclust_fit(load_reference_csv, name, covariance_type, k, loglik, n_params, bic, n_rows):
    X = load_reference_csv(name)
    assert X.shape == (n_rows, 1 if name != "faithful" else 2)
    result = fit_em(X, k, covariance_type=covariance_type, n_init=N_INIT, random_seed=0)
    assert result.converged
    # the maximum found is at (or, being more tightly converged, slightly above) the published one
    assert loglik - LOGLIK_TOL <= result.log_likelihood <= loglik + LOGLIK_TOL
    assert result.n_parameters == n_params
    assert result.n_samples == n_rows
    # BIC in mclust's sign: a difference from the published BIC is only the log-likelihood difference
    # (times two); the penalty p ln(n) itself agrees to the published rounding.
    ours_mclust_sign = -result.bic()
    assert ours_mclust_sign == pytest.approx(bic + 2.0 * (result.log_likelihood - loglik), abs=0.01)
    assert ours_mclust_sign == pytest.approx(bic, abs=2 * LOGLIK_TOL)
    assert ours_mclust_sign == pytest.approx(
        2 * result.log_likelihood - n_params * math.log(n_rows), rel=1e-12
    )


@pytest.mark.parametrize(("name", "k", "loglik"), PUBLISHED_LOGLIK_FULL)
def test_published_full_covariance_loglik(load_reference_csv, name, k, loglik):
    X = load(name, load_reference_csv)
    result = fit_em(X, k, covariance_type="full", n_init=N_INIT, random_seed=0)
    assert result.converged
    upper = math.inf if (name, k) == ("faithful", 3) else loglik + LOGLIK_TOL
    assert loglik - LOGLIK_TOL <= result.log_likelihood <= upper


def test_galaxies_has_worse_local_maxima(load_reference_csv):
    """REFERENCE.md: mclust's default start reaches only logL -212.08 for 3 components: starts differ,
    and the restarts are what finds the optimum. Our best start is at least as good as every single start."""
    X = load_reference_csv("galaxies")
    singles = [
        fit_em(X, 3, covariance_type="full", n_init=1, init="random", random_seed=s).log_likelihood
        for s in range(N_INIT)
    ]
    best = fit_em(X, 3, covariance_type="full", n_init=N_INIT, init="random", random_seed=0)
    assert best.log_likelihood >= max(singles) - 1e-9
    assert min(singles) < best.log_likelihood - 5.0  # some starts end in a clearly worse local maximum
    assert best.log_likelihood == pytest.approx(-203.1792, abs=LOGLIK_TOL)


def test_selects_published_model_by_bic(load_reference_csv):
    """faithful: among "tied" fits with 1-4 components, REFERENCE.md's selected EEE model has K=3."""
    X = load_reference_csv("faithful")
    bics = {k: fit_em(X, k, covariance_type="tied", n_init=4, random_seed=0).bic() for k in (1, 2, 3, 4)}
    assert min(bics, key=bics.get) == 3
    assert np.isfinite(list(bics.values())).all()
