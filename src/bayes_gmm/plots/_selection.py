"""plot_k_selection: Bayesian elpd and EM information criteria against the number of components."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

from bayes_gmm.plots._models import model_style

_K_SERIES = {
    "loo": ("elpd_loo", "se_loo", "PSIS-LOO elpd", "#0072B2", "o"),
    "waic": ("elpd_waic", "se_waic", "WAIC elpd", "#E69F00", "s"),
    "bic": ("em_bic", None, "EM BIC", "#009E73", "o"),
    "aic": ("em_aic", None, "EM AIC", "#CC79A7", "s"),
    "icl": ("em_icl", None, "EM ICL", "#D55E00", "^"),
}


def plot_k_selection(selection, *, ax=None) -> np.ndarray:
    """Compare numbers of components: Bayesian elpd (LOO, WAIC) and EM information criteria against k.

    Left: the expected log pointwise predictive density by PSIS-LOO and WAIC with +-1 standard error
    bars (higher is better). Right: EM's BIC (scikit-learn's sign, lower is better), and AIC and ICL when
    the table has them (columns ``em_aic``, ``em_icl``). The k each criterion picked is circled on its
    curve and named in the legend.

    A selection over several covariance types (``select_k(..., covariance_type=[...])``) shows them side
    by side: PSIS-LOO elpd (left) and EM BIC (right), one line per type, the picks circled.

    Parameters
    ----------
    selection : object
        With ``table``, a pandas DataFrame indexed by k (``n_components``), or by ``covariance_type`` and k, with columns ``elpd_waic``,
        ``se_waic``, ``elpd_loo``, ``se_loo`` and ``em_bic``; and ``picks``, a dict from criterion
        ("waic", "loo", "bic", "aic", "icl") to the chosen k.
    ax : matplotlib.axes.Axes or pair of Axes, optional
        None: a new figure with two panels. A pair: the two panels. One Axes: the elpd on it and the EM
        criteria on a twin y axis.

    Returns
    -------
    ndarray of 2 matplotlib.axes.Axes
        The elpd axes and the EM-criteria axes (the twin when one Axes was given).
    """
    table, picks = _check_selection(selection)
    if "covariance_type" in table.index.names:
        return _plot_models_side_by_side(table, picks, ax)
    if ax is None:
        _, axes = plt.subplots(1, 2, figsize=(10.0, 4.2), layout="constrained", sharex=True)
    elif isinstance(ax, Axes):
        axes = np.array([ax, ax.twinx()])
    else:
        axes = np.asarray(ax, dtype=object).ravel()
        if axes.size != 2 or not all(isinstance(a, Axes) for a in axes):
            raise TypeError(
                f"ax must be None, one matplotlib Axes or a pair of Axes; got {ax!r:.80}. Pass ax=None to "
                "create a figure with two panels."
            )
    twin = isinstance(ax, Axes)
    ks = np.asarray(table.index, dtype=int)
    handles = {0: [], 1: []}
    for criterion, (column, se_column, name, color, marker) in _K_SERIES.items():
        if column not in table:
            continue
        panel = 0 if se_column else 1
        target = axes[panel]
        values = table[column].to_numpy(dtype=float)
        offset = 0.06 * (1 if criterion == "waic" else -1) if se_column else 0.0
        pick = picks.get(criterion)
        label = f"{name}" + (f": picks k = {pick}" if pick is not None else "")
        if se_column:
            artist = target.errorbar(
                ks + offset,
                values,
                yerr=table[se_column].to_numpy(dtype=float),
                color=color,
                marker=marker,
                ms=5,
                capsize=3,
                lw=1.4,
                label=label,
            )
            artist.lines[0].set_gid(f"k-selection:{criterion}")
        else:
            (artist,) = target.plot(
                ks, values, color=color, marker=marker, ms=5, lw=1.4, ls="--" if twin else "-", label=label
            )
            artist.set_gid(f"k-selection:{criterion}")
        handles[panel].append(artist)
        if pick is not None and pick in table.index:
            target.plot(
                [pick + offset],
                [float(table.loc[pick, column])],
                ls="",
                marker="o",
                ms=14,
                mfc="none",
                mec=color,
                mew=2.0,
                gid=f"k-selection:pick:{criterion}",
                zorder=5,
            )
    axes[0].set_xticks(ks)
    axes[0].set_xlabel("number of components k")
    axes[0].set_ylabel("elpd (higher is better)")
    axes[1].set_ylabel("EM criterion (lower is better)")
    if twin:
        axes[0].set_title("Choosing k: Bayesian elpd (solid, left) and EM criteria (dashed, right)")
        axes[0].legend(
            handles=handles[0] + handles[1],
            fontsize="small",
            loc="upper center",
            bbox_to_anchor=(0.5, -0.14),
            ncols=2,
            frameon=False,
        )
    else:
        axes[1].set_xlabel("number of components k")
        axes[0].set_title("Bayesian: expected log predictive density (±1 SE)")
        axes[1].set_title("EM: information criteria")
        for panel in (0, 1):
            if handles[panel]:
                axes[panel].legend(handles=handles[panel], fontsize="small", loc="best")
    return axes


def _check_selection(selection):
    table = getattr(selection, "table", None)
    picks = getattr(selection, "picks", None)
    if table is None or not hasattr(table, "columns") or not isinstance(picks, dict):
        raise TypeError(
            f"selection must have a pandas DataFrame `table` (indexed by k) and a dict `picks`; got "
            f"{type(selection).__name__}. Pass the result of select_k."
        )
    required = ("elpd_waic", "se_waic", "elpd_loo", "se_loo", "em_bic")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(
            f"selection.table must have columns {list(required)}; it lacks {missing} (it has "
            f"{list(table.columns)}). Pass the result of select_k, which computes them."
        )
    if len(table) == 0:
        raise ValueError("selection.table is empty: it has no k to plot. Compare at least one k.")
    if "covariance_type" in table.index.names:  # several types: in the order select_k fitted them
        return table, picks
    return table.sort_index(), picks


def _plot_models_side_by_side(table, picks: dict, ax) -> np.ndarray:
    """LOO elpd and EM BIC against k, one line per covariance type (colours as in plot_model_search)."""
    if ax is None:
        _, axes = plt.subplots(1, 2, figsize=(11.0, 4.2), layout="constrained", sharex=True)
    else:
        axes = np.asarray(ax, dtype=object).ravel()
        if axes.size != 2 or not all(isinstance(a, Axes) for a in axes):
            raise TypeError(
                f"ax must be None or a pair of matplotlib Axes for a selection over several covariance types; "
                f"got {ax!r:.80}. Pass ax=None to create a figure with two panels."
            )
    types = list(dict.fromkeys(table.index.get_level_values("covariance_type")))
    offsets = dict(zip(types, np.linspace(-0.12, 0.12, len(types)), strict=True))
    for name, offset in offsets.items():
        rows = table.xs(name, level="covariance_type")
        ks = rows.index.to_numpy(dtype=int)
        color, marker, style = model_style(name)
        axes[0].errorbar(
            ks + offset,
            rows["elpd_loo"].to_numpy(dtype=float),
            yerr=rows["se_loo"].to_numpy(dtype=float),
            color=color,
            marker=marker,
            ls=style,
            ms=5,
            capsize=3,
            lw=1.3,
            label=name,
        ).lines[0].set_gid(f"k-selection:loo:{name}")
        axes[1].plot(
            ks,
            rows["em_bic"].to_numpy(dtype=float),
            color=color,
            marker=marker,
            ls=style,
            ms=5,
            lw=1.3,
            label=name,
            gid=f"k-selection:bic:{name}",
        )
    for panel, (criterion, column) in enumerate((("loo", "elpd_loo"), ("bic", "em_bic"))):
        pick = picks.get(criterion)
        if pick is not None and pick in table.index:
            axes[panel].plot(
                [pick[1] + (offsets[pick[0]] if panel == 0 else 0.0)],
                [float(table.loc[pick, column])],
                ls="",
                marker="o",
                ms=14,
                mfc="none",
                mec="black",
                mew=1.8,
                gid=f"k-selection:pick:{criterion}",
                zorder=5,
            )
            axes[panel].set_title(
                ("Bayesian: PSIS-LOO elpd (±1 SE)" if panel == 0 else "EM: BIC")
                + f"; picks {pick[0]}, k = {pick[1]}"
            )
    axes[0].set_xticks(np.unique(table.index.get_level_values("n_components").to_numpy(dtype=int)))
    axes[0].set_xlabel("number of components k")
    axes[1].set_xlabel("number of components k")
    axes[0].set_ylabel("elpd (higher is better)")
    axes[1].set_ylabel("BIC (lower is better)")
    axes[1].legend(fontsize="small", loc="best", title="covariance")
    return axes
