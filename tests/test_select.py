"""Choosing k: WAIC, LOO and BIC pick the true k on clear data; the table agrees with ArviZ."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

from bayes_gmm.inference import CRITERIA, select_k
from bayes_gmm.inference._select import _pick_within_one_se

TRUE_K = 3


@pytest.fixture(scope="module")
def selection():
    rng = np.random.default_rng(11)
    centres = np.array([[0.0, 0.0], [7.0, 0.0], [3.5, 6.0]])
    X = np.concatenate([rng.normal(c, 1.0, size=(50, 2)) for c in centres])
    messages = []
    # 4 x 500 draws: with 2 x 1000, the max R-hat of the good k=3 fit scatters around the 1.01 bar.
    result = select_k(
        X,
        [2, 3, 4],
        covariance_type="full",
        draws=500,
        tune=500,
        chains=4,
        random_seed=2,
        progress=messages.append,
    )
    return X, result, messages


def _textbook_waic(log_lik) -> dict:
    """WAIC by its definitions from a (chain, draw, obs_id) DataArray, chains and draws pooled.

    lppd_i = log mean_s exp(l_si); p_i = var_s(l_si) (ddof=0); elpd_i = lppd_i - p_i;
    se = sqrt(n var(elpd_i)) (ddof=0). Stands in for ``arviz.waic``, which ArviZ 1 removed.
    """
    arr = log_lik.transpose("chain", "draw", "obs_id").to_numpy()
    arr = arr.reshape(-1, arr.shape[-1])
    lppd_i = logsumexp(arr, axis=0) - np.log(arr.shape[0])
    p_i = np.mean((arr - arr.mean(axis=0)) ** 2, axis=0)
    elpd_i = lppd_i - p_i
    return {
        "elpd_waic": elpd_i.sum(),
        "se": np.sqrt(elpd_i.size * np.mean((elpd_i - elpd_i.mean()) ** 2)),
        "p_waic": p_i.sum(),
    }


def test_waic_loo_and_bic_pick_the_true_k(selection):
    _, result, _ = selection
    assert set(result.picks) == set(CRITERIA)
    assert result.picks["waic"] == TRUE_K
    assert result.picks["loo"] == TRUE_K
    assert result.picks["bic"] == TRUE_K
    assert result.picks["icl"] == TRUE_K


def test_table_agrees_with_arviz(selection):
    _, result, _ = selection
    table = result.table
    assert list(table.index) == [2, 3, 4]
    # k=4 on three clusters duplicates a component: it does not converge, and is left out of the comparison.
    assert list(table["excluded"]) == [False, False, True] and not table.loc[4, "converged"]
    assert "relabelled" in table.loc[4, "convergence_problems"]
    assert list(result.comparison.index) in (["k=3", "k=2"], ["k=2", "k=3"])
    assert np.isnan(table.loc[4, "loo_weight"]) and table["loo_rank"].isna().tolist() == [False, False, True]
    for k, idata in result.fits.items():
        waic = _textbook_waic(idata.log_likelihood["obs"])
        # Our NumPy WAIC against the textbook definitions (and the SE of differences below against ArviZ).
        np.testing.assert_allclose(table.loc[k, "elpd_waic"], waic["elpd_waic"], rtol=1e-10)
        np.testing.assert_allclose(table.loc[k, "se_waic"], waic["se"], rtol=1e-10)
        assert table.loc[k, "elpd_loo"] <= table.loc[k, "elpd_waic"] + 1.0  # LOO is the more cautious one
        np.testing.assert_allclose(table.loc[k, "p_waic"], waic["p_waic"], rtol=1e-10)
        if k == 4:
            continue
        # Our SE of the difference to the best included k is ArviZ compare's dse.
        np.testing.assert_allclose(table.loc[k, "dse_loo"], result.comparison.loc[f"k={k}", "dse"], atol=1e-8)
        assert table.loc[k, "loo_rank"] == result.comparison.loc[f"k={k}", "rank"]
    np.testing.assert_allclose(table["loo_weight"].sum(), 1.0, atol=1e-8)


def test_em_columns_come_from_the_em_fits(selection):
    X, result, messages = selection
    table = result.table
    for k, em in result.em_fits.items():
        assert em.n_components == k
        assert table.loc[k, "em_bic"] == pytest.approx(
            -2 * em.log_likelihood + em.n_parameters * np.log(len(X))
        )
        assert table.loc[k, "em_aic"] == pytest.approx(-2 * em.log_likelihood + 2 * em.n_parameters)
        assert table.loc[k, "em_icl"] >= table.loc[k, "em_bic"]  # ICL adds a non-negative entropy term
    # Maximum likelihood never decreases with more components.
    assert np.all(np.diff(table["em_log_likelihood"].to_numpy()) > -1e-6)
    assert messages == [f"fitting k={k} (full), {i} of 3 ..." for i, k in enumerate([2, 3, 4], start=1)]


@pytest.mark.parametrize(
    ("n_components", "options", "error", "match"),
    [
        ([2, 2], {}, ValueError, "no k twice"),
        ("three", {}, TypeError, "n_components must be an int K"),
        ([0, 1], {}, ValueError, "n_components"),
        ([2, 500], {}, ValueError, "only 150 samples"),
        (3, {"log_likelihood": False}, ValueError, "select_k sets log_likelihood"),
    ],
)
def test_select_k_bad_input(n_components, options, error, match):
    X = np.random.default_rng(0).normal(size=(150, 2))
    with pytest.raises(error, match=match):
        select_k(X, n_components, **options)


def test_one_se_rule_skips_unconverged_fits():
    """A k whose chains did not converge neither wins nor sets the bar (seen: faithful k=4, R-hat 1.6)."""
    table = pd.DataFrame(
        {
            "elpd_loo": [-1294.0, -1142.0, -1137.0, -1133.0],
            "dse_loo": [15.0, 4.7, 2.0, 0.0],
            "excluded": [False, False, False, True],
            "n_parameters": [5, 11, 17, 23],
        },
        index=pd.Index([1, 2, 3, 4], name="n_components"),
    )
    table["dse_loo"] = [16.0, 3.0, 0.0, 2.0]  # differences to the best converged k (3)
    assert _pick_within_one_se(table, "loo") == 3
    table["dse_loo"] = [16.0, 6.0, 0.0, 2.0]  # k=2 within one SE of k=3
    assert _pick_within_one_se(table, "loo") == 2
    table["excluded"] = False
    table["dse_loo"] = [20.0, 8.0, 4.0, 0.0]  # now k=4 counts and k=3 is within one SE of it
    assert _pick_within_one_se(table, "loo") == 3
    table["excluded"] = True
    assert _pick_within_one_se(table, "loo") is None  # nothing left to pick from


@pytest.mark.parametrize(
    ("covariance_type", "message"),
    [
        (None, r"covariance_type must be a covariance type's name or a list of names; got None"),
        ([], r"covariance_type must name at least one covariance type; got an empty list"),
        (["full", "VVV"], r"must not name a type twice \(aliases count as the same: VVV is full\)"),
    ],
)
def test_bad_covariance_type_lists_are_refused(covariance_type, message):
    with pytest.raises(ValueError, match=message):
        select_k(np.random.default_rng(0).normal(size=(60, 2)), 2, covariance_type=covariance_type)


def test_one_se_rule_across_covariance_models_picks_the_fewest_parameters():
    index = pd.MultiIndex.from_tuples(
        [("VVV", 2), ("VVV", 3), ("EEE", 2), ("EEE", 3)], names=["covariance_type", "n_components"]
    )
    table = pd.DataFrame(
        {
            "elpd_loo": [-1140.0, -1130.0, -1150.0, -1131.0],
            "dse_loo": [6.0, 0.0, 9.0, 2.0],
            "excluded": False,
            "n_parameters": [11, 17, 9, 14],
        },
        index=index,
    )
    assert _pick_within_one_se(table, "loo") == ("EEE", 3)  # within one SE of VVV,3 with fewer parameters
    table.loc[("EEE", 3), "dse_loo"] = 0.5
    assert _pick_within_one_se(table, "loo") == ("VVV", 3)


def test_data_too_small_for_the_largest_k_is_refused_before_any_fit(monkeypatch):
    import bayes_gmm.inference._select as select_module

    def no_fit(*args, **kwargs):
        raise AssertionError("select_k fitted before checking the data for the largest k")

    monkeypatch.setattr(select_module, "fit_gmm", no_fit)
    monkeypatch.setattr(select_module, "fit_em", no_fit)
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=r"too few for 8 component\(s\) with covariance_type='full'"):
        select_k(X, [1, 8], covariance_type="full")


def test_covariance_types_side_by_side(selection):
    """Several covariance types in one table: on round clusters of one size EII (fewest parameters) wins."""
    import matplotlib

    matplotlib.use("Agg")
    from bayes_gmm import plots
    from bayes_gmm._report import format_k_selection

    X, _, _ = selection
    # 2 x 300 draws: with fewer, R-hat of the good fits scatters around the 1.05 bar that excludes a fit.
    result = select_k(
        X, [2, 3], covariance_type=["full", "EII"], draws=300, tune=300, chains=2, random_seed=2
    )
    assert list(result.table.index) == [("full", 2), ("full", 3), ("EII", 2), ("EII", 3)]
    assert set(result.fits) == set(result.table.index) == set(result.em_fits)
    assert result.picks["bic"] == ("EII", 3) and type(result.picks["bic"][1]) is int
    assert result.picks["loo"][1] == TRUE_K
    assert "fewest free parameters" in result.rule
    for key, em in result.em_fits.items():
        assert em.covariance_type == key[0] and em.n_components == key[1]
        np.testing.assert_allclose(result.table.loc[key, "em_bic"], em.bic())
    axes = plots.plot_k_selection(result)
    gids = {line.get_gid() for ax in axes for line in ax.get_lines()}
    assert {"k-selection:bic:full", "k-selection:bic:EII", "k-selection:pick:bic"} <= gids
    assert "picks EII, k = 3" in axes[1].get_title()
    loo_pick = next(line for line in axes[0].get_lines() if line.get_gid() == "k-selection:pick:loo")
    picked = next(
        line for line in axes[0].get_lines() if line.get_gid() == f"k-selection:loo:{result.picks['loo'][0]}"
    )
    x, y = picked.get_data()
    index = int(np.argmin(np.abs(x - TRUE_K)))
    assert (loo_pick.get_xdata()[0], loo_pick.get_ydata()[0]) == (x[index], y[index])  # circled on its point
    assert "BIC EII,k=3" in format_k_selection(result)
    matplotlib.pyplot.close("all")


@pytest.mark.parametrize(("module", "call"), [("_select", "select_k"), ("_coreset", "fit_coreset_gmm")])
def test_the_em_start_of_bayesian_fits_is_fit_ems_default(monkeypatch, module, call):
    """select_k and fit_coreset_gmm start NUTS from an EM fit made with fit_em's default start (init="hc")."""
    import importlib
    import inspect

    from bayes_gmm.em_baseline import fit_em

    target = importlib.import_module(f"bayes_gmm.inference.{module}")
    seen = []

    class Stop(Exception):
        pass

    def recording_fit_em(X, k, **options):
        seen.append(options["init"])
        raise Stop

    monkeypatch.setattr(target, "fit_em", recording_fit_em)
    X = np.random.default_rng(0).normal(size=(400, 2))
    options = {"coreset_size": 100} if call == "fit_coreset_gmm" else {}
    with pytest.raises(Stop):
        getattr(target, call)(X, 2, random_seed=0, **options)
    assert seen == [inspect.signature(fit_em).parameters["init"].default] == ["hc"]
