"""Simulation-based calibration (issue 12): the tests of uniformity, the test quantities, and a small SBC run.

The full SBC (four covariance types, 200 replications each) is ``python benchmarks/sbc.py``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bayes_gmm.sbc import (
    SBCSettings,
    chi_square_uniformity,
    default_bins,
    ecdf_uniformity,
    run_sbc,
    sbc_quantities,
    uniformity_table,
)


def test_uniformity_tests_accept_uniform_ranks_and_reject_skewed_ones():
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, 100, size=200)
    assert chi_square_uniformity(uniform, 99, 20)[2] > 0.01
    assert ecdf_uniformity(uniform, 99, n_simulations=5000) > 0.01
    # Ranks of a posterior that sits too low: high ranks are more common than low ones (density 2u).
    skewed = np.minimum(99, (100 * rng.beta(2.0, 1.0, size=200)).astype(int))
    assert chi_square_uniformity(skewed, 99, 20)[2] < 0.01
    assert ecdf_uniformity(skewed, 99, n_simulations=5000) < 0.01
    assert default_bins(200, 99) == 20 and default_bins(100, 99) == 10 and default_bins(60, 99) == 5


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_sbc_quantities_do_not_depend_on_the_component_labels(covariance_type):
    rng = np.random.default_rng(1)
    weights = rng.dirichlet(np.ones(3), size=5)
    means = rng.normal(size=(5, 3, 2))
    a = rng.normal(size=(5, 1 if covariance_type == "tied" else 3, 2, 2))
    covariances = np.broadcast_to(a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(2), (5, 3, 2, 2))
    X = rng.normal(size=(20, 2))
    original = sbc_quantities(weights, means, covariances, X, covariance_type)
    permuted = sbc_quantities(
        weights[:, [2, 0, 1]], means[:, [2, 0, 1]], covariances[:, [2, 0, 1]], X, covariance_type
    )
    assert original.keys() == permuted.keys()
    for name in original:
        np.testing.assert_allclose(original[name], permuted[name], err_msg=name)
        assert original[name].shape == (5,)


# Diag, K = 2, D = 2, N = 50, R = 100 replications of 2 chains x (300 tune + 250 draws) each, L = 99, 10 bins.
# Runtime: 45-70 s on 2 shared cores with PyTensor's compilation cache warm (each SBC run about 20-35 s, plus
# nutpie's compilation once per process); a cold cache adds about 30 s. A wider fitting prior (factor 2) is
# hardly detectable at this N (the data dominate the posterior); a 2x too narrow one (factor 0.5) pulls the
# standard deviations down and fails the larger log-determinant's ranks (p < 1e-6 at seeds 0, 1, 2 under the
# half-normal sd prior of earlier versions, the right model's smallest p-value above 0.02; level 0.01 / 16).
# Under the inverse-gamma variance prior the test below checks seed 0.
SLOW_SBC = SBCSettings(
    covariance_type="diag", n_samples=50, replications=100, chains=2, draws=250, tune=300, seed=0
)


@pytest.mark.slow
def test_sbc_passes_for_the_right_model_and_fails_for_a_wrong_prior_scale():
    right = uniformity_table(run_sbc(SLOW_SBC), alpha=0.01)
    failed = [(row["quantity"], row["p_chi2"], row["p_ecdf"]) for row in right if not row["passed"]]
    assert not failed, f"right model fails SBC on {failed}"
    wrong = uniformity_table(
        run_sbc(replace(SLOW_SBC, prior_scale_error=0.5, prior_error_on="both")), alpha=0.01
    )
    assert any(not row["passed"] for row in wrong), "SBC did not detect a 2x too narrow prior scale"
