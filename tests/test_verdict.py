"""One convergence verdict: its thresholds, the ADVI case, and that every consumer of a fit shows it
(fit_gmm's attrs and warning, select_k's table and picks, the figures, the printed summary)."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr
from matplotlib.colors import to_hex
from matplotlib.text import Text

from bayes_gmm import plots
from bayes_gmm._report import format_bayes_summary, format_k_selection
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import fit_gmm, membership_probabilities, select_k
from bayes_gmm.inference._arviz import parameter_summary
from bayes_gmm.inference._draws import fit_draws
from bayes_gmm.inference._membership import pointwise_log_likelihood
from bayes_gmm.inference._verdict import (
    MAX_RELABELLED_FRACTION,
    MAX_RHAT,
    MIN_ESS_PER_CHAIN,
    fit_verdict,
    judge,
)
from bayes_gmm.plots._fit import CAVEAT_COLOR
from conftest import fake_fit

#: Diagnostics of a NUTS fit that passes every check with 4 chains.
GOOD = {
    "method": "nuts",
    "rhat_max": 1.004,
    "ess_bulk_min": 900.0,
    "ess_tail_min": 800.0,
    "n_divergences": 0,
    "relabelled_fraction": 0.0,
}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# -- the verdict --------------------------------------------------------------------------------------------
def test_a_fit_within_every_threshold_converged():
    at_the_bars = {
        **GOOD,
        "rhat_max": MAX_RHAT,
        "ess_bulk_min": 4 * MIN_ESS_PER_CHAIN,
        "ess_tail_min": 4 * MIN_ESS_PER_CHAIN,
        "relabelled_fraction": MAX_RELABELLED_FRACTION,
    }
    for attrs in (GOOD, at_the_bars):
        verdict = judge(attrs, 4)
        assert verdict.converged and verdict.problems == () and verdict.caveat == ""
        assert verdict.attrs == {"converged": 1, "convergence_problems": ""}


@pytest.mark.parametrize(
    ("change", "n_chains", "problem"),
    [
        ({"rhat_max": 1.03}, 4, "R-hat 1.030 > 1.01"),  # passed the old 1.05 bar of select_k
        ({"rhat_max": float("nan")}, 4, "R-hat nan > 1.01"),
        ({"ess_bulk_min": 399.0}, 4, "bulk ESS 399 < 400"),
        ({"ess_tail_min": 150.0}, 2, "tail ESS 150 < 200"),
        ({"n_divergences": 1}, 4, "1 divergent transition"),
        ({"relabelled_fraction": 0.885}, 4, "88.5% of draws relabelled > 25%"),
        ({"rhat_max": float("nan")}, 1, "one chain: R-hat needs 2 or more chains"),
    ],
)
def test_each_failed_check_is_named(change, n_chains, problem):
    verdict = judge({**GOOD, **change}, n_chains)
    assert not verdict.converged
    assert len(verdict.problems) == 1 and verdict.problems[0].startswith(problem)
    assert verdict.caveat == f"NOT CONVERGED: {verdict.problems[0]}"
    assert verdict.attrs == {"converged": 0, "convergence_problems": verdict.problems[0]}


def test_advi_is_judged_by_its_elbo_not_by_a_nan_rhat():
    advi = {"method": "advi", "rhat_max": float("nan"), "relabelled_fraction": 0.0, "advi_iterations": 200}
    assert judge({**advi, "advi_converged": 1}, 1).converged  # R-hat does not apply to one chain of ADVI
    stopped = judge({**advi, "advi_converged": 0, "advi_tolerance": 1e-4}, 1)
    assert not stopped.converged
    assert stopped.problems == (
        "ADVI stopped at advi_max_iter=200 before its ELBO plateaued (relative change < advi_tolerance=0.0001)",
    )
    assert "advi_max_iter" in stopped.advice
    relabelled = judge({**advi, "advi_converged": 1, "relabelled_fraction": 0.5}, 1)
    assert relabelled.problems == ("50.0% of draws relabelled > 25%",)


def test_fit_gmm_records_the_verdict_and_warns_with_the_same_problems(blobs):
    with pytest.warns(ConvergenceWarning) as record:
        fit = fit_gmm(blobs[:200], 3, draws=30, tune=30, chains=2, random_seed=0)
    assert fit.attrs["converged"] == 0
    problems = fit.attrs["convergence_problems"]
    assert problems == "; ".join(judge(fit.attrs, 2).problems) and "ESS" in problems
    assert any(f"did not converge: {problems}." in str(w.message) for w in record)
    assert "rhat_max" in fit.attrs and "relabelled_fraction" in fit.attrs  # the diagnostics stay


# -- figures ------------------------------------------------------------------------------------------------
def _fit_2d(**attrs) -> xr.DataTree:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0.0, 1.0, (40, 2)), rng.normal(6.0, 1.0, (40, 2))])
    fit = fake_fit([0.5, 0.5], [[0.0, 0.0], [6.0, 6.0]], [np.eye(2), np.eye(2)], X, draws=20, jitter=0.05)
    fit.attrs.update(attrs)
    return fit


def _figure_texts(figure) -> str:
    return "\n".join(t.get_text() for t in figure.findobj(Text))


FIGURES = {
    "clusters": lambda fit: plots.plot_clusters(fit).figure,
    "membership": lambda fit: plots.plot_membership_uncertainty(fit).figure,
    "density 2-D": lambda fit: plots.plot_density(fit).figure,
    "density 1-D": lambda fit: plots.plot_density(_one_feature(fit)).figure,
    "pairs": lambda fit: plots.plot_pairs(fit).flat[0].figure,
    "trace": lambda fit: plots.plot_trace(fit, ["weights", "means"]),
}


def _one_feature(fit) -> xr.DataTree:
    one = fake_fit(
        [0.5, 0.5], [[0.0], [6.0]], [np.eye(1), np.eye(1)], fit.observed_data["obs"].to_numpy()[:, :1]
    )
    one.attrs.update(fit.attrs)
    return one


@pytest.mark.parametrize("figure", list(FIGURES))
def test_every_figure_of_an_unconverged_fit_carries_the_caveat(figure):
    draw = FIGURES[figure]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # ArviZ's KDE of constant weights
        bad = draw(_fit_2d(**{**GOOD, "rhat_max": 1.246, "relabelled_fraction": 0.885}))
        good = draw(_fit_2d(**GOOD))
    text = _figure_texts(bad)
    assert "NOT CONVERGED: R-hat 1.246 > 1.01;" in text and "88.5% of draws relabelled > 25%" in text
    (caveat,) = [t for t in bad.findobj(Text) if t.get_gid() == "caveat:not-converged"]
    assert to_hex(caveat.get_color()) == to_hex(CAVEAT_COLOR)
    assert "NOT CONVERGED" not in _figure_texts(good)


# -- select_k -----------------------------------------------------------------------------------------------
def _three_clusters() -> np.ndarray:
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [3.0, 5.0]])
    return np.concatenate([rng.normal(c, 1.0, size=(40, 2)) for c in centres])


@pytest.fixture
def fake_sampler(monkeypatch):
    """select_k's fit_gmm replaced by draws jittered around its EM start, with chosen R-hat per k."""
    import bayes_gmm.inference._select as select_module

    rhat = {}

    def fake_fit_gmm(X, k, *, em, **options):
        fit = fake_fit(em.weights, em.means, em.full_covariances(), X.values, draws=40, jitter=0.03)
        draws = fit_draws(fit, func="test", em_allowed=False)
        values = pointwise_log_likelihood(draws.X, draws.weights, draws.means, draws.covariances)
        fit["log_likelihood"] = xr.DataTree(
            xr.Dataset({"obs": (("chain", "draw", "obs_id"), values.reshape(2, 40, -1))})
        )
        fit.attrs.update(
            {**GOOD, "rhat_max": rhat.get(k, 1.002), "ess_bulk_min": 300.0, "ess_tail_min": 300.0}
        )
        return fit

    monkeypatch.setattr(select_module, "fit_gmm", fake_fit_gmm)
    return rhat


def test_select_k_keeps_an_unconverged_k_out_of_the_picks_and_weights(fake_sampler):
    X = _three_clusters()
    fake_sampler[3] = 1.03  # the true k, best elpd; converged by the old 1.05 bar, not by 1.01
    selection = select_k(X, [2, 3, 4], random_seed=0)
    table = selection.table
    assert list(table["converged"]) == [True, False, True]
    assert list(table["excluded"]) == [False, True, False]
    assert table.loc[3, "convergence_problems"] == "R-hat 1.030 > 1.01"
    assert selection.picks["loo"] != 3 and selection.picks["waic"] != 3
    assert np.isnan(table.loc[3, "loo_weight"]) and "k=3" not in selection.comparison.index
    np.testing.assert_allclose(table.loc[[2, 4], "loo_weight"].sum(), 1.0)
    assert table.loc[4, "elpd_loo"] == table.loc[[2, 4], "elpd_loo"].max()  # the bar is set by k=4 now
    assert table.loc[4, "dse_loo"] == 0.0
    text = format_k_selection(selection)
    assert "k=3: R-hat 1.030 > 1.01; excluded from the WAIC/LOO picks and weights" in text

    everything = select_k(X, [2, 3, 4], random_seed=0, include_unconverged=True)
    assert not everything.table["excluded"].any() and not everything.table.loc[3, "converged"]
    assert everything.picks["loo"] == 3 and everything.table.loc[3, "loo_weight"] > 0


def test_select_k_picks_nothing_when_no_fit_converged(fake_sampler):
    fake_sampler.update({2: 1.2, 3: 1.2})
    with pytest.warns(ConvergenceWarning, match="no fit converged, so WAIC and LOO pick no k"):
        selection = select_k(_three_clusters(), [2, 3], random_seed=0)
    assert selection.picks["loo"] is None and selection.picks["waic"] is None
    assert selection.picks["bic"] == 3  # EM's criteria do not depend on the Bayesian fits
    assert selection.table["loo_weight"].isna().all() and selection.comparison.empty
    assert "LOO none (no converged fit)" in format_k_selection(selection)
    axes = plots.plot_k_selection(selection)
    assert "no pick" in " ".join(t.get_text() for t in axes[0].get_legend().get_texts())


def test_k_selection_plot_draws_unconverged_fits_apart_with_the_rules_error_bars(fake_sampler):
    fake_sampler[4] = 1.03
    selection = select_k(_three_clusters(), [2, 3, 4], random_seed=0)
    axes = plots.plot_k_selection(selection)
    lines = {line.get_gid(): line for line in axes[0].get_lines()}
    np.testing.assert_allclose(lines["k-selection:loo"].get_xdata(), np.array([2, 3]) - 0.06)
    hollow = lines["k-selection:unconverged:loo"]
    assert list(hollow.get_xdata()) == pytest.approx([4 - 0.06]) and hollow.get_markerfacecolor() == "white"
    best = selection.table.loc[[2, 3], "elpd_loo"].max()
    assert lines["k-selection:best:loo"].get_ydata()[0] == pytest.approx(best)
    bars = [c for c in axes[0].collections if c.get_segments()]
    heights = sorted(np.ptp(seg[:, 1]) for c in bars for seg in c.get_segments())
    np.testing.assert_allclose(
        heights, sorted(2 * selection.table[["dse_loo", "dse_waic"]].to_numpy().ravel())
    )
    title = axes[0].get_title()
    assert "SE of the difference to the best k" in title
    assert "NOT CONVERGED (hollow, grey; excluded from the picks and weights): k=4" in title
    legend = " ".join(t.get_text() for t in axes[0].get_legend().get_texts())
    assert "not converged (hollow, grey)" in legend


# -- the printed summary -----------------------------------------------------------------------------------
def test_the_summary_of_an_unconverged_fit_says_so_first():
    bad = _fit_2d(**{**GOOD, "rhat_max": 1.246, "backend": "nutpie", "n_components": 2})
    bad.attrs.update(covariance_type="full", sampling_time_s=1.0)
    text = format_bayes_summary(bad, parameter_summary(bad, ["weights"]), membership_probabilities(bad))
    first, second = text.splitlines()[:2]
    assert first == "NOT CONVERGED: R-hat 1.246 > 1.01."
    assert "R-hat <= 1.01" in second and "Do not rely on the results below" in second
    good = _fit_2d(**{**bad.attrs, "rhat_max": 1.004})
    text = format_bayes_summary(good, parameter_summary(good, ["weights"]), membership_probabilities(good))
    assert text.startswith("Bayesian Gaussian mixture by NUTS") and "NOT CONVERGED" not in text
    assert "  converged: R-hat <= 1.01, bulk and tail ESS >= 100 per chain" in text


def test_an_em_fit_that_stopped_at_max_iter_is_marked_too():
    from bayes_gmm._report import format_em_summary
    from bayes_gmm.em_baseline import fit_em

    X = _three_clusters()
    with pytest.warns(ConvergenceWarning):
        stopped = fit_em(X, 3, max_iter=1, n_init=1, random_seed=0)
    assert fit_verdict(stopped).problems == (
        "EM stopped after 1 iteration before the log-likelihood settled",
    )
    assert (
        plots.plot_clusters(stopped, X).get_title().startswith("NOT CONVERGED: EM stopped after 1 iteration")
    )
    assert format_em_summary(stopped).startswith("NOT CONVERGED: EM stopped after 1 iteration")
    settled = fit_em(X, 3, n_init=1, random_seed=0)
    assert (
        fit_verdict(settled).converged and "NOT CONVERGED" not in plots.plot_clusters(settled, X).get_title()
    )


def test_select_k_reports_each_k_on_stderr_in_the_command_and_nothing_by_default(fake_sampler, capsys):
    """The API is silent unless given `progress` (as scikit-learn is); the command passes its stderr."""
    from bayes_gmm import cli

    select_k(_three_clusters(), [1, 2], random_seed=0)
    assert capsys.readouterr() == ("", "")
    argv = ["select-k", "--demo", "--components", "1,2", "--no-plots", "--chains", "2", "--draws", "40"]
    assert cli.main(argv) == 0
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("fitting")]
    assert progress == ["fitting k=1 (full), 1 of 2 ...", "fitting k=2 (full), 2 of 2 ..."]
    assert cli.main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""
