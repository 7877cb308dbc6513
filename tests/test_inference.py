"""Fitting entry point, start points, relabelling and diagnostics (fast tier: small data, short chains)."""

from __future__ import annotations

import logging
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import (
    ElboPlateau,
    _fit,
    apply_relabelling,
    available_backends,
    find_relabelling,
    fit_gmm,
    jittered_start_values,
    membership_probabilities,
    start_values,
)
from bayes_gmm.inference._backends import resolve_backend
from bayes_gmm.models import OBSERVED

TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_MEANS = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])
TRUE_COVS = np.array([[[1.0, 0.6], [0.6, 1.0]], [[0.8, -0.3], [-0.3, 0.5]], [[0.6, 0.0], [0.0, 1.2]]])


def simulate(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, size=n, p=TRUE_WEIGHTS)
    noise = rng.standard_normal((n, 2))
    return TRUE_MEANS[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(TRUE_COVS)[labels], noise), labels


@pytest.fixture(scope="module")
def three_blobs():
    return simulate(300, seed=4)[0]


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_start_values_reproduce_the_em_fit(three_blobs, covariance_type):
    em = fit_em(three_blobs, 3, covariance_type=covariance_type, random_seed=0)
    start = start_values(em, covariance_type)
    np.testing.assert_allclose(start["weights"], em.weights, rtol=1e-12)
    np.testing.assert_allclose(start["means"], em.means)
    d = 2
    if covariance_type in ("full", "tied"):
        chol = np.zeros((*start["chol_cov"].shape[:-1], d, d))
        chol[..., np.tril_indices(d)[0], np.tril_indices(d)[1]] = start["chol_cov"]
        np.testing.assert_allclose(chol @ np.swapaxes(chol, -1, -2), em.covariances, rtol=1e-10)
    else:
        np.testing.assert_allclose(start["sigma"] ** 2, em.covariances, rtol=1e-12)
    _check_jittered_starts(em, covariance_type)


@pytest.mark.parametrize("covariance_type", ["EII", "EEI"])
def test_start_values_of_mclust_models_reproduce_the_em_fit(three_blobs, covariance_type):
    em = fit_em(three_blobs, 3, covariance_type=covariance_type, random_seed=0)
    start = start_values(em, covariance_type)
    shared = em.full_covariances()[0]
    expected = np.sqrt(shared[0, 0]) if covariance_type == "EII" else np.sqrt(np.diag(shared))
    np.testing.assert_allclose(start["sigma"], expected, rtol=1e-12)
    _check_jittered_starts(em, covariance_type)


def _check_jittered_starts(em, covariance_type):
    jittered = jittered_start_values(em, covariance_type, 4, jitter=0.05, rng=np.random.default_rng(0))
    assert len(jittered) == 4
    for chain_start in jittered:
        np.testing.assert_allclose(chain_start["weights"].sum(), 1.0)
        sd = np.sqrt(np.diagonal(em.full_covariances(), axis1=1, axis2=2))
        assert np.all(np.abs(chain_start["means"] - em.means) < 0.3 * sd)  # near EM, in the EM labelling


def _fake_posterior(n_chains=2, n_draws=50, seed=0):
    rng = np.random.default_rng(seed)
    means = TRUE_MEANS + 0.05 * rng.standard_normal((n_chains, n_draws, 3, 2))
    weights = np.broadcast_to(TRUE_WEIGHTS, (n_chains, n_draws, 3)).copy()
    covs = np.broadcast_to(TRUE_COVS, (n_chains, n_draws, 3, 2, 2)).copy()
    shared = rng.standard_normal((n_chains, n_draws))
    return xr.Dataset(
        {
            "means": (("chain", "draw", "component", "feature"), means),
            "weights": (("chain", "draw", "component"), weights),
            "covariances": (("chain", "draw", "component", "feature", "feature_cov"), covs),
            "unrelated": (("chain", "draw"), shared),
        }
    )


def test_relabelling_undoes_random_permutations_of_every_component_variable():
    truth = _fake_posterior()
    rng = np.random.default_rng(1)
    perms = np.array([[rng.permutation(3) for _ in range(50)] for _ in range(2)])
    perms[0, :10] = np.arange(3)  # some draws keep the reference labelling
    scrambled = truth.copy(deep=True)
    for name in ("means", "weights", "covariances"):
        values = truth[name].to_numpy()
        index = perms.reshape(perms.shape + (1,) * (values.ndim - 3))
        scrambled[name] = truth[name].copy(data=np.take_along_axis(values, index, axis=2))
    relabelling = find_relabelling(
        scrambled["means"].to_numpy(),
        scrambled["covariances"].to_numpy(),
        ref_means=TRUE_MEANS,
        ref_covariances=TRUE_COVS,
    )
    restored = apply_relabelling(scrambled, relabelling)
    for name in ("means", "weights", "covariances", "unrelated"):
        np.testing.assert_array_equal(restored[name].to_numpy(), truth[name].to_numpy())
    expected_fraction = np.mean(np.any(perms != np.arange(3), axis=-1))
    assert relabelling.fraction_relabelled == pytest.approx(expected_fraction)
    assert relabelling.was_needed


def test_relabelling_is_identity_when_draws_already_match():
    posterior = _fake_posterior()
    relabelling = find_relabelling(
        posterior["means"].to_numpy(),
        posterior["covariances"].to_numpy(),
        ref_means=TRUE_MEANS,
        ref_covariances=TRUE_COVS,
        weights=posterior["weights"].to_numpy(),
        ref_weights=TRUE_WEIGHTS,
    )
    assert relabelling.fraction_relabelled == 0.0 and not relabelling.was_needed


def test_backend_resolution():
    assert "pymc" in available_backends()
    assert resolve_backend("auto") == available_backends()[0]
    assert resolve_backend("pymc") == "pymc"
    with pytest.raises(ValueError, match="backend must be 'auto' or one of"):
        resolve_backend("stan")


def test_elbo_plateau_stops_on_a_flat_loss_and_not_on_a_falling_one():
    rule = ElboPlateau(window=10, tolerance=1e-3)
    falling = list(np.linspace(1000, 500, 40))
    for i in range(1, 41):
        rule(None, falling[:i], i)  # no StopIteration while the loss keeps dropping 1%+ per window
    flat = [100.0 + 0.01 * np.sin(i) for i in range(40)]
    with pytest.raises(StopIteration):
        for i in range(1, 41):
            rule(None, flat[:i], i)
    assert rule.converged_at == 20


@pytest.mark.parametrize("backend", ["nutpie", "pymc"])
def test_tune_0_is_refused_before_em_for_every_backend(three_blobs, backend, monkeypatch):
    """nutpie panics on tune=0 ("Poisoned sampler state mutex"); one rule for all back ends, up front."""
    monkeypatch.setattr(_fit, "fit_em", lambda *a, **k: pytest.fail("EM ran before the check"))
    with pytest.raises(ValueError, match=r"tune must be an integer >= 1; got 0\. .*Use e\.g\. tune=1000"):
        fit_gmm(three_blobs, 3, tune=0, backend=backend)


@pytest.mark.parametrize("tune", [0, 0.0])
def test_tune_is_not_checked_for_advi_which_does_not_tune(three_blobs, tune):
    fit = fit_gmm(three_blobs, 3, method="advi", tune=tune, draws=20, advi_restarts=1, random_seed=0)
    assert fit.posterior.sizes["draw"] == 20 and fit.attrs["method"] == "advi"


def test_fit_gmm_rejects_bad_arguments(three_blobs):
    with pytest.raises(ValueError, match="method must be one of"):
        fit_gmm(three_blobs, 3, method="gibbs")
    with pytest.raises(ValueError, match="minibatch_size only applies to ADVI"):
        fit_gmm(three_blobs, 3, minibatch_size=50)
    with pytest.raises(ValueError, match="target_accept must be in"):
        fit_gmm(three_blobs, 3, target_accept=1.5)
    with pytest.raises(ValueError, match="draws must be an integer >= 1"):
        fit_gmm(three_blobs, 3, draws=0)
    with pytest.raises(ValueError, match="em must be an EMResult with 3 components"):
        fit_gmm(three_blobs, 3, em=fit_em(three_blobs, 2, random_seed=0))
    with pytest.raises(ValueError, match="backend must be"):
        fit_gmm(three_blobs, 3, backend="stan")


@pytest.fixture(scope="module")
def small_nuts_fit(three_blobs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 2 x 300 draws: ESS below the warning level
        return fit_gmm(three_blobs, 3, draws=300, tune=300, chains=2, random_seed=11)  # nutpie, the default


def test_nuts_fit_returns_schema_conforming_inference_data(small_nuts_fit, three_blobs):
    idata = small_nuts_fit
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        assert group in idata.children
    assert idata.log_likelihood[OBSERVED].dims == ("chain", "draw", "obs_id")
    assert idata.log_likelihood[OBSERVED].shape == (2, 300, len(three_blobs))
    np.testing.assert_array_equal(idata.observed_data[OBSERVED].to_numpy(), three_blobs)
    assert idata.posterior["covariances"].dims == ("chain", "draw", "component", "feature", "feature_cov")
    for key in (
        "method",
        "backend",
        "n_components",
        "covariance_type",
        "bayes_gmm_version",
        "rhat_max",
        "ess_bulk_min",
        "n_divergences",
        "relabelled_fraction",
        "rhat_max_before_relabelling",
        "converged",
        "convergence_problems",
    ):
        assert key in idata.attrs
    assert idata.attrs["method"] == "nuts" and idata.attrs["backend"] == "nutpie"
    # The stored pointwise log-likelihood is the mixture density at each draw's parameters.
    post = idata.posterior.isel(chain=1, draw=17)
    from scipy.stats import multivariate_normal

    dens = sum(
        post["weights"].values[k]
        * multivariate_normal(post["means"].values[k], post["covariances"].values[k]).pdf(three_blobs)
        for k in range(3)
    )
    np.testing.assert_allclose(idata.log_likelihood[OBSERVED].isel(chain=1, draw=17), np.log(dens), rtol=1e-9)


def test_stored_log_likelihood_equals_pymcs_for_every_draw(small_nuts_fit, three_blobs):
    """fit_gmm evaluates the likelihood in NumPy from the draws; PyMC evaluates the model's graph."""
    import pymc as pm

    from bayes_gmm.models import build_model

    model = build_model(three_blobs, 3)
    reference = pm.compute_log_likelihood(
        small_nuts_fit.copy(),
        var_names=[OBSERVED],
        model=model,
        extend_inferencedata=False,
        progressbar=False,
    )
    np.testing.assert_allclose(
        small_nuts_fit.log_likelihood[OBSERVED].to_numpy(), reference[OBSERVED].to_numpy(), rtol=1e-9
    )


def test_fit_passes_through_arviz_1(small_nuts_fit, tmp_path):
    """What an ArviZ 1 user does with a fit: summary, PSIS-LOO, compare, netCDF round trip."""
    summary = az.summary(small_nuts_fit, var_names=["weights", "means"])
    assert len(summary) == 3 + 3 * 2 and summary["r_hat"].astype(float).max() < 1.05
    loo = az.loo(small_nuts_fit)
    assert np.isfinite(loo.elpd) and loo.n_data_points == small_nuts_fit.observed_data[OBSERVED].shape[0]
    path = tmp_path / "fit.nc"
    small_nuts_fit.to_netcdf(path)
    loaded = az.from_netcdf(path)
    assert set(loaded.children) == set(small_nuts_fit.children)
    assert loaded.attrs["covariance_type"] == small_nuts_fit.attrs["covariance_type"]
    np.testing.assert_array_equal(loaded.posterior["means"], small_nuts_fit.posterior["means"])
    comparison = az.compare({"fit": small_nuts_fit, "loaded": loaded})
    assert comparison.loc["fit", "elpd"] == pytest.approx(comparison.loc["loaded", "elpd"])
    # Functions that take a fit accept what ArviZ loads from disk.
    np.testing.assert_allclose(
        membership_probabilities(loaded)["probability"],
        membership_probabilities(small_nuts_fit)["probability"],
    )


def test_unconstrained_start_matches_pymc_transforms(three_blobs):
    """The flat start vector handed to nutpie is PyMC's own transformed initial point."""
    from pymc.initial_point import make_initial_point_fn

    from bayes_gmm.models import build_model
    from bayes_gmm.models._unconstrained import to_unconstrained

    for covariance_type in ("full", "spherical"):
        em = fit_em(three_blobs, 3, covariance_type=covariance_type, random_seed=0)
        model = build_model(three_blobs, 3, covariance_type=covariance_type)
        start = jittered_start_values(em, covariance_type, 1, jitter=0.1, rng=np.random.default_rng(1))[0]
        reference = make_initial_point_fn(
            model=model, overrides=start, jitter_rvs=set(), return_transformed=True
        )(0)
        flat = np.concatenate([np.ravel(reference[model.rvs_to_values[rv].name]) for rv in model.free_RVs])
        np.testing.assert_allclose(to_unconstrained(start, covariance_type), flat, rtol=1e-12)


def test_every_nutpie_chain_starts_at_its_own_jittered_em_point(three_blobs):
    from bayes_gmm.inference._nuts import run_nuts
    from bayes_gmm.models import build_model

    em = fit_em(three_blobs, 3, covariance_type="diag", random_seed=0)
    model = build_model(three_blobs, 3, covariance_type="diag")

    def run(seed):
        starts = []

        def start_sampler(rng):
            starts.append(jittered_start_values(em, "diag", 1, jitter=0.05, rng=rng)[0])
            return starts[-1]

        options = dict(backend="nutpie", draws=5, tune=5, chains=3, cores=1, target_accept=0.9)
        run_nuts(model, start_sampler, random_seed=seed, progressbar=False, **options)
        return sorted(tuple(start["means"].ravel()) for start in starts)

    first, again = run(7), run(7)
    assert len(first) == 3 and len(set(first)) == 3  # one start per chain, all different
    assert first == again  # and the same seed gives the same starts
    assert np.allclose(np.array(first).reshape(3, 3, 2).mean(0), em.means, atol=0.2)  # near EM, EM labelling


def test_nuts_posterior_is_near_the_truth_and_em(small_nuts_fit, three_blobs):
    posterior = small_nuts_fit.posterior
    em = fit_em(three_blobs, 3, n_init=10, random_seed=0)

    def by_position(means):  # a labelling-free order of the components
        return means[np.argsort(means[:, 0] + 10 * means[:, 1])]

    mean = posterior["means"].mean(("chain", "draw")).to_numpy()
    sd = by_position(np.c_[mean, posterior["means"].std(("chain", "draw")).to_numpy()])[:, 2:]
    assert np.all(np.abs(by_position(mean) - by_position(TRUE_MEANS)) < 4 * sd)
    assert np.all(np.abs(by_position(mean) - by_position(em.means)) < 2 * sd)
    assert small_nuts_fit.attrs["rhat_max"] < 1.05


@pytest.mark.slow
def test_nutpie_backend_samples_the_fused_likelihood(three_blobs, monkeypatch):
    pytest.importorskip("nutpie")
    import bayes_gmm.inference._fit as fit_module

    likelihoods = []
    original = fit_module.build_model

    def recording_build_model(*args, **kwargs):
        likelihoods.append(kwargs["likelihood"])
        return original(*args, **kwargs)

    monkeypatch.setattr(fit_module, "build_model", recording_build_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        idata = fit_gmm(three_blobs, 3, backend="nutpie", draws=200, tune=200, chains=2, random_seed=3)
    assert likelihoods == ["fused"]  # compiled by numba, not the slower PyTensor graph
    assert idata.attrs["backend"] == "nutpie"
    assert 0 < idata.attrs["compile_time_s"] < idata.attrs["sampling_time_s"]
    assert idata.attrs["rhat_max"] < 1.05 and idata.attrs["n_divergences"] == 0


def test_same_seed_same_result(three_blobs):
    kwargs = dict(covariance_type="diag", draws=50, tune=50, chains=2, random_seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first = fit_gmm(three_blobs[:120], 2, **kwargs)
        second = fit_gmm(three_blobs[:120], 2, **kwargs)
    np.testing.assert_array_equal(first.posterior["means"].to_numpy(), second.posterior["means"].to_numpy())


def test_chains_started_in_different_labellings_are_fixed_by_relabelling(three_blobs):
    """Two chains in swapped labellings: R-hat is huge before relabelling and < 1.01 after."""
    import itertools
    import threading

    from bayes_gmm.inference._arviz import convergence_diagnostics
    from bayes_gmm.inference._nuts import run_nuts
    from bayes_gmm.models import build_model

    em = fit_em(three_blobs, 3, covariance_type="diag", n_init=10, random_seed=0)
    model = build_model(three_blobs, 3, covariance_type="diag")
    starts = jittered_start_values(em, "diag", 2, jitter=0.02, rng=np.random.default_rng(0))
    swap = np.array([1, 0, 2])
    starts[1] = {name: value[swap] for name, value in starts[1].items()}  # chain 1 in another labelling
    calls, lock = itertools.count(), threading.Lock()

    def start_sampler(rng):  # one start per chain, whichever chain asks first (nutpie's chains are threads)
        with lock:
            return starts[next(calls) % 2]

    # nutpie on the shape-generic kernel: no PyTensor graph to compile for this shape
    idata = run_nuts(
        model,
        start_sampler,
        backend="nutpie",
        draws=1000,
        tune=500,
        chains=2,
        cores=1,
        target_accept=0.8,
        random_seed=3,
        progressbar=False,
    )
    names = ["weights", "means", "sigma"]
    before = convergence_diagnostics(idata.posterior, names)["rhat_max"]
    posterior = idata.posterior
    relabelling = find_relabelling(
        posterior["means"].transpose("chain", "draw", "component", "feature").to_numpy(),
        posterior["covariances"].transpose("chain", "draw", "component", "feature", "feature_cov").to_numpy(),
        ref_means=em.means,
        ref_covariances=em.full_covariances(),
    )
    after = convergence_diagnostics(apply_relabelling(idata.posterior, relabelling), names)["rhat_max"]
    assert before > 1.5
    assert after < 1.01
    assert 0.4 < relabelling.fraction_relabelled < 0.6  # the swapped chain: half of the draws


@pytest.mark.slow  # PyMC's ADVI compiles its graph per data shape: a minute on cold caches
def test_advi_stopped_by_its_rule_says_so_and_not_interrupted(three_blobs, caplog):
    """PyMC logs "Interrupted at 999 [6%]" whenever a callback stops pm.fit; nothing was interrupted."""
    caplog.set_level(logging.INFO, logger="pymc")
    fit = fit_gmm(
        three_blobs,
        3,
        method="advi",
        backend="pymc",
        advi_tolerance=0.5,
        advi_restarts=1,
        draws=20,
        random_seed=0,
    )
    assert fit.attrs["advi_converged"] == 1 and fit.attrs["advi_iterations"] == 1000  # two 500-windows
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("pymc.variational")]
    assert "ADVI stopped: the ELBO converged at iteration 1,000" in messages, messages
    assert not any("Interrupted" in m for m in messages), messages


@pytest.mark.parametrize(
    "backend",
    ["kernel", pytest.param("pymc", marks=pytest.mark.slow)],  # PyMC compiles per data shape
)
def test_minibatch_advi_keeps_column_names_and_warns_when_it_stops_early(three_blobs, backend):
    frame = pd.DataFrame(three_blobs, columns=["length", "width"])
    with pytest.warns(ConvergenceWarning, match="ADVI stopped at advi_max_iter=200"):
        fit = fit_gmm(
            frame,
            3,
            method="advi",
            minibatch_size=50,
            backend=backend,
            advi_max_iter=200,
            advi_restarts=1,
            draws=20,
            random_seed=0,
        )
    assert fit.attrs["advi_converged"] == 0
    assert fit.attrs["converged"] == 0 and "advi_max_iter=200" in fit.attrs["convergence_problems"]
    assert list(fit.posterior["feature"].values) == ["length", "width"]
    assert list(fit.observed_data["feature"].values) == ["length", "width"]


def test_tight_cluster_sd_matches_the_conjugate_posterior_of_the_default_prior():
    # 30 points with sd 0.05 far from 200 with sd 1: every assignment is certain, the means' prior is flat
    # on the tight cluster's scale, so each of its variances has the conjugate posterior
    # InverseGamma(a + (n - 1) / 2, b + S / 2) (S: the sum of squares about the cluster mean), whose
    # standard deviation has mean sqrt(b') Gamma(a' - 1/2) / Gamma(a'). The default prior's pull (b = var_d
    # / 200) shows as the gap to the sample sd; a sampler or a prior that differs from the stated one shows
    # as a gap to the closed form.
    from scipy.special import gammaln

    from bayes_gmm.models import GMMPriors

    rng = np.random.default_rng(0)
    tight = rng.normal(4.0, 0.05, (30, 2))
    X = np.concatenate([rng.normal(0.0, 1.0, (200, 2)), tight])
    fit = fit_gmm(X, 2, covariance_type="diag", random_seed=1, progressbar=False)
    sd = np.sqrt(
        np.diagonal(fit.posterior["covariances"].to_numpy(), axis1=-2, axis2=-1)
    )  # (chain, draw, K, D)
    component = int(np.argmin(fit.posterior["weights"].mean(("chain", "draw")).to_numpy()))
    posterior_mean_sd = sd[:, :, component, :].mean(axis=(0, 1))
    priors = GMMPriors().resolve(X, 2)
    shape = priors.variance_shape + (len(tight) - 1) / 2
    scale = priors.variance_scale + 0.5 * np.sum((tight - tight.mean(axis=0)) ** 2, axis=0)
    expected = np.sqrt(scale) * np.exp(gammaln(shape - 0.5) - gammaln(shape))
    np.testing.assert_allclose(posterior_mean_sd, expected, rtol=0.02)
    # The default prior is weak even for a cluster with 3% of the data's spread: it widens the sd by < 30%.
    assert np.all(np.sqrt(scale / (scale - priors.variance_scale)) < 1.3)
