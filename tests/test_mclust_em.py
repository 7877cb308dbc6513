"""EM for mclust's 14 covariance models against R mclust 6.0.0 (fixtures in tests/data/mclust/, made by
make_mclust_reference.R there): log-likelihoods, parameter counts, BIC, and the BIC-selected model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_gmm.covariance import get_structure
from bayes_gmm.em_baseline import fit_em, search_models

DATA = Path(__file__).parent / "data"
DATASETS = ("faithful", "iris", "diabetes", "acidity")


def load(dataset):
    ref = json.loads((DATA / "mclust" / f"mclust_fits_{dataset}.json").read_text())
    return pd.read_csv(DATA / ref["csv"]).to_numpy(dtype=float), ref


@pytest.fixture(scope="module", params=DATASETS)
def searched(request):
    """Our search over the models and K of the fixture, with default EM settings."""
    X, ref = load(request.param)
    return X, ref, search_models(X, ref["G"], ref["models"], random_seed=0)


def test_em_reaches_mclust_log_likelihood_for_every_model_and_k(searched):
    _, ref, search = searched
    short = []
    for entry in ref["fits"]:
        ours = search.table.loc[(entry["model"], entry["G"])]
        if ours["log_likelihood"] < entry["fit"]["loglik"] - 1e-3:
            short.append((entry["model"], entry["G"], ours["log_likelihood"], entry["fit"]["loglik"]))
    assert not short, f"EM below mclust's log-likelihood: {short}"


def test_parameter_counts_and_bic_match_mclust(searched):
    X, ref, search = searched
    for entry in ref["fits"]:
        ours = search.table.loc[(entry["model"], entry["G"])]
        assert ours["n_parameters"] == entry["fit"]["df"], (entry["model"], entry["G"])
        # mclust's BIC (higher is better) from the same log-likelihood is minus ours.
        expected = -(2 * ours["log_likelihood"] - entry["fit"]["df"] * np.log(X.shape[0]))
        np.testing.assert_allclose(ours["bic"], expected, rtol=1e-12)
        np.testing.assert_allclose(
            ours["bic"],
            -entry["fit"]["bic"],
            atol=2e-3 + 2 * abs(ours["log_likelihood"] - entry["fit"]["loglik"]),
        )


def test_bic_selects_mclusts_model(searched):
    _, ref, search = searched
    top = ref["mclustBIC"]["top3"][0]
    assert search.best(1).index[0] == (top["model"], top["G"])


def test_every_mclust_model_keeps_its_constraints_after_em():
    X, _ = load("iris")
    for name in ("EII", "EEI", "VEI", "EVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV", "EVV"):
        fit = fit_em(X, 3, covariance_type=name, random_seed=1, reg_covar=0.0)
        cov = fit.full_covariances()
        volume = np.linalg.det(cov) ** (1 / X.shape[1])
        if name[0] == "E":
            np.testing.assert_allclose(volume, volume[0], rtol=1e-8, err_msg=name)
        if name[2] == "I":
            np.testing.assert_allclose(cov * (1 - np.eye(X.shape[1])), 0.0, atol=1e-12, err_msg=name)
        assert fit.n_parameters == 2 + 3 * 4 + get_structure(name).n_parameters(3, 4)


def test_one_feature_models_need_one_feature():
    with pytest.raises(ValueError, match=r"covariance_type='E' needs exactly one feature; the data have 2"):
        fit_em(np.random.default_rng(0).normal(size=(50, 2)), 2, covariance_type="E")
    with pytest.raises(ValueError, match=r"covariance_type='VEV' needs two or more features"):
        fit_em(np.random.default_rng(0).normal(size=(50, 1)), 2, covariance_type="VEV")


def test_model_search_plot_and_report_name_mclusts_choice(searched):
    import matplotlib

    matplotlib.use("Agg")
    from bayes_gmm import plots
    from bayes_gmm._report import format_model_search

    _, ref, search = searched
    top = ref["mclustBIC"]["top3"][0]
    ax = plots.plot_model_search(search)
    lines = [a for a in ax.get_lines() if (a.get_gid() or "").startswith("model-search:")]
    assert sorted(a.get_gid() for a in lines if a.get_gid() != "model-search:best") == sorted(
        f"model-search:{m}" for m in ref["models"]
    )
    best = next(a for a in lines if a.get_gid() == "model-search:best")
    assert best.get_xdata()[0] == top["G"]
    np.testing.assert_allclose(best.get_ydata()[0], -top["bic"], atol=0.01 * abs(top["bic"]))
    assert ax.get_title() == f"best by BIC: {top['model']}, K = {top['G']}"
    report = format_model_search(search)
    assert f"best by BIC: {top['model']},{top['G']} (" in report
    assert (
        len(report.splitlines()) == len(ref["models"]) + 6
    )  # heading, 2 header rows, models, blank, 2 picks
    matplotlib.pyplot.close("all")


def test_search_on_large_weighted_data_counts_each_weight_as_copies():
    """Above 1,000 rows the restarts run on a subset (and its weights): integer weights give the fits of the
    data with each row repeated that many times; rows of weight 0 are never the whole subset."""
    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(0.0, 1.0, (1300, 2)), rng.normal(5.0, 1.0, (1300, 2))])
    weights = rng.integers(0, 4, size=len(X))
    weighted = search_models(X, [1, 2], ["VVV", "EII"], random_seed=0, sample_weight=weights.astype(float))
    repeated = search_models(np.repeat(X, weights, axis=0), [1, 2], ["VVV", "EII"], random_seed=0)
    np.testing.assert_allclose(weighted.table["log_likelihood"], repeated.table["log_likelihood"], rtol=1e-6)
    np.testing.assert_allclose(weighted.table["bic"], repeated.table["bic"], rtol=1e-6)
    sparse = np.zeros(len(X))
    sparse[rng.choice(len(X), 12, replace=False)] = 1.0
    assert not search_models(X, [1, 2, 3], ["EII"], random_seed=0, sample_weight=sparse).table["failed"].any()
    with pytest.raises(ValueError, match=r"sample_weight must be a 1-D array of n_samples = 2600"):
        search_models(X, [2], ["VVV"], sample_weight=np.ones(10))


def test_a_fit_starts_a_fit_of_the_same_model_under_its_other_name():
    X, _ = load("faithful")
    full = fit_em(X, 2, covariance_type="full", random_seed=0)
    continued = fit_em(X, 2, covariance_type="VVV", initial_params=full, n_init=1)
    assert continued.log_likelihood >= full.log_likelihood - 1e-9  # EM never lowers the likelihood
    with pytest.raises(ValueError, match=r"fitted with covariance_type='full' but covariance_type='VEV'"):
        fit_em(X, 2, covariance_type="VEV", initial_params=full, n_init=1)
