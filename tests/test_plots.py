"""The figures in bayes_gmm.plots: what they draw matches the fits they are given, and they save as PNG."""

from __future__ import annotations

import re
import types
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.colors import to_rgba
from sklearn.metrics import adjusted_rand_score

from bayes_gmm import plots
from bayes_gmm.datasets._simulated import elongated_clusters
from bayes_gmm.em_baseline import fit_em
from bayes_gmm.exceptions import ConvergenceWarning
from bayes_gmm.inference import fit_gmm
from bayes_gmm.inference._membership import membership_probabilities
from bayes_gmm.plots._ellipses import covariance_ellipse
from conftest import fake_fit

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data_2d() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    a = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.6], [0.6, 0.8]], size=70)
    b = rng.multivariate_normal([4.0, 3.0], [[0.5, -0.2], [-0.2, 1.0]], size=50)
    return pd.DataFrame(np.concatenate([a, b]), columns=["length", "width"])


@pytest.fixture(scope="module")
def em_2d(data_2d):
    return fit_em(data_2d, 2, n_init=3, random_seed=0)


@pytest.fixture(scope="module")
def idata_2d(data_2d):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 100 draws are enough to draw, not to converge
        return fit_gmm(data_2d, 2, draws=100, tune=100, chains=2, random_seed=0)


@pytest.fixture(scope="module")
def data_1d() -> np.ndarray:
    rng = np.random.default_rng(2)
    return np.concatenate([rng.normal(-2.0, 0.5, 60), rng.normal(3.0, 1.0, 90)])[:, None]


def synthetic_posterior(X, weights, means, covariances, features) -> xr.DataTree:
    """A DataTree shaped like fit_gmm's, from given draws (chain, draw, ...), without sampling."""
    n_chains, n_draws, n_components = np.shape(weights)
    coords = {
        "chain": np.arange(n_chains),
        "draw": np.arange(n_draws),
        "component": np.arange(n_components),
        "feature": list(features),
        "feature_cov": list(features),
    }
    posterior = xr.Dataset(
        {
            "weights": (("chain", "draw", "component"), np.asarray(weights)),
            "means": (("chain", "draw", "component", "feature"), np.asarray(means)),
            "covariances": (
                ("chain", "draw", "component", "feature", "feature_cov"),
                np.asarray(covariances),
            ),
        },
        coords=coords,
    )
    observed = xr.Dataset(
        {"obs": (("obs_id", "feature"), np.asarray(X, dtype=float))},
        coords={"obs_id": np.arange(len(X)), "feature": list(features)},
    )
    return xr.DataTree.from_dict({"posterior": posterior, "observed_data": observed})


@pytest.fixture(scope="module")
def posterior_1d(data_1d):
    rng = np.random.default_rng(3)
    shape = (2, 50)
    w0 = np.clip(rng.normal(0.4, 0.03, shape), 0.05, 0.95)
    weights = np.stack([w0, 1.0 - w0], axis=-1)
    means = np.stack([rng.normal(-2.0, 0.1, shape), rng.normal(3.0, 0.1, shape)], axis=-1)[..., None]
    sds = np.stack([rng.normal(0.5, 0.03, shape), rng.normal(1.0, 0.05, shape)], axis=-1)
    return synthetic_posterior(data_1d, weights, means, (sds**2)[..., None, None], ["velocity"])


def gid_items(ax, prefix: str) -> list:
    return [a for a in ax.get_children() if (a.get_gid() or "").startswith(prefix)]


def assert_png(path) -> None:
    assert path.is_file() and path.stat().st_size > 0
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = mpimg.imread(path).shape[:2]
    assert height > 100 and width > 100


def assert_points_match_labels(ax, X: np.ndarray, labels: np.ndarray, n_components: int) -> None:
    palette = plots.component_colors(n_components)
    for k in range(n_components):
        (collection,) = gid_items(ax, f"points:k={k}")
        np.testing.assert_allclose(collection.get_offsets(), X[labels == k])
        if np.any(labels == k):
            np.testing.assert_allclose(collection.get_facecolors()[:, :3], [to_rgba(palette[k])[:3]])


def ellipse_invariants(ellipse):
    semi = np.array([ellipse.width, ellipse.height]) / 2.0
    return np.prod(semi), np.sum(semi**2)


# -- the ellipse helper -------------------------------------------------------------------------------------
@pytest.mark.parametrize("angle_deg", [0.0, 30.0, 45.0, 120.0])
@pytest.mark.parametrize("n_sigma", [1.0, 2.0])
def test_ellipse_axes_are_sigma_times_sqrt_eigenvalues_along_the_eigenvectors(angle_deg, n_sigma):
    sd_major, sd_minor = 3.0, 0.5
    theta = np.deg2rad(angle_deg)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    covariance = rotation @ np.diag([sd_major**2, sd_minor**2]) @ rotation.T
    ellipse = covariance_ellipse((1.0, -2.0), covariance, n_sigma)
    assert ellipse.center == pytest.approx((1.0, -2.0))
    assert ellipse.width == pytest.approx(2 * n_sigma * sd_major)
    assert ellipse.height == pytest.approx(2 * n_sigma * sd_minor)
    assert (ellipse.angle - angle_deg) % 180.0 == pytest.approx(0.0, abs=1e-9) or (
        ellipse.angle - angle_deg
    ) % 180.0 == pytest.approx(180.0, abs=1e-9)


# -- plot_clusters ------------------------------------------------------------------------------------------
def test_plot_clusters_em_draws_one_ellipse_per_component_and_sigma(data_2d, em_2d, tmp_path):
    sigmas = (1, 2, 3)
    ax = plots.plot_clusters(em_2d, data_2d, sigmas=sigmas)
    ellipses = gid_items(ax, "ellipse:")
    assert len(ellipses) == em_2d.n_components * len(sigmas)
    assert all(e.get_gid().startswith("ellipse:em:") for e in ellipses)
    for e in ellipses:
        k = int(re.search(r"k=(\d+)", e.get_gid()).group(1))
        n_sigma = float(re.search(r"sigma=([\d.]+)", e.get_gid()).group(1))
        cov = em_2d.covariances[k]
        area, sum_sq = ellipse_invariants(e)
        assert e.center == pytest.approx(tuple(em_2d.means[k]))
        assert area == pytest.approx(n_sigma**2 * np.sqrt(np.linalg.det(cov)))
        assert sum_sq == pytest.approx(n_sigma**2 * np.trace(cov))
    X = data_2d.to_numpy()
    assert_points_match_labels(ax, X, em_2d.predict(X), 2)
    assert ax.get_xlabel() == "length" and ax.get_ylabel() == "width"
    assert ax.get_title() and ax.get_legend() is not None
    path = plots.save_figure(ax, tmp_path / "clusters_em.png")
    assert_png(path)


def test_plot_clusters_posterior_draws_mean_and_em_overlay(idata_2d, em_2d, tmp_path):
    n_draws, sigmas, K = 7, (1, 2), 2
    ax = plots.plot_clusters(idata_2d, n_posterior_draws=n_draws, sigmas=sigmas, em=em_2d, random_seed=0)
    assert len(gid_items(ax, "ellipse:posterior-draw:")) == K * n_draws * len(sigmas)
    assert len(gid_items(ax, "ellipse:posterior-mean:")) == K * len(sigmas)
    assert len(gid_items(ax, "ellipse:em:")) == K * len(sigmas)
    assert all(e.get_linestyle() == "--" for e in gid_items(ax, "ellipse:em:"))
    posterior_mean_cov = idata_2d.posterior["covariances"].mean(("chain", "draw")).to_numpy()
    for e in gid_items(ax, "ellipse:posterior-mean:"):
        k = int(re.search(r"k=(\d+)", e.get_gid()).group(1))
        n_sigma = float(re.search(r"sigma=([\d.]+)", e.get_gid()).group(1))
        assert ellipse_invariants(e)[1] == pytest.approx(n_sigma**2 * np.trace(posterior_mean_cov[k]))
    labels = membership_probabilities(idata_2d)["most_probable"].to_numpy()
    X = idata_2d.observed_data["obs"].to_numpy()
    assert_points_match_labels(ax, X, labels, K)
    assert_png(plots.save_figure(ax.figure, tmp_path / "clusters_posterior.png"))


def test_plot_clusters_uses_the_marginal_covariance_of_the_chosen_pair(blobs):
    em = fit_em(blobs, 3, n_init=2, random_seed=0)
    frame = pd.DataFrame(blobs, columns=["a", "b", "c"])
    ax = plots.plot_clusters(em, frame, features=("c", "a"), sigmas=(1,))
    assert ax.get_xlabel() == "c" and ax.get_ylabel() == "a"
    for e in gid_items(ax, "ellipse:em:"):
        k = int(re.search(r"k=(\d+)", e.get_gid()).group(1))
        sub = em.covariances[k][np.ix_([2, 0], [2, 0])]
        assert e.center == pytest.approx(tuple(em.means[k, [2, 0]]))
        assert ellipse_invariants(e) == pytest.approx((np.sqrt(np.linalg.det(sub)), np.trace(sub)))


@pytest.mark.parametrize("covariance_type", ["tied", "diag", "spherical"])
def test_plot_clusters_expands_every_em_covariance_type(data_2d, covariance_type):
    em = fit_em(data_2d, 2, covariance_type=covariance_type, n_init=2, random_seed=0)
    ax = plots.plot_clusters(em, data_2d, sigmas=(1,))
    full = {
        "tied": lambda k: em.covariances,
        "diag": lambda k: np.diag(em.covariances[k]),
        "spherical": lambda k: em.covariances[k] * np.eye(2),
    }[covariance_type]
    for e in gid_items(ax, "ellipse:em:"):
        k = int(re.search(r"k=(\d+)", e.get_gid()).group(1))
        assert ellipse_invariants(e)[1] == pytest.approx(np.trace(full(k)))


# -- plot_membership_uncertainty ----------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["entropy", "max_probability"])
def test_membership_uncertainty_sizes_grow_with_uncertainty_and_colours_follow_labels(
    idata_2d, data_2d, em_2d, by, tmp_path
):
    for fit, X in ((idata_2d, None), (em_2d, data_2d)):
        ax = plots.plot_membership_uncertainty(fit, X, by=by)
        (points,) = gid_items(ax, "points:uncertainty")
        membership = membership_probabilities(fit, X)
        values = (
            membership["entropy"].to_numpy()
            if by == "entropy"
            else 1.0 - membership["max_probability"].to_numpy()
        )
        order = np.argsort(values, kind="stable")
        X_all = data_2d.to_numpy()
        np.testing.assert_allclose(points.get_offsets(), X_all[order])
        sizes = points.get_sizes()
        assert np.all(np.diff(sizes) >= -1e-9), "uncertain points are drawn larger and last (on top)"
        assert sizes[-1] > sizes[0]
        palette = plots.component_colors(2)
        expected = [to_rgba(palette[k])[:3] for k in membership["most_probable"].to_numpy()[order]]
        np.testing.assert_allclose(points.get_facecolors()[:, :3], expected)
        assert len(ax.get_legend().get_texts()) == 3, "a legend explains the sizes"
        assert_png(plots.save_figure(ax, tmp_path / f"uncertainty_{by}.png"))


# -- plot_density -------------------------------------------------------------------------------------------
def test_density_1d_em_curve_integrates_to_one_and_is_the_sum_of_components(data_1d, tmp_path):
    em = fit_em(data_1d, 2, n_init=2, random_seed=0)
    ax = plots.plot_density(em, data_1d, limits=(-40.0, 40.0), grid_size=8001)
    (curve,) = gid_items(ax, "density:mean")
    x, y = curve.get_data()
    assert np.trapezoid(y, x) == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(y, np.exp(em.score_samples(x[:, None])), rtol=1e-10)
    components = [line.get_ydata() for line in gid_items(ax, "density:component:")]
    assert len(components) == 2
    assert not gid_items(ax, "density:band"), "an EM fit has no band"
    peak = np.nanargmax(components[0])
    assert components[0][peak] + np.nan_to_num(components[1][peak]) == pytest.approx(y[peak])
    assert ax.get_xlabel() == "x0" and ax.get_ylabel() == "density"
    assert_png(plots.save_figure(ax, tmp_path / "density_1d_em.png"))


def test_density_1d_posterior_has_a_band_around_the_mean_curve(posterior_1d, tmp_path):
    ax = plots.plot_density(posterior_1d, limits=(-30.0, 30.0), grid_size=6001, interval_prob=0.9)
    (curve,) = gid_items(ax, "density:mean")
    x, y = curve.get_data()
    assert np.trapezoid(y, x) == pytest.approx(1.0, abs=1e-3)
    (band,) = gid_items(ax, "density:band")
    lower_upper = band.get_paths()[0].vertices
    assert lower_upper[:, 1].max() > y.max(), "the band reaches above the mean curve at the peak"
    assert "90%" in band.get_label()
    assert ax.get_xlabel() == "velocity"
    assert_png(plots.save_figure(ax, tmp_path / "density_1d_posterior.png"))


def test_density_2d_contours_the_log_density(data_2d, em_2d, idata_2d, tmp_path):
    ax = plots.plot_density(em_2d, data_2d, grid_size=60)
    (contours,) = gid_items(ax, "density:contours")
    xs, ys = np.meshgrid(np.linspace(*ax.get_xlim(), 60), np.linspace(*ax.get_ylim(), 60))
    top = em_2d.score_samples(np.column_stack([xs.ravel(), ys.ravel()])).max()
    assert contours.levels[-2] < top <= contours.levels[-1]
    assert len(ax.figure.axes) == 2, "a colour bar explains the shading"
    assert_png(plots.save_figure(ax, tmp_path / "density_2d_em.png"))
    ax = plots.plot_density(idata_2d, grid_size=40, max_draws=20)
    assert gid_items(ax, "density:contours") and "posterior mean" in ax.get_title()
    assert_png(plots.save_figure(ax, tmp_path / "density_2d_posterior.png"))


# -- plot_k_selection ---------------------------------------------------------------------------------------
@pytest.fixture
def selection():
    table = pd.DataFrame(
        {
            "elpd_waic": [-300.0, -250.0, -249.5, -249.8],
            "se_waic": [8.0, 7.0, 7.2, 7.1],
            "elpd_loo": [-300.5, -250.4, -250.0, -250.6],
            "se_loo": [8.1, 7.1, 7.3, 7.2],
            "dse_waic": [7.5, 0.4, 0.0, 0.3],
            "dse_loo": [7.6, 0.5, 0.0, 0.6],
            "em_bic": [610.0, 540.0, 555.0, 570.0],
            "p_waic": [3.0, 7.0, 11.0, 15.0],
        },
        index=pd.Index([1, 2, 3, 4], name="n_components"),
    )
    return types.SimpleNamespace(table=table, picks={"waic": 2, "loo": 2, "bic": 2, "aic": 3, "icl": 2})


def test_k_selection_plots_elpd_with_error_bars_and_marks_each_pick(selection, tmp_path):
    axes = plots.plot_k_selection(selection)
    assert len(axes) == 2
    for criterion, column in (("loo", "elpd_loo"), ("waic", "elpd_waic")):
        (line,) = gid_items(axes[0], f"k-selection:{criterion}")
        np.testing.assert_allclose(line.get_ydata(), selection.table[column])
        (pick,) = gid_items(axes[0], f"k-selection:pick:{criterion}")
        assert pick.get_xdata()[0] == pytest.approx(2, abs=0.1)
        assert pick.get_ydata()[0] == pytest.approx(selection.table.loc[2, column])
    # The bars are what the pick rule compares: the SE of each k's elpd difference to the best k.
    error_bars = [c for c in axes[0].collections if c.get_segments()]
    heights = sorted(np.ptp(seg[:, 1]) for c in error_bars for seg in c.get_segments())
    np.testing.assert_allclose(
        heights, sorted(2 * selection.table[["dse_loo", "dse_waic"]].to_numpy().ravel())
    )
    assert "SE of the difference to the best k" in axes[0].get_title()
    assert "NOT CONVERGED" not in axes[0].get_title()  # a table without a verdict: no caveat
    (bic,) = gid_items(axes[1], "k-selection:bic")
    np.testing.assert_allclose(bic.get_ydata(), selection.table["em_bic"])
    assert gid_items(axes[1], "k-selection:pick:bic")[0].get_xdata()[0] == 2
    legend = " ".join(t.get_text() for ax in axes for t in ax.get_legend().get_texts())
    assert "LOO" in legend and "WAIC" in legend and "BIC" in legend and "picks k = 2" in legend
    assert "lower is better" in axes[1].get_ylabel() and "higher is better" in axes[0].get_ylabel()
    assert_png(plots.save_figure(axes, tmp_path / "k_selection.png"))


def test_k_selection_on_one_axes_uses_a_twin_axis(selection):
    _, ax = plt.subplots()
    axes = plots.plot_k_selection(selection, ax=ax)
    assert axes[0] is ax and axes[1] is not ax
    assert gid_items(axes[1], "k-selection:bic")


def test_k_selection_rejects_a_table_without_the_needed_columns(selection):
    bad = types.SimpleNamespace(table=selection.table.drop(columns="dse_loo"), picks={})
    with pytest.raises(ValueError, match=r"selection.table must have columns .*lacks \['dse_loo'\]"):
        plots.plot_k_selection(bad)
    with pytest.raises(TypeError, match="selection must have a pandas DataFrame `table`"):
        plots.plot_k_selection(object())


# -- plot_kmeans_vs_gmm and its data -------------------------------------------------------------------------
def test_elongated_clusters_is_reproducible_and_labelled():
    X, labels = elongated_clusters(300, random_seed=4)
    X2, labels2 = elongated_clusters(300, random_seed=4)
    assert X.shape == (300, 2) and labels.shape == (300,)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(labels, labels2)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert len(set(np.bincount(labels))) == 3, "clusters of unequal size"


def test_kmeans_vs_gmm_titles_report_the_ari_of_the_drawn_labels(tmp_path):
    X, labels_true = elongated_clusters(300, random_seed=0)
    axes = plots.plot_kmeans_vs_gmm(X, 3, labels_true=labels_true, random_seed=0, aspect="equal")
    index = {tuple(row): i for i, row in enumerate(X)}
    aris = []
    for ax in axes:
        drawn = np.full(len(X), -1)
        for k in range(3):
            (collection,) = gid_items(ax, f"points:k={k}")
            for row in collection.get_offsets():
                drawn[index[tuple(row)]] = k
        assert np.all(drawn >= 0), "every point is drawn once"
        stated = float(re.search(r"ARI = ([0-9.]+)", ax.get_title()).group(1))
        assert stated == pytest.approx(adjusted_rand_score(labels_true, drawn), abs=5e-4)
        aris.append(stated)
    assert aris[0] < 0.7 < 0.9 < aris[1], "KMeans fails on elongated clusters, the GMM does not"
    assert len(gid_items(axes[1], "ellipse:em:")) == 3 * 2
    assert_png(plots.save_figure(axes, tmp_path / "kmeans_vs_gmm.png"))


def test_kmeans_vs_gmm_checks_labels_true():
    X, labels = elongated_clusters(60, random_seed=0)
    with pytest.raises(ValueError, match=r"labels_true must have one label per row of X, shape \(60,\)"):
        plots.plot_kmeans_vs_gmm(X, 3, labels_true=labels[:-1])


# -- plot_pairs ---------------------------------------------------------------------------------------------
def test_plot_pairs_draws_the_lower_triangle_with_ellipses_and_histograms(blobs, tmp_path):
    em = fit_em(blobs, 3, n_init=2, random_seed=0)
    axes = plots.plot_pairs(em, blobs, sigmas=(1, 2))
    assert axes.shape == (3, 3)
    labels = em.predict(blobs)
    for i in range(3):
        for j in range(3):
            ax = axes[i, j]
            if j > i:
                assert not ax.axison
            elif i == j:
                assert len(gid_items(ax, "hist:")) == 3
            else:
                assert len(gid_items(ax, "ellipse:em:")) == 3 * 2
                assert_points_match_labels(ax, blobs[:, [j, i]], labels, 3)
    assert axes[2, 0].get_xlabel() == "x0" and axes[2, 0].get_ylabel() == "x2"
    assert_png(plots.save_figure(axes[0, 0].figure, tmp_path / "pairs.png"))


def test_plot_pairs_needs_a_feature_subset_beyond_six_features():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 7))
    em = fit_em(X, 2, n_init=1, random_seed=0)
    with pytest.raises(ValueError, match=r"at most 6 features; the data has 7\. Choose some with features="):
        plots.plot_pairs(em, X)
    axes = plots.plot_pairs(em, X, features=[0, 3, 6])
    assert axes.shape == (3, 3) and axes[2, 1].get_xlabel() == "x3"


def test_plot_pairs_with_posterior_draws(idata_2d):
    axes = plots.plot_pairs(idata_2d, n_posterior_draws=3, random_seed=0)
    assert len(gid_items(axes[1, 0], "ellipse:posterior-draw:")) == 2 * 3
    assert axes[1, 0].get_xlabel() == "length" and axes[1, 0].get_ylabel() == "width"


# -- save_figure --------------------------------------------------------------------------------------------
def test_save_figure_writes_atomically_and_checks_the_suffix(em_2d, data_2d, tmp_path):
    ax = plots.plot_clusters(em_2d, data_2d)
    target = tmp_path / "sub" / "figure.png"
    assert plots.save_figure(ax.figure, target, dpi=50) == target
    assert_png(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["figure.png"], "no temporary file left"
    with pytest.raises(ValueError, match=r"path must end in a format matplotlib can write.*'figure\.png'"):
        plots.save_figure(ax, tmp_path / "figure")
    with pytest.raises(TypeError, match="fig must be a matplotlib Figure, Axes or array of Axes"):
        plots.save_figure("not a figure", tmp_path / "x.png")


# -- bad input ----------------------------------------------------------------------------------------------
def test_bad_inputs_raise_with_a_message_that_names_the_parameter_and_a_fix(em_2d, data_2d, idata_2d):
    cases = [
        (
            lambda: plots.plot_clusters(em_2d),
            ValueError,
            r"X is required for an EM fit.*plot_clusters\(em, X\)",
        ),
        (
            lambda: plots.plot_clusters(em_2d, data_2d, features=(0, 5)),
            ValueError,
            r"features contains position 5, but the data has 2 feature\(s\)",
        ),
        (
            lambda: plots.plot_clusters(em_2d, data_2d, features=("length", "height")),
            ValueError,
            r"features contains 'height'.*\['length', 'width'\]",
        ),
        (
            lambda: plots.plot_clusters(em_2d, data_2d, features=(0,)),
            ValueError,
            r"features must name exactly 2 features for plot_clusters.*features=\('length', 'width'\)",
        ),
        (
            lambda: plots.plot_clusters(em_2d, data_2d, sigmas=(1, -2)),
            ValueError,
            r"sigmas must be one or more positive numbers.*sigmas=\(1, 2\)",
        ),
        (
            lambda: plots.plot_clusters(idata_2d, n_posterior_draws=-1),
            ValueError,
            r"n_posterior_draws must be an integer >= 0; got -1\. Pass e\.g\. n_posterior_draws=30",
        ),
        (
            lambda: plots.plot_clusters(em_2d, data_2d, em=em_2d),
            ValueError,
            r"em overlays an EM fit on a Bayesian fit, but fit is already an EMResult",
        ),
        (
            lambda: plots.plot_clusters(em_2d, data_2d, aspect="square"),
            ValueError,
            r"aspect must be one of 'auto', 'equal'; got 'square'",
        ),
        (
            lambda: plots.plot_clusters(em_2d, data_2d.to_numpy()[:, :1]),
            ValueError,
            r"X has 1 feature\(s\) but the model was fitted on 2",
        ),
        (
            lambda: plots.plot_membership_uncertainty(em_2d, data_2d, by="variance"),
            ValueError,
            r"by must be one of 'entropy', 'max_probability'; got 'variance'",
        ),
        (
            lambda: plots.plot_density(em_2d, data_2d, limits=(3.0, 1.0)),
            ValueError,
            r"limits must be \(\(x_low, x_high\), \(y_low, y_high\)\)",
        ),
        (
            lambda: plots.plot_density(idata_2d, interval_prob=1.5),
            ValueError,
            r"interval_prob must be in \(0, 1\); got 1\.5",
        ),
        (
            lambda: plots.plot_clusters("a fit", data_2d),
            TypeError,
            r"fit must be a Bayesian fit from fit_gmm .* or an EMResult from fit_em; got a str",
        ),
        (lambda: plots.plot_clusters(em_2d, data_2d, ax="left"), TypeError, r"ax must be a matplotlib Axes"),
    ]
    for call, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            call()


def test_one_feature_data_is_sent_to_plot_density(data_1d):
    em = fit_em(data_1d, 2, n_init=1, random_seed=0)
    with pytest.raises(ValueError, match=r"plot_clusters needs 2 features.*use plot_density"):
        plots.plot_clusters(em, data_1d)


def test_component_colours_are_fixed_and_distinct():
    assert plots.component_colors(3) == list(plots.COMPONENT_COLORS[:3])
    assert len(set(plots.component_colors(12))) == 12


def test_trace_plot_uses_the_component_colours_has_a_legend_and_fits_its_labels():
    rng = np.random.default_rng(4)
    means = [[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]]
    X = np.concatenate([rng.normal(m, 0.8, size=(40, 2)) for m in means])
    fit = fake_fit(
        [0.4, 0.3, 0.3],
        means,
        [np.eye(2) * 0.64] * 3,
        X,
        draws=60,
        feature_names=["length", "width"],
        jitter=0.1,
    )
    weights = rng.dirichlet([40.0, 30.0, 30.0], size=(2, 60))  # draws that differ, as a posterior's do
    posterior = fit.posterior.to_dataset().assign(weights=(("chain", "draw", "component"), weights))
    fit["posterior"] = xr.DataTree(posterior)
    figure = plots.plot_trace(fit)
    clusters = plots.plot_clusters(fit)
    points = [gid_items(clusters, f"points:k={k}")[0] for k in range(3)]
    cluster_colours = [to_rgba(p.get_facecolors()[0])[:3] for p in points]
    trace_axes = [ax for ax in figure.axes if ax.get_xlabel() == "Draw"]
    assert len(trace_axes) == 3  # weights, means[length], means[width]
    traces = {"weights": posterior["weights"]}
    traces |= {f"means[{f}]": posterior["means"].sel(feature=f) for f in ("length", "width")}
    for ax in trace_axes:
        lines = ax.get_lines()
        assert len(lines) == 3 * 2, ax.get_ylabel()
        for line in lines:  # which component's (and chain's) draws it shows, and that component's colour
            y = line.get_ydata()
            (drawn,) = [
                (k, c)
                for k in range(3)
                for c in range(2)
                if np.array_equal(y, traces[ax.get_ylabel()].isel(component=k, chain=c).to_numpy())
            ]
            assert to_rgba(line.get_color())[:3] == cluster_colours[drawn[0]], (ax.get_ylabel(), drawn)
    legend, chain_legend = figure.legends
    assert [t.get_text() for t in chain_legend.get_texts()] == ["0", "1"]
    assert legend.get_title().get_text() == "component"
    assert [t.get_text() for t in legend.get_texts()] == ["0", "1", "2"]
    assert [to_rgba(h.get_color())[:3] for h in legend.legend_handles] == cluster_colours
    # Everything drawn, axis labels and legend included, lies inside the figure (nothing clipped).
    renderer = figure.canvas.get_renderer()
    figure.draw(renderer)
    box = figure.bbox
    labels = [label for ax in figure.axes for label in (ax.xaxis.label, ax.yaxis.label) if label.get_text()]
    for artist in [legend, *labels]:
        extent = artist.get_window_extent(renderer)
        assert box.x0 - 1 <= extent.x0 and extent.x1 <= box.x1 + 1, artist
        assert box.y0 - 1 <= extent.y0 and extent.y1 <= box.y1 + 1, artist
    for ax in figure.axes:
        for label in ax.get_xticklabels():
            extent = label.get_window_extent(renderer)
            assert box.y0 - 1 <= extent.y0 and extent.x1 <= box.x1 + 1, label


@pytest.mark.parametrize("chains", [1, 6, 9])
def test_trace_plot_gives_every_chain_a_line_style_of_its_own_and_a_legend(chains):
    rng = np.random.default_rng(chains)
    means = [[0.0, 0.0], [5.0, 1.0]]
    X = np.concatenate([rng.normal(m, 0.8, size=(30, 2)) for m in means])
    fit = fake_fit([0.5, 0.5], means, [np.eye(2) * 0.64] * 2, X, draws=30, jitter=0.1)
    one = fit.posterior.to_dataset().isel(chain=[0])
    posterior = xr.concat([one] * chains, dim="chain").assign_coords(chain=np.arange(chains))
    weights = rng.dirichlet([30.0, 30.0], size=(chains, 30))
    fit["posterior"] = xr.DataTree(posterior.assign(weights=(("chain", "draw", "component"), weights)))
    figure = plots.plot_trace(fit, ["weights"])
    (ax,) = [ax for ax in figure.axes if ax.get_xlabel() == "Draw"]
    for k in range(2):  # within a component, each chain's line is dashed differently
        patterns = []
        for c in range(chains):
            want = weights[c, :, k]
            (line,) = [line for line in ax.get_lines() if np.array_equal(line.get_ydata(), want)]
            _, dashes = line._dash_pattern  # matplotlib keeps the scaled pattern only here
            patterns.append(None if dashes is None else tuple(dashes))
        assert len(set(patterns)) == chains
    titles = [legend.get_title().get_text() for legend in figure.legends]
    if chains == 1:
        assert titles == ["component"]  # one chain: no chain legend
    else:
        assert titles == ["component", "chain"]
        assert [t.get_text() for t in figure.legends[1].get_texts()] == [str(c) for c in range(chains)]


def test_trace_plot_refuses_what_it_cannot_draw():
    with pytest.raises(TypeError, match="plot_trace"):
        plots.plot_trace(fit_em(np.random.default_rng(0).normal(size=(30, 2)), 2, n_init=1, random_seed=0))
    fit = fake_fit([0.5, 0.5], [[0.0, 0.0], [6.0, 6.0]], [np.eye(2)] * 2, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"var_names must name posterior variables with a component"):
        plots.plot_trace(fit, ["mu"])
