"""Lightweight coresets (NumPy and Dask), the weighted model, coreset NUTS fits, and subsampled PSIS-LOO."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from pymc.blocking import DictToArrayBijection
from scipy.stats import chi2

from bayes_gmm.coreset import lightweight_coreset, sampling_probabilities
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import fit_coreset_gmm, fit_gmm, loo_subsampled, membership_probabilities
from bayes_gmm.inference._arviz import loo
from bayes_gmm.models import build_model

da = pytest.importorskip("dask.array")


def _q_by_formula(X):
    """q(x) = 1/(2n) + d(x, mean)^2 / (2 sum d^2), written out independently of the package."""
    n = len(X)
    d2 = ((X - X.mean(axis=0)) ** 2).sum(axis=1)
    return 1 / (2 * n) + d2 / (2 * d2.sum())


def _mixture(n, seed):
    rng = np.random.default_rng(seed)
    z = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    mu = np.array([[0.0, 0.0], [5.0, 1.0], [-2.0, 6.0]])
    A = np.array([[[1.0, 0.0], [0.5, 0.7]], [[0.6, 0.0], [-0.3, 1.2]], [[0.8, 0.0], [0.0, 0.4]]])
    return mu[z] + np.einsum("nij,nj->ni", A[z], rng.standard_normal((n, 2)))


TINY = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [-1.0, -1.0], [0.5, 0.5]])


def _row_counts(points, X):
    matches = (points[:, None, :] == X[None, :, :]).all(axis=-1)
    assert np.all(matches.sum(axis=1) == 1), "every coreset point is one row of X"
    return matches.sum(axis=0)


@pytest.mark.parametrize("as_dask", [False, True])
def test_sampling_frequencies_and_weights_follow_the_lightweight_formula(as_dask):
    q = _q_by_formula(TINY)
    np.testing.assert_allclose(sampling_probabilities(TINY), q, rtol=1e-14)
    m = 60_000
    X = da.from_array(TINY, chunks=(2, 2)) if as_dask else TINY  # three chunks: exercises the allocation
    coreset = lightweight_coreset(X, m, random_seed=5)
    counts = _row_counts(coreset.points, TINY)
    # Pearson's chi-square of the observed row frequencies against m q: a fixed seed, so a fixed outcome.
    statistic = float(((counts - m * q) ** 2 / (m * q)).sum())
    assert chi2.sf(statistic, df=len(TINY) - 1) > 1e-3
    rows = (coreset.points[:, None, :] == TINY[None]).all(axis=-1).argmax(axis=1)
    np.testing.assert_allclose(coreset.probabilities, q[rows], rtol=1e-12)
    np.testing.assert_allclose(coreset.weights, 1 / (m * q[rows]), rtol=1e-12)
    assert (coreset.size, coreset.n_source) == (m, len(TINY))


def test_weight_sum_is_unbiased_for_n():
    X = _mixture(2000, seed=1)
    q, n, m, seeds = _q_by_formula(X), len(X), 50, 400
    sums = np.array([lightweight_coreset(X, m, random_seed=s).weights.sum() for s in range(seeds)])
    # Var(sum_j 1 / (m q_Ij)) = (sum_i 1/q_i - n^2) / m for i.i.d. draws I_j ~ q.
    se = np.sqrt((np.sum(1 / q) - n**2) / m / seeds)
    assert abs(sums.mean() - n) < 4 * se
    assert sums.std() == pytest.approx(se * np.sqrt(seeds), rel=0.2)


def test_weighted_moments_estimate_the_data_moments_within_their_sampling_error():
    X = _mixture(100_000, seed=2)
    n, m = len(X), 4000
    q = _q_by_formula(X)
    coreset = lightweight_coreset(X, m, random_seed=3)
    mean, w = X.mean(axis=0), coreset.weights
    centred, c_centred = X - mean, coreset.points - mean
    outer = np.einsum("ni,nj->nij", centred, centred).reshape(n, 4)
    # The weighted mean and covariance (what the weighted likelihood sees), normalised by the weights' sum.
    weighted_cov = np.cov(coreset.points.T, aweights=w, bias=True).ravel()
    for f_data, f_coreset, normalised in [
        (X, coreset.points, np.average(coreset.points, axis=0, weights=w)),
        (outer, np.einsum("ni,nj->nij", c_centred, c_centred).reshape(m, 4), weighted_cov),
    ]:
        truth = f_data.mean(axis=0)
        # (1/n) sum_j w_j f(c_j) is unbiased with variance (sum_i f_i^2 / q_i - (sum_i f_i)^2) / (m n^2); the
        # normalised estimate has (to first order) variance sum_i (f_i - mean f)^2 / q_i / (m n^2).
        unbiased = (w[:, None] * f_coreset).sum(axis=0) / n
        sd = np.sqrt(((f_data**2 / q[:, None]).sum(axis=0) - f_data.sum(axis=0) ** 2) / (m * n**2))
        sd_normalised = np.sqrt((((f_data - truth) ** 2) / q[:, None]).sum(axis=0) / (m * n**2))
        assert np.all(np.abs(unbiased - truth) < 4 * sd)
        assert np.all(np.abs(normalised - truth) < 4 * sd_normalised)


def test_dask_input_is_read_chunk_by_chunk_in_two_passes_and_is_reproducible():
    n_chunks, rows = 8, 25_000
    calls = []

    def make_chunk(block_info=None):
        index = block_info[None]["chunk-location"][0]
        calls.append(index)
        return _mixture(rows, seed=100 + index)

    X = da.map_blocks(make_chunk, chunks=((rows,) * n_chunks, (2,)), dtype=float)
    first = lightweight_coreset(X, 3000, random_seed=7)
    assert len(calls) == 2 * n_chunks and sorted(set(calls)) == list(range(n_chunks))
    second = lightweight_coreset(X, 3000, random_seed=7)
    np.testing.assert_array_equal(first.points, second.points)
    assert first.weights.sum() == pytest.approx(n_chunks * rows, rel=0.05)
    # One chunk is one NumPy block: the same seed gives the same coreset from either.
    data = _mixture(5000, seed=9)
    from_numpy = lightweight_coreset(data, 700, random_seed=11)
    from_dask = lightweight_coreset(da.from_array(data, chunks=(5000, 2)), 700, random_seed=11)
    np.testing.assert_array_equal(from_numpy.points, from_dask.points)
    np.testing.assert_array_equal(from_numpy.weights, from_dask.weights)


def test_candidates_are_merged_up_a_tree_so_the_client_holds_about_m_rows(monkeypatch):
    import bayes_gmm.coreset as coreset_module

    merged_sizes = []
    merge = coreset_module._merge_blocks

    def recording_merge(first, second, seed):
        result = merge(first, second, seed)
        merged_sizes.append(len(result["d2"]) + len(result["uniform_d2"]))
        return result

    monkeypatch.setattr(coreset_module, "_merge_blocks", recording_merge)
    data = _mixture(40_000, seed=31)
    got = lightweight_coreset(da.from_array(data, chunks=(1000, 2)), 600, random_seed=5)
    assert len(merged_sizes) == 39  # 40 chunks: one merge per inner node of the tree
    assert max(merged_sizes) <= 600  # no node, the root included, holds more than m rows
    assert got.points.shape == (600, 2)


def test_dask_dataframe_and_unknown_chunks_are_read_as_dask_not_loaded_whole(monkeypatch):
    import dask.dataframe as dd
    import pandas as pd

    data = _mixture(6000, seed=21)
    expected = lightweight_coreset(da.from_array(data, chunks=(2000, 2)), 500, random_seed=3)
    frame = dd.from_pandas(pd.DataFrame(data, columns=["a", "b"]), npartitions=3)
    unknown = da.from_array(data, chunks=(2000, 2))
    unknown = unknown[unknown[:, 0] > -1e9]  # boolean indexing: row counts unknown until computed
    monkeypatch.setattr(np, "asarray", _refuse_dask(np.asarray))  # nothing may load the data whole
    for source in (frame, unknown):
        got = lightweight_coreset(source, 500, random_seed=3)
        np.testing.assert_array_equal(got.points, expected.points)
        np.testing.assert_allclose(got.weights, expected.weights, rtol=1e-12)  # sums in another order


def _refuse_dask(asarray):
    def guarded(value, *args, **kwargs):
        if type(value).__module__.startswith("dask"):
            raise AssertionError(f"a whole {type(value).__name__} was loaded into memory")
        return asarray(value, *args, **kwargs)

    return guarded


def test_coreset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        lightweight_coreset(TINY, 0)
    with pytest.raises(ValueError, match="2-D"):
        lightweight_coreset(np.arange(5.0), 3)
    with pytest.raises(ValueError, match="finite"):
        lightweight_coreset(np.array([[0.0, np.nan], [1.0, 2.0]]), 3)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_integer_weights_give_the_model_of_repeated_rows(covariance_type):
    rng = np.random.default_rng(4)
    X = _mixture(60, seed=4) * [1.0, 20.0] + 50.0
    weights = rng.integers(0, 4, len(X))
    weights[:3] = [1, 2, 3]
    results = []
    for model in (
        build_model(X, 3, covariance_type=covariance_type, sample_weight=weights),
        build_model(np.repeat(X, weights, axis=0), 3, covariance_type=covariance_type),
    ):
        fn = model.logp_dlogp_function(
            ravel_inputs=True, mode="FAST_COMPILE"
        )  # the Op in Python: no numba compile
        fn.set_extra_values({})
        point = {
            k: v + np.random.default_rng(1).normal(0, 0.3, v.shape) for k, v in model.initial_point().items()
        }
        results.append(fn(DictToArrayBijection.map(point).data))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-10)


def test_weighted_fit_refuses_log_likelihood_and_bad_weights():
    X = _mixture(200, seed=5)
    with pytest.raises(ValueError, match="log_likelihood"):
        fit_gmm(X, 2, sample_weight=np.ones(200), log_likelihood=True)
    with pytest.raises(
        ValueError, match=r"sample_weight must be a 1-D array of n_samples = 200 .* got shape \(199,\)"
    ):
        fit_gmm(X, 2, sample_weight=np.ones(199))
    with pytest.raises(ValueError, match=r"got 200 negative weight\(s\), first at index 0"):
        fit_gmm(X, 2, sample_weight=-np.ones(200))


@pytest.fixture(scope="module")
def coreset_fit():
    X = _mixture(20_000, seed=6)
    with warnings.catch_warnings():  # short chains: diagnostics are not what this checks
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = fit_coreset_gmm(X, 3, coreset_size=1500, random_seed=0, draws=300, tune=400, chains=2)
    return X, fit


def test_coreset_fit_records_the_coreset_and_matches_full_data_em(coreset_fit):
    from bayes_gmm.em_baseline import fit_em

    X, fit = coreset_fit
    assert fit.attrs["coreset_size"] == 1500 and fit.attrs["n_source"] == len(X)
    assert fit.observed_data["obs"].shape == (1500, 2)
    assert fit.constant_data["sample_weight"].shape == (1500,)
    assert "log_likelihood" not in fit.children
    em = fit_em(X, 3, n_init=3, random_seed=0)
    order = [
        int(np.argmin(((em.means - m) ** 2).sum(axis=1)))
        for m in fit.posterior["means"].mean(("chain", "draw")).values
    ]
    posterior_means = fit.posterior["means"].mean(("chain", "draw")).values
    # The coreset's sampling error in a cluster mean is a few hundredths of the clusters' spread here.
    np.testing.assert_allclose(posterior_means, np.asarray(em.means)[order], atol=0.15)
    membership = membership_probabilities(fit, X)
    assert membership["probability"].shape == (len(X), 3)
    with pytest.raises(ValueError, match="loo_subsampled"):
        loo(fit)
    with pytest.raises(ValueError, match="X is required"):
        loo_subsampled(fit)
    result = loo_subsampled(fit, X, observations=200, random_seed=1)
    assert np.isfinite(result["elpd_loo"]) and result["n_data_points"] == len(X)
    assert result["n_rows_evaluated"] == 200


def test_coreset_fit_rejects_bad_arguments_before_sampling():
    X = _mixture(500, seed=7)
    with pytest.raises(ValueError, match="coreset_size must be smaller"):
        fit_coreset_gmm(X, 2, coreset_size=500)
    with pytest.raises(ValueError, match="sample_weight"):
        fit_coreset_gmm(X, 2, coreset_size=100, sample_weight=np.ones(100))
    with pytest.raises(TypeError, match="unknown options"):
        fit_coreset_gmm(X, 2, coreset_size=100, n_draws=10)


@pytest.fixture(scope="module")
def small_fit():
    X = np.concatenate(
        [np.random.default_rng(8).normal(0, 1, (150, 2)), np.random.default_rng(9).normal(4, 1, (100, 2))]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return X, fit_gmm(X, 2, draws=300, tune=300, chains=2, random_seed=0)


def test_subsampled_loo_agrees_with_full_psis_loo(small_fit):
    X, fit = small_fit
    full = loo(fit)
    # With every row in the "subsample" the difference estimator is the full PSIS-LOO.
    everything = loo_subsampled(fit, observations=len(X))
    assert everything["elpd_loo"] == pytest.approx(full["elpd_loo"], abs=1e-8)
    assert everything["subsampling_se"] == pytest.approx(0.0, abs=1e-8)
    for seed in range(3):
        part = loo_subsampled(fit, observations=100, random_seed=seed)
        assert part["n_rows_evaluated"] == 100 and part["subsample_size"] == 100
        assert abs(part["elpd_loo"] - full["elpd_loo"]) < 3 * part["subsampling_se"]
        assert part["se_loo"] == pytest.approx(full["se_loo"], rel=0.2)
    with pytest.raises(ValueError, match="at most the number of rows"):
        loo_subsampled(fit, observations=len(X) + 1)


def test_weighted_nutpie_fits_compile_nothing_new_and_get_the_new_data_and_weights(
    coreset_fit, count_compiles
):
    X, _ = coreset_fit
    shifted = X[:5000] * 2.0 + 10.0  # stale data or weights would leave the means near X's
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit_coreset_gmm(X, 3, coreset_size=1500, random_seed=0, draws=10, tune=10, chains=1)
        with count_compiles() as records:
            second = fit_coreset_gmm(
                shifted, 3, coreset_size=1000, random_seed=1, draws=100, tune=200, chains=2
            )
    assert records == []  # nothing compiled for new data, weights and coreset size
    mean_of_means = second.posterior["means"].mean(("chain", "draw", "component")).values
    weights = second.posterior["weights"].mean(("chain", "draw")).values
    fitted_mean = (weights[:, None] * second.posterior["means"].mean(("chain", "draw")).values).sum(axis=0)
    # The coreset's error in the overall mean is of order sd / sqrt(m); X's mean is 10 or more away.
    assert np.all(np.abs(fitted_mean - shifted.mean(axis=0)) < 5 * shifted.std(axis=0) / np.sqrt(1000))
    assert not np.allclose(mean_of_means, X.mean(axis=0), atol=1.0)
