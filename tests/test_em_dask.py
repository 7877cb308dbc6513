"""EM with sample weights, and EM on Dask (threaded, on a local dask.distributed cluster, out of core from
zarr): each against an independent reference, the in-memory fit of the same data (rows repeated for
integer weights)."""

from __future__ import annotations

import warnings

import dask.array as da  # the test extra installs Dask: a missing one fails here, not skips
import dask.dataframe as dd
import distributed
import numpy as np
import pandas as pd
import pytest
import zarr

from bayes_gmm.em_baseline import _dask, fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.sources import open_dask

TYPES = ["full", "tied", "diag", "spherical", "VEV"]
RTOL = 1e-10


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(20261126)
    parts = [
        rng.normal([0.0, 0.0], [1.0, 0.6], size=(700, 2)),
        rng.normal([4.0, 3.0], [0.8, 1.2], size=(500, 2)),
        rng.multivariate_normal([-3.0, 4.0], [[0.6, 0.3], [0.3, 0.5]], size=(400,)),
    ]
    X = np.concatenate(parts)
    return X[rng.permutation(len(X))]


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit_em(*args, **kwargs)


def start_for(X, covariance_type):
    """Starting parameters (a k-means start, no EM update): both fits below begin here."""
    return quiet_fit(X, 3, covariance_type=covariance_type, n_init=1, max_iter=0, random_seed=3)


def assert_same_fit(ours, reference, rtol=RTOL):
    assert ours.n_iter == reference.n_iter and ours.converged == reference.converged
    for name in ("weights", "means", "covariances", "log_likelihood_history"):
        np.testing.assert_allclose(getattr(ours, name), getattr(reference, name), rtol=rtol, atol=1e-13)
    for name in ("log_likelihood", "bic", "aic", "icl"):
        value = getattr(ours, name)
        value = value() if callable(value) else value
        expected = getattr(reference, name)
        expected = expected() if callable(expected) else expected
        np.testing.assert_allclose(value, expected, rtol=rtol)


# -- sample weights, in memory -------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", TYPES)
def test_integer_weights_equal_repeated_rows(blobs, covariance_type):
    rng = np.random.default_rng(1)
    weights = rng.integers(0, 4, size=len(blobs)).astype(float)  # zeros included: those rows drop out
    repeated = np.repeat(blobs, weights.astype(int), axis=0)
    start = start_for(blobs, covariance_type)
    weighted = quiet_fit(
        blobs, 3, covariance_type=covariance_type, sample_weight=weights, initial_params=start, n_init=1
    )
    reference = quiet_fit(repeated, 3, covariance_type=covariance_type, initial_params=start, n_init=1)
    assert weighted.total_weight == weights.sum() == len(repeated)
    assert weighted.n_samples == len(blobs)
    assert_same_fit(weighted, reference, rtol=1e-8)


def test_weighted_default_starts_reach_the_repeated_rows_fit(blobs):
    """The starts are weighted too (k-means++ and Lloyd): the default fit finds the same maximum."""
    weights = np.random.default_rng(2).integers(1, 4, size=len(blobs)).astype(float)
    weighted = fit_em(blobs, 3, sample_weight=weights, random_seed=0, tol=1e-12)
    reference = fit_em(np.repeat(blobs, weights.astype(int), axis=0), 3, random_seed=0, tol=1e-12)
    np.testing.assert_allclose(weighted.log_likelihood, reference.log_likelihood, rtol=1e-10)
    order = np.argsort(weighted.means[:, 0]), np.argsort(reference.means[:, 0])
    np.testing.assert_allclose(weighted.means[order[0]], reference.means[order[1]], atol=1e-6)


def test_unit_weights_change_nothing(blobs):
    start = start_for(blobs, "full")
    plain = quiet_fit(blobs, 3, initial_params=start, n_init=1)
    weighted = quiet_fit(blobs, 3, initial_params=start, n_init=1, sample_weight=np.ones(len(blobs)))
    assert_same_fit(weighted, plain)


BAD_WEIGHTS = {
    "negative": (
        lambda n: np.r_[np.ones(n - 1), -2.0],
        ValueError,
        r"sample_weight .*1 negative weight.*index",
    ),
    "nan": (lambda n: np.r_[np.nan, np.ones(n - 1)], ValueError, r"sample_weight .*NaN or infinite.*index 0"),
    "shape": (
        lambda n: np.ones((n, 1)),
        ValueError,
        r"sample_weight must be a 1-D array of n_samples = \d+.*got shape",
    ),
    "length": (
        lambda n: np.ones(n + 1),
        ValueError,
        r"sample_weight .*got shape \(\d+,\)\. Pass one weight per row",
    ),
    "all-zero": (
        lambda n: np.zeros(n),
        ValueError,
        r"sample_weight must give at least n_components = 3 rows",
    ),
    "text": (lambda n: ["a"] * n, TypeError, r"sample_weight must be .*cannot be converted to float"),
}


@pytest.mark.parametrize(("make", "error", "message"), BAD_WEIGHTS.values(), ids=BAD_WEIGHTS.keys())
@pytest.mark.parametrize("as_dask", [False, True], ids=["numpy", "dask"])
def test_bad_sample_weight_is_refused_before_fitting(blobs, monkeypatch, make, error, message, as_dask):
    monkeypatch.setattr(_dask, "_run_em_dask", lambda *a, **k: pytest.fail("EM ran"))
    X = da.from_array(blobs, chunks=(400, 2)) if as_dask else blobs
    with pytest.raises(error, match=message):
        fit_em(X, 3, sample_weight=make(len(blobs)), max_iter=0, n_init=1)


@pytest.mark.parametrize(
    ("make", "message"), [(k, v[2]) for k, v in BAD_WEIGHTS.items() if k in ("negative", "nan", "all-zero")]
)
def test_bad_dask_sample_weight_is_refused_in_the_first_pass(blobs, monkeypatch, make, message):
    monkeypatch.setattr(_dask, "_run_em_dask", lambda *a, **k: pytest.fail("EM ran"))
    weights = da.from_array(BAD_WEIGHTS[make][0](len(blobs)), chunks=300)
    with pytest.raises(ValueError, match=message):
        fit_em(da.from_array(blobs, chunks=(400, 2)), 3, sample_weight=weights, init_sample_size=100)


# -- Dask -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", TYPES)
def test_dask_em_equals_in_memory_em(blobs, covariance_type):
    start = start_for(blobs, covariance_type)
    reference = quiet_fit(blobs, 3, covariance_type=covariance_type, initial_params=start, n_init=1)
    ours = quiet_fit(
        da.from_array(blobs, chunks=(300, 2)),
        3,
        covariance_type=covariance_type,
        initial_params=start,
        n_init=1,
    )
    assert ours.train_log_resp_max is None  # no per-sample array for Dask data
    assert reference.n_iter > 2
    assert_same_fit(ours, reference)


def test_default_path_equals_in_memory_when_the_sample_is_the_whole_data(blobs):
    reference = fit_em(blobs, 3, random_seed=7, n_init=3)
    ours = fit_em(da.from_array(blobs, chunks=(500, 2)), 3, random_seed=7, n_init=3)
    assert ours.train_log_resp_max is None
    assert_same_fit(ours, reference)


def test_starts_on_a_sample_then_em_on_all_rows(blobs):
    X = da.from_array(blobs, chunks=(250, 2))
    messages = []
    fit = fit_em(X, 3, random_seed=0, init_sample_size=400, progress=messages.append)
    again = fit_em(X, 3, random_seed=0, init_sample_size=400)
    assert_same_fit(again, fit, rtol=0)  # reproducible from the seed
    assert any("random sample of 400 rows" in m for m in messages)
    assert sum(m.startswith("EM iteration") for m in messages) == fit.n_iter
    assert all(m.endswith("...") for m in messages)
    # EM over all rows, from the sample's best start, ends at the in-memory maximum.
    reference = fit_em(blobs, 3, random_seed=0)
    np.testing.assert_allclose(fit.log_likelihood, reference.log_likelihood, rtol=1e-6)
    assert fit.converged and fit.n_samples == len(blobs)


def test_weighted_dask_em_equals_repeated_rows(blobs):
    weights = np.random.default_rng(4).integers(0, 3, size=len(blobs)).astype(float)
    start = start_for(blobs, "full")
    reference = quiet_fit(np.repeat(blobs, weights.astype(int), axis=0), 3, initial_params=start, n_init=1)
    X = da.from_array(blobs, chunks=(300, 2))
    for w in (weights, da.from_array(weights, chunks=170)):  # NumPy or Dask weights, rechunked to X's rows
        ours = quiet_fit(X, 3, sample_weight=w, initial_params=start, n_init=1)
        assert ours.total_weight == weights.sum()
        assert_same_fit(ours, reference, rtol=1e-8)


def test_dask_dataframe_of_numeric_columns(blobs):
    frame = dd.from_pandas(pd.DataFrame(blobs, columns=["a", "b"]), npartitions=4)
    assert_same_fit(fit_em(frame, 3, random_seed=0, n_init=2), fit_em(blobs, 3, random_seed=0, n_init=2))
    with pytest.raises(TypeError, match=r"non-numeric column\(s\) \['label'\]"):
        fit_em(frame.assign(label="x"), 3)


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_local_distributed_cluster_gives_the_same_fit(blobs, processes):
    X = da.from_array(blobs, chunks=(300, 2))
    start = start_for(blobs, "full")
    reference = quiet_fit(blobs, 3, initial_params=start, n_init=1)
    threaded = fit_em(X, 3, random_seed=1, init_sample_size=500, n_init=2)
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=processes,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    )
    with cluster, distributed.Client(cluster) as client:
        with distributed.get_task_stream() as tasks:  # collected when the block ends
            ours = quiet_fit(X, 3, initial_params=start, n_init=1)
            on_cluster = fit_em(X, 3, random_seed=1, init_sample_size=500, n_init=2)
        workers = {t["worker"] for t in tasks.data if str(t["key"]).startswith("_chunk_statistics")}
        assert workers == set(client.scheduler_info()["workers"]) and len(workers) == 2
    assert_same_fit(ours, reference)
    assert_same_fit(on_cluster, threaded, rtol=0)  # the same tree of sums on any scheduler


def test_zarr_store_is_fitted_chunk_by_chunk(blobs, tmp_path, monkeypatch):
    chunk_rows = 200
    store = zarr.create_array(
        store=tmp_path / "data.zarr", shape=blobs.shape, chunks=(chunk_rows, 2), dtype="f8"
    )
    store[:] = blobs
    store.attrs["feature_names"] = ["u", "v"]
    data = open_dask(tmp_path / "data.zarr")
    assert data.feature_names == ("u", "v") and data.kind == "zarr"
    assert data.array.numblocks[0] == 8  # the store is 8 chunks, the "budget" one chunk
    rows_seen = []
    for name in ("_chunk_kernel", "log_responsibilities"):
        real = getattr(_dask, name)

        def recorded(X, *args, _real=real, _rows=(lambda X: X.shape[1]) if name == "_chunk_kernel" else len):
            rows_seen.append(_rows(X))
            return _real(X, *args)

        monkeypatch.setattr(_dask, name, recorded)
    start = start_for(blobs, "VEV")
    ours = quiet_fit(data.array, 3, covariance_type="VEV", initial_params=start, n_init=1)
    assert max(rows_seen) <= chunk_rows and len(rows_seen) == 8 * (ours.n_iter + 1)
    assert_same_fit(ours, quiet_fit(blobs, 3, covariance_type="VEV", initial_params=start, n_init=1))


def test_parquet_folder_keeps_column_names(blobs, tmp_path):
    folder = tmp_path / "table"
    folder.mkdir()
    frame = pd.DataFrame({"a": blobs[:, 0], "b": blobs[:, 1], "name": "x"})
    for i, part in enumerate(np.array_split(np.arange(len(blobs)), 3)):
        frame.iloc[part].to_parquet(folder / f"part-{i}.parquet")
    data = open_dask(folder)
    assert data.feature_names == ("a", "b") and data.shape == blobs.shape
    assert_same_fit(fit_em(data.array, 3, random_seed=0, n_init=2), fit_em(blobs, 3, random_seed=0, n_init=2))


def test_sparse_weights_missing_from_the_start_sample_get_a_message_about_the_sample(blobs):
    weights = np.zeros(len(blobs))
    weights[:3] = 1.0
    with pytest.raises(
        ValueError, match=r"random sample of 100 rows .* holds [0-2] row\(s\) with a positive sample_weight"
    ):
        fit_em(
            da.from_array(blobs, chunks=400), 3, init_sample_size=100, sample_weight=weights, random_seed=0
        )


def test_parquet_leaves_flags_out_and_reports_missing_values(blobs, tmp_path):
    folder = tmp_path / "flags"
    folder.mkdir()
    frame = pd.DataFrame({"a": blobs[:, 0], "b": blobs[:, 1], "flag": blobs[:, 0] > 0})
    frame["count"] = pd.array(np.arange(len(blobs)), dtype="Int64")
    frame.loc[7, "count"] = pd.NA
    frame.to_parquet(folder / "part-0.parquet")
    data = open_dask(folder)
    assert data.feature_names == ("a", "b", "count")  # booleans only when named, as for a CSV
    with pytest.raises(ValueError, match=r"NaN or infinity in 1 row\(s\), first at row 7, column 2"):
        fit_em(data.array, 2, random_seed=0)


def test_bad_dask_data_is_refused(blobs, monkeypatch):
    monkeypatch.setattr(_dask, "_run_em_dask", lambda *a, **k: pytest.fail("EM ran"))
    bad = blobs.copy()
    bad[450, 1] = np.nan
    with pytest.raises(
        ValueError, match=r"finite values; found NaN or infinity in 1 row\(s\), first at row 450, column 1"
    ):
        fit_em(da.from_array(bad, chunks=(200, 2)), 3, init_sample_size=100)
    with pytest.raises(ValueError, match=r"must be 2-D .*reshape\(-1, 1\)"):
        fit_em(da.from_array(blobs[:, 0], chunks=200), 3)
    with pytest.raises(ValueError, match="initial_resp is not supported for Dask data"):
        fit_em(da.from_array(blobs, chunks=(200, 2)), 3, initial_resp=np.ones((len(blobs), 3)), n_init=1)
