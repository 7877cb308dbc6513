"""plot_k_selection: Bayesian elpd and EM information criteria against the number of components."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes

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

    Parameters
    ----------
    selection : object
        With ``table``, a pandas DataFrame indexed by k (``n_components``) with columns ``elpd_waic``,
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
    return table.sort_index(), picks
