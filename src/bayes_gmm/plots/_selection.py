"""plot_k_selection: Bayesian elpd and EM information criteria against the number of components."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from bayes_gmm.plots._fit import red_caveat
from bayes_gmm.plots._models import model_style

_K_SERIES = {
    "loo": ("elpd_loo", "PSIS-LOO elpd", "#0072B2", "o"),
    "waic": ("elpd_waic", "WAIC elpd", "#E69F00", "s"),
    "bic": ("em_bic", "EM BIC", "#009E73", "o"),
    "aic": ("em_aic", "EM AIC", "#CC79A7", "s"),
    "icl": ("em_icl", "EM ICL", "#D55E00", "^"),
}
#: What the elpd panel's error bars are (the standard error the pick rule compares with).
ERROR_BARS = "bars: \N{PLUS-MINUS SIGN}1 SE of the difference to the best k (the pick rule's)"
#: Colour of the points of fits that did not converge.
UNCONVERGED_COLOR = "0.55"


def plot_k_selection(selection, *, ax=None) -> np.ndarray:
    """Compare numbers of components: Bayesian elpd (LOO, WAIC) and EM information criteria against k.

    Left: the expected log pointwise predictive density by PSIS-LOO and WAIC (higher is better), each k
    with bars of +-1 standard error of its elpd difference to the best k (``dse_loo``, ``dse_waic``): the
    uncertainty the pick rule uses, which takes the smallest k whose bar reaches the best k's elpd (the
    dotted line). Fits that did not converge are drawn hollow and grey and named in a red caveat; unless
    ``select_k(..., include_unconverged=True)``, they are excluded from the picks and the best.
    Right: EM's BIC (scikit-learn's sign, lower is better), and AIC and ICL when the table has them
    (columns ``em_aic``, ``em_icl``). The k each criterion picked is circled on its curve and named in the
    legend.

    A selection over several covariance types (``select_k(..., covariance_type=[...])``) shows them side
    by side: PSIS-LOO elpd (left) and EM BIC (right), one line per type, the picks circled.

    Parameters
    ----------
    selection : object
        With ``table``, a pandas DataFrame indexed by k (``n_components``), or by ``covariance_type`` and k,
        with columns ``elpd_waic``, ``dse_waic``, ``elpd_loo``, ``dse_loo`` and ``em_bic`` (and optionally
        ``converged``, ``convergence_problems`` and ``excluded``, as :func:`bayes_gmm.inference.select_k`
        gives them); and ``picks``, a dict from criterion ("waic", "loo", "bic", "aic", "icl") to the
        chosen k (None for no pick).
    ax : matplotlib.axes.Axes or pair of Axes, optional
        None: a new figure with two panels. A pair: the two panels. One Axes: the elpd on it and the EM
        criteria on a twin y axis.

    Returns
    -------
    ndarray of 2 matplotlib.axes.Axes
        The elpd axes and the EM-criteria axes (the twin when one Axes was given). Lines have gid
        ``"k-selection:<criterion>"`` (converged fits), ``"k-selection:unconverged:<criterion>"``,
        ``"k-selection:best:<criterion>"`` (the dotted line) and ``"k-selection:pick:<criterion>"``.
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
    unconverged, excluded = _unconverged(table)
    handles = {0: [], 1: []}
    for criterion, (column, name, color, marker) in _K_SERIES.items():
        if column not in table:
            continue
        panel = 0 if criterion in ("loo", "waic") else 1
        target = axes[panel]
        values = table[column].to_numpy(dtype=float)
        offset = 0.06 * (1 if criterion == "waic" else -1) if panel == 0 else 0.0
        pick = picks.get(criterion)
        label = f"{name}" + (f": picks k = {pick}" if pick is not None else ": no pick")
        if panel == 0:
            style = {"color": color, "marker": marker, "label": label}
            artist = _elpd_series(
                target, ks + offset, values, table[f"dse_{criterion}"], unconverged, criterion, style
            )
            _best_line(target, values, excluded, color, criterion)
        else:
            (artist,) = target.plot(
                ks, values, color=color, marker=marker, ms=5, lw=1.4, ls="--" if twin else "-", label=label
            )
            artist.set_gid(f"k-selection:{criterion}")
        handles[panel].append(artist)
        if pick is not None and pick in table.index:
            _circle_pick(target, pick + offset, float(table.loc[pick, column]), color, criterion)
    handles[0] += _legend_notes(unconverged)
    axes[0].set_xticks(ks)
    axes[0].set_xlabel("number of components k")
    axes[0].set_ylabel("elpd (higher is better)")
    axes[1].set_ylabel("EM criterion (lower is better)")
    if twin:
        title = axes[0].set_title(
            f"Choosing k: Bayesian elpd (solid, left) and EM criteria (dashed, right)\n{ERROR_BARS}",
            fontsize="medium",
        )
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
        title = axes[0].set_title(
            f"Bayesian: expected log predictive density\n{ERROR_BARS}", fontsize="medium"
        )
        axes[1].set_title("EM: information criteria", fontsize="medium")
        for panel in (0, 1):
            if handles[panel]:
                axes[panel].legend(handles=handles[panel], fontsize="small", loc="best")
    red_caveat(title, _selection_caveat(table, unconverged, excluded))
    return axes


def _unconverged(table) -> tuple[np.ndarray, np.ndarray]:
    """Which rows are fits that did not converge, and which were excluded from the picks (a table without
    those columns: none)."""
    unconverged = (
        ~table["converged"].to_numpy(dtype=bool) if "converged" in table else np.zeros(len(table), bool)
    )
    excluded = table["excluded"].to_numpy(dtype=bool) if "excluded" in table else np.zeros(len(table), bool)
    return unconverged, excluded


def _elpd_series(ax, x, values, dse, unconverged, gid: str, style: dict):
    """One elpd curve with +-dse bars: converged fits as `style` says, the others hollow and grey.
    Returns the converged fits' artist."""
    dse = np.asarray(dse, dtype=float)
    good = ~unconverged
    bars = {"ms": 5, "capsize": 3, "lw": 1.4}
    artist = ax.errorbar(x[good], values[good], yerr=dse[good], **{"ls": "-", **style}, **bars)
    artist.lines[0].set_gid(f"k-selection:{gid}")
    if unconverged.any():
        ax.errorbar(
            x[unconverged],
            values[unconverged],
            yerr=dse[unconverged],
            ls="",
            marker=style["marker"],
            mfc="white",
            mec=UNCONVERGED_COLOR,
            ecolor=UNCONVERGED_COLOR,
            **bars,
        ).lines[0].set_gid(f"k-selection:unconverged:{gid}")
    return artist


def _best_line(ax, values, excluded, color: str, gid: str) -> None:
    """A dotted line at the best elpd among the fits the pick rule compares (all of them when none is)."""
    candidates = ~excluded if (~excluded).any() else np.ones_like(excluded)
    ax.axhline(np.max(values[candidates]), color=color, ls=":", lw=1.0, gid=f"k-selection:best:{gid}")


def _circle_pick(ax, x: float, y: float, color: str, criterion: str) -> None:
    ax.plot(
        [x],
        [y],
        ls="",
        marker="o",
        ms=14,
        mfc="none",
        mec=color,
        mew=2.0,
        gid=f"k-selection:pick:{criterion}",
        zorder=5,
    )


def _legend_notes(unconverged) -> list:
    """Legend entries saying what the bars, the dotted lines and hollow grey points mean."""
    notes = [
        Line2D(
            [],
            [],
            color="0.3",
            ls=":",
            lw=1.0,
            label="elpd of the best k; a k is within one SE when its bar reaches it",
        )
    ]
    if unconverged.any():
        notes.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                mfc="white",
                mec=UNCONVERGED_COLOR,
                label="not converged (hollow, grey)",
            )
        )
    return notes


def _selection_caveat(table, unconverged, excluded) -> str:
    """``NOT CONVERGED (...): k=3, k=4``, naming the fits that did not converge; empty if none did."""
    names = [f"{key[0]},k={key[1]}" if isinstance(key, tuple) else f"k={key}" for key in table.index]
    lines = []
    for mask, what in (
        (unconverged & excluded, "excluded from the picks and weights"),
        (unconverged & ~excluded, "kept in the picks: include_unconverged"),
    ):
        if mask.any():
            listed = ", ".join(name for name, bad in zip(names, mask, strict=True) if bad)
            lines.append(f"NOT CONVERGED (hollow, grey; {what}): {listed}")
    return "\n".join(lines)


def _check_selection(selection):
    table = getattr(selection, "table", None)
    picks = getattr(selection, "picks", None)
    if table is None or not hasattr(table, "columns") or not isinstance(picks, dict):
        raise TypeError(
            f"selection must have a pandas DataFrame `table` (indexed by k) and a dict `picks`; got "
            f"{type(selection).__name__}. Pass the result of select_k."
        )
    required = ("elpd_waic", "dse_waic", "elpd_loo", "dse_loo", "em_bic")
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
    unconverged, excluded = _unconverged(table)
    level = table.index.get_level_values("covariance_type")
    for name, offset in offsets.items():
        rows = table.xs(name, level="covariance_type")
        ks = rows.index.to_numpy(dtype=int)
        color, marker, style = model_style(name)
        in_type = np.asarray(level == name)
        _elpd_series(
            axes[0],
            ks + offset,
            rows["elpd_loo"].to_numpy(dtype=float),
            rows["dse_loo"],
            unconverged[in_type],
            f"loo:{name}",
            {"color": color, "marker": marker, "ls": style, "label": name},
        )
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
    _best_line(axes[0], table["elpd_loo"].to_numpy(dtype=float), excluded, "0.3", "loo")
    titles = ("Bayesian: PSIS-LOO elpd", "EM: BIC")
    for panel, (criterion, column) in enumerate((("loo", "elpd_loo"), ("bic", "em_bic"))):
        pick = picks.get(criterion)
        chosen = "; no pick" if pick is None else f"; picks {pick[0]}, k = {pick[1]}"
        axes[panel].set_title(
            titles[panel] + chosen + (f"\n{ERROR_BARS}" if panel == 0 else ""), fontsize="medium"
        )
        if pick is not None and pick in table.index:
            x = pick[1] + (offsets[pick[0]] if panel == 0 else 0.0)
            _circle_pick(axes[panel], x, float(table.loc[pick, column]), "black", criterion)
    red_caveat(axes[0].title, _selection_caveat(table, unconverged, excluded))
    axes[0].set_xticks(np.unique(table.index.get_level_values("n_components").to_numpy(dtype=int)))
    axes[0].set_xlabel("number of components k")
    axes[1].set_xlabel("number of components k")
    axes[0].set_ylabel("elpd (higher is better)")
    axes[1].set_ylabel("BIC (lower is better)")
    axes[0].legend(handles=_legend_notes(unconverged), fontsize="small", loc="best")
    axes[1].legend(fontsize="small", loc="best", title="covariance")
    return axes
