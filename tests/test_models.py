"""The PyMC model builders: likelihood vs SciPy, batched LKJ vs PyMC's, fused gradient vs autodiff, priors."""

from __future__ import annotations

import warnings

import numpy as np
import pymc as pm
import pytest
from pymc.blocking import DictToArrayBijection
from scipy import stats
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from bayes_gmm.models import DATA, FEATURE_COV, OBSERVED, GMMPriors, build_model
from bayes_gmm.models._lkj import lkj_cholesky_cov, sample_lkj_correlation_cholesky
from bayes_gmm.models._variance_prior import inverse_gamma_sd

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (60, 3)), rng.normal(4, 2, (40, 3))]) * [1.0, 10.0, 0.1] + 30.0
    return X


def _random_point(model, seed, scale=0.3):
    rng = np.random.default_rng(seed)
    return {k: v + rng.normal(0, scale, v.shape) for k, v in model.initial_point().items()}


def _evaluate(model, outputs, point):
    fn = model.compile_fn(
        model.replace_rvs_by_values(outputs), inputs=model.value_vars, on_unused_input="ignore"
    )
    return fn(point)


@pytest.mark.parametrize("likelihood", ["fused", "graph"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_pointwise_log_likelihood_matches_scipy_mixture(data, covariance_type, likelihood):
    model = build_model(data, 2, covariance_type=covariance_type, likelihood=likelihood)
    point = _random_point(model, seed=1)
    weights, means, covariances = _evaluate(
        model, [model["weights"], model["means"], model["covariances"]], point
    )
    pointwise = model.compile_fn(
        model.logp(vars=[model[OBSERVED]], sum=False)[0], inputs=model.value_vars, on_unused_input="ignore"
    )(point)
    expected = logsumexp(
        [np.log(weights[k]) + multivariate_normal(means[k], covariances[k]).logpdf(data) for k in range(2)],
        axis=0,
    )
    assert pointwise.shape == (len(data),)
    np.testing.assert_allclose(pointwise, expected, rtol=1e-10)
    if covariance_type == "tied":
        np.testing.assert_allclose(covariances[0], covariances[1])
    if covariance_type in ("diag", "spherical"):
        np.testing.assert_allclose(covariances[0], np.diag(np.diag(covariances[0])))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fused_likelihood_gradient_matches_pytensor_autodiff(data, covariance_type):
    results = {}
    for likelihood in ("fused", "graph"):
        model = build_model(data, 3, covariance_type=covariance_type, likelihood=likelihood)
        fn = model.logp_dlogp_function(
            ravel_inputs=True, mode="FAST_COMPILE"
        )  # the Op in Python (numba mode: the next test)
        fn.set_extra_values({})
        results[likelihood] = fn(DictToArrayBijection.map(_random_point(model, seed=2)).data)
    np.testing.assert_allclose(results["fused"][0], results["graph"][0], rtol=1e-11)
    np.testing.assert_allclose(results["fused"][1], results["graph"][1], rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize(
    "covariance_type",
    # One numba compile of the model's graph takes 5-30 s: the default tier compiles one structure of each
    # family (Cholesky, diagonal); the slow tier all of them.
    [t if t in ("full", "diag") else pytest.param(t, marks=pytest.mark.slow) for t in COVARIANCE_TYPES],
)
def test_fused_likelihood_compiles_to_numba_with_the_same_logp_and_gradient(data, covariance_type):
    # PyMC compiles models in PyTensor's numba mode by default: the Ops must compile there, not fall back to Python.
    model = build_model(data, 3, covariance_type=covariance_type, likelihood="fused")
    point = _random_point(model, seed=3)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*object mode.*", category=UserWarning)
        for compile_fn in (model.compile_logp, model.compile_dlogp):
            expected = compile_fn(mode="FAST_COMPILE")(point)  # the Op's Python implementation
            np.testing.assert_allclose(compile_fn(mode="NUMBA")(point), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("n", "eta"), [(2, 1.0), (3, 2.0), (4, 0.7)])
def test_batched_lkj_logp_equals_pymc_lkjcholeskycov_per_matrix(n, eta):
    rng = np.random.default_rng(n)
    variance_scale = rng.uniform(0.5, 3.0, n)
    batch = 3
    with pm.Model():
        packed = lkj_cholesky_cov(
            "chol", n=n, eta=eta, variance_shape=2.5, variance_scale=variance_scale, batch_shape=(batch,)
        )
    values = []
    for _ in range(batch):
        a = rng.normal(size=(n, n))
        values.append(np.linalg.cholesky(a @ a.T + n * np.eye(n))[np.tril_indices(n)])
    values = np.array(values)
    our_logp = pm.logp(packed, values).eval()
    # PyMC's sd prior is a HalfNormal(1): its density is swapped for SciPy's inverse-gamma one of sd**2.
    reference = pm.LKJCholeskyCov.dist(n=n, eta=eta, sd_dist=pm.HalfNormal.dist(1.0), compute_corr=False)
    chol = np.zeros((batch, n, n))
    chol[:, *np.tril_indices(n)] = values
    sd = np.linalg.norm(chol, axis=-1)  # row norms of a covariance's Cholesky factor
    sd_density = stats.invgamma(2.5, scale=variance_scale).logpdf(sd**2) + np.log(2 * sd)
    expected = [
        pm.logp(reference, v).eval() - np.sum(stats.halfnorm.logpdf(s)) + np.sum(d)
        for v, s, d in zip(values, sd, sd_density, strict=True)
    ]
    # PyMC 6's LKJCholeskyCov is the reference: normalised (tests/test_lkj.py integrates ours) and in float64.
    np.testing.assert_allclose(our_logp, expected, rtol=1e-12)


def test_lkj_onion_sampler_has_the_lkj_marginals():
    # Under LKJ(eta) in dimension n every correlation r satisfies (r + 1) / 2 ~ Beta(b, b), b = eta - 1 + n / 2,
    # so E[r] = 0 and Var[r] = 1 / (2 b + 1) (Lewandowski, Kurowicka & Joe 2009).
    n, eta = 4, 2.0
    chol = sample_lkj_correlation_cholesky(np.random.default_rng(3), n, eta, (40_000,))
    corr = chol @ np.swapaxes(chol, -1, -2)
    np.testing.assert_allclose(np.diagonal(corr, axis1=1, axis2=2), 1.0, atol=1e-12)
    b = eta - 1 + n / 2
    off = corr[:, np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]]
    np.testing.assert_allclose(off.mean(axis=0), 0.0, atol=0.015)
    np.testing.assert_allclose(off.var(axis=0), 1 / (2 * b + 1), rtol=0.04)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_model_structure_coords_dims_and_prior_predictive(data, covariance_type):
    import pandas as pd

    frame = pd.DataFrame(data, columns=["a", "b", "c"])
    model = build_model(frame, 2, covariance_type=covariance_type)
    assert list(model.coords["feature"]) == ["a", "b", "c"]
    assert list(model.coords[FEATURE_COV]) == ["a", "b", "c"]
    assert len(model.coords["obs_id"]) == len(data)
    assert model.named_vars_to_dims["means"] == ("component", "feature")
    assert model.named_vars_to_dims["covariances"] == ("component", "feature", FEATURE_COV)
    np.testing.assert_array_equal(model[DATA].get_value(), data)
    assert set(model.coords) & set(model.named_vars) == set()  # no variable shares a name with a dimension
    # FAST_COMPILE: the draws, not numba's compile of the sampling graph, are under test here.
    prior = pm.sample_prior_predictive(
        50, model=model, random_seed=1, compile_kwargs={"mode": "FAST_COMPILE"}
    )
    draws = prior.prior_predictive[OBSERVED]
    assert draws.shape == (1, 50, len(data), 3)
    assert np.isfinite(draws).all()
    cov = prior.prior["covariances"].to_numpy()
    assert np.all(np.linalg.eigvalsh(cov) > 0)  # every prior covariance draw is positive definite
    # Prior predictive draws live on the data's scale: per-feature spread within an order of magnitude, in
    # the median draw (the variances' prior has a heavy upper tail, so a pooled spread follows its extremes).
    # (A spherical covariance has one scale for all features, so it cannot follow per-feature units.)
    if covariance_type != "spherical":
        ratio = draws.std(dim="obs_id").median(dim=("chain", "draw")).to_numpy() / data.std(axis=0)
        assert np.all((ratio > 0.1) & (ratio < 10))


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_default_priors_make_the_posterior_independent_of_units(data, covariance_type):
    """Rescaling X by c: logp(theta; X) - logp(theta_c; c X) is the same constant for every theta."""
    c = 7.5
    original = build_model(data, 2, covariance_type=covariance_type)
    scaled = build_model(data * c, 2, covariance_type=covariance_type)
    f_original = original.compile_logp(jacobian=False)
    f_scaled = scaled.compile_logp(jacobian=False)
    differences = []
    for seed in range(4):
        point = _random_point(original, seed, scale=0.5)
        moved = dict(point)
        moved["means"] = point["means"] * c
        if covariance_type == "full":
            packed = point["chol_cov_cholesky-cov-packed__"].copy()
            diag = np.cumsum(np.arange(1, 4)) - 1
            off = np.setdiff1d(np.arange(packed.shape[-1]), diag)
            packed[..., diag] += np.log(c)
            packed[..., off] *= c
            moved["chol_cov_cholesky-cov-packed__"] = packed
        else:
            moved["sigma_log__"] = point["sigma_log__"] + np.log(c)
        differences.append(f_original(point) - f_scaled(moved))
    np.testing.assert_allclose(differences, differences[0], rtol=0, atol=1e-7)


def test_user_priors_override_defaults_and_are_validated(data):
    priors = GMMPriors(
        weights_concentration=0.05, means_loc=np.zeros(3), means_scale=5.0, variance_scale=[1, 2, 3]
    )
    resolved = priors.resolve(data, 4)
    np.testing.assert_array_equal(resolved.weights_concentration, np.full(4, 0.05))
    np.testing.assert_array_equal(resolved.means_scale, np.full(3, 5.0))
    np.testing.assert_array_equal(resolved.variance_scale, [1, 2, 3])
    default = GMMPriors().resolve(data, 2)
    np.testing.assert_allclose(default.means_loc, data.mean(axis=0))
    assert default.variance_shape == 0.5
    np.testing.assert_allclose(default.variance_scale, data.var(axis=0) / 200)
    model = build_model(data, 4, priors=priors)
    np.testing.assert_allclose(model["weights"].owner.inputs[-1].eval(), np.full(4, 0.05))
    with pytest.raises(ValueError, match="variance_scale must be a scalar or have shape \\(3,\\)"):
        GMMPriors(variance_scale=[1.0, 2.0]).resolve(data, 2)
    with pytest.raises(ValueError, match="variance_shape must be a finite number > 0; got -1"):
        GMMPriors(variance_shape=-1).resolve(data, 2)
    with pytest.raises(ValueError, match="weights_concentration must be finite and > 0"):
        GMMPriors(weights_concentration=-1.0).resolve(data, 2)
    with pytest.raises(ValueError, match="lkj_eta"):
        GMMPriors(lkj_eta=0.0).resolve(data, 2)
    with pytest.raises(TypeError, match="priors must be a GMMPriors"):
        build_model(data, 2, priors={"lkj_eta": 2})


def test_build_model_rejects_bad_arguments(data):
    with pytest.raises(ValueError, match="covariance_type"):
        build_model(data, 2, covariance_type="banana")
    with pytest.raises(ValueError, match="likelihood"):
        build_model(data, 2, likelihood="slow")
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        build_model(data, 0)
    with pytest.raises(ValueError, match="minibatch_size must be at most"):
        build_model(data, 2, minibatch_size=10_000)
    with pytest.raises(ValueError, match="finite"):
        build_model(np.where(data > 40, np.nan, data), 2)


def test_minibatch_likelihood_is_an_unbiased_estimate_of_the_full_one(data):
    full = build_model(data, 2, covariance_type="diag")
    mini = build_model(data, 2, covariance_type="diag", minibatch_size=20)
    point = full.initial_point()
    obs_logp = mini.compile_fn(
        mini.logp(vars=[mini[OBSERVED]]), inputs=mini.value_vars, on_unused_input="ignore"
    )
    estimates = np.array([obs_logp(point) for _ in range(400)])
    target = full.compile_fn(
        full.logp(vars=[full[OBSERVED]]), inputs=full.value_vars, on_unused_input="ignore"
    )(point)
    assert estimates.std() > 0  # a new minibatch every evaluation
    # Scaled by total_size / batch_size, the minibatch sum is unbiased for the full-data log-likelihood.
    assert abs(estimates.mean() - target) < 4 * estimates.std() / np.sqrt(len(estimates))


@pytest.mark.parametrize("covariance_type", ["EII", "EEI"])
def test_equal_volume_models_share_one_covariance_and_match_scipy(data, covariance_type):
    """mclust's EII and EEI as Bayesian models: one (spherical or diagonal) covariance for every component."""
    results = {}
    for likelihood in ("fused", "graph"):
        model = build_model(data, 3, covariance_type=covariance_type, likelihood=likelihood)
        point = _random_point(model, seed=3)
        weights, means, covariances = _evaluate(
            model, [model["weights"], model["means"], model["covariances"]], point
        )
        fn = model.logp_dlogp_function(
            ravel_inputs=True, mode="FAST_COMPILE"
        )  # the Op in Python (numba mode: its own test)
        fn.set_extra_values({})
        results[likelihood] = fn(DictToArrayBijection.map(point).data)
    pointwise = model.compile_fn(
        model.logp(vars=[model[OBSERVED]], sum=False)[0], inputs=model.value_vars, on_unused_input="ignore"
    )(point)
    expected = logsumexp(
        [np.log(weights[k]) + multivariate_normal(means[k], covariances[k]).logpdf(data) for k in range(3)],
        axis=0,
    )
    np.testing.assert_allclose(pointwise, expected, rtol=1e-10)
    np.testing.assert_allclose(covariances, np.broadcast_to(covariances[0], covariances.shape))
    np.testing.assert_allclose(covariances[0], np.diag(np.diag(covariances[0])))
    if covariance_type == "EII":
        np.testing.assert_allclose(np.diag(covariances[0]), covariances[0, 0, 0])
    np.testing.assert_allclose(results["fused"][0], results["graph"][0], rtol=1e-11)
    np.testing.assert_allclose(results["fused"][1], results["graph"][1], rtol=1e-8, atol=1e-8)


def test_models_without_a_bayesian_prior_are_refused_by_name(data):
    with pytest.raises(
        ValueError, match=r"covariance_type='VEV' has no Bayesian model.*Fit it by EM \(fit_em"
    ):
        build_model(data, 2, covariance_type="VEV")


@pytest.mark.parametrize("shape", [0.7, 1.5, 4.0])
def test_sd_prior_is_scipys_inverse_gamma_of_the_variance(shape):
    # Density: SciPy's inverse-gamma of sd^2 times the Jacobian 2 sd; draws: a KS test of their squares.
    scale = np.array([0.2, 1.0, 30.0])
    sd = np.array([[0.05, 0.9, 4.0], [1.3, 0.2, 11.0]])
    with pm.Model(coords={"component": range(2), "feature": range(3)}):
        sigma = inverse_gamma_sd(
            "sigma", variance_shape=shape, variance_scale=scale, dims=("component", "feature")
        )
    expected = stats.invgamma(shape, scale=scale).logpdf(sd**2) + np.log(2 * sd)
    np.testing.assert_allclose(pm.logp(sigma, sd).eval(), expected, rtol=1e-12)
    draws = pm.draw(sigma, 4000, random_seed=5)
    assert draws.shape == (4000, 2, 3)
    for d in range(3):
        assert stats.kstest(draws[:, 1, d] ** 2, stats.invgamma(shape, scale=scale[d]).cdf).pvalue > 1e-3


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_posterior_density_falls_as_a_component_collapses_onto_repeated_points(covariance_type):
    # Three copies of one point: a component centred there whose standard deviations shrink to 0 has a
    # likelihood that grows like sd^(-3 D), without bound. A prior density that stays positive at sd = 0 (a
    # half-normal's) leaves that spike in the posterior, which is then improper; the inverse-gamma prior on
    # the variances must bring the posterior density down instead.
    rng = np.random.default_rng(2)
    X = np.concatenate([np.full((3, 2), [1.0, -1.0]), rng.normal(0.0, 2.0, (40, 2))])
    model = build_model(X, 2, covariance_type=covariance_type)
    log_posterior = model.compile_logp(jacobian=False)  # density of the constrained parameters
    point = model.initial_point()
    point["means"] = np.array([[1.0, -1.0], [0.0, 0.0]])
    values = []
    for sd in (1e-1, 1e-2, 1e-3, 1e-4):
        if covariance_type == "full":
            # Packed (L00, L10, L11): log-transformed diagonal, the off-diagonal entry as it is.
            point["chol_cov_cholesky-cov-packed__"] = np.array(
                [[np.log(sd), 0.0, np.log(sd)], [0.7, 0.0, 0.7]]
            )
        else:
            sigma = np.array([[sd, sd], [2.0, 2.0]]) if covariance_type == "diag" else np.array([sd, 2.0])
            point["sigma_log__"] = np.log(sigma)
        values.append(float(log_posterior(point)))
    assert np.all(np.isfinite(values))
    assert np.all(np.diff(values) < 0), values
    assert values[-1] < values[0] - 1e3, values


def test_lkj_prior_draws_have_inverse_gamma_variances():
    # The covariance factor's random draws (prior predictive, SBC): squared row norms, i.e. the variances,
    # must follow SciPy's inverse-gamma of each feature's scale.
    scale = np.array([0.5, 2.0, 9.0])
    with pm.Model():
        packed = lkj_cholesky_cov(
            "chol", n=3, eta=2.0, variance_shape=1.5, variance_scale=scale, batch_shape=(2,)
        )
    draws = pm.draw(packed, 3000, random_seed=4)  # (3000, 2, 6) packed rows (0), (1, 2), (3, 4, 5)
    variances = [np.sum(draws[..., rows] ** 2, axis=-1) for rows in ([0], [1, 2], [3, 4, 5])]
    for d, variance in enumerate(variances):
        for component in range(2):
            assert stats.kstest(variance[:, component], stats.invgamma(1.5, scale=scale[d]).cdf).pvalue > 1e-3
