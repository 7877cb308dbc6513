"""Colours and axes shared by the figures: component colours, new Axes, aspect and legends."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bayes_gmm._validation import check_n_components
from bayes_gmm.plots._checks import check_option

#: Okabe & Ito (2008) colours, in the order components get them (yellow last: weak on white).
COMPONENT_COLORS = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#D55E00",
    "#56B4E9",
    "#000000",
    "#F0E442",
)


def component_colors(n_components: int) -> list[str]:
    """Colour of each component, the same in every figure of this module.

    The eight Okabe-Ito colours for up to eight components; beyond that matplotlib's ``tab20``
    (not colourblind-safe; that many components are hard to tell apart in any palette).

    Parameters
    ----------
    n_components : int

    Returns
    -------
    list of str
        Hex colours, one per component.
    """
    n_components = check_n_components(n_components)
    if n_components <= len(COMPONENT_COLORS):
        return list(COMPONENT_COLORS[:n_components])
    cmap = plt.get_cmap("tab20")
    return [_hex(cmap(k % cmap.N)) for k in range(n_components)]


def _hex(rgba) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in rgba[:3]))


def new_axes(ax, *, figsize=(6.4, 4.8)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
        return ax
    if not isinstance(ax, Axes):
        raise TypeError(
            f"ax must be a matplotlib Axes or None; got {type(ax).__name__}. Pass ax=None to create a "
            "figure, or e.g. fig, ax = plt.subplots()."
        )
    return ax


def set_aspect(ax: Axes, aspect: str) -> None:
    check_option(aspect, "aspect", ("auto", "equal"))
    if aspect == "equal":
        ax.set_aspect("equal", adjustable="box")


def two_legends(ax, component_handles, style_handles, *, loc1="upper left", loc2="lower right", title1=None):
    first = ax.legend(
        handles=component_handles,
        loc=loc1,
        fontsize="small",
        title=title1,
        title_fontsize="small",
        framealpha=0.85,
    )
    if style_handles:
        ax.add_artist(first)
        ax.legend(handles=style_handles, loc=loc2, fontsize="small", framealpha=0.85)
    return first


def component_handles(ax) -> list:
    return [c for c in ax.collections if (c.get_gid() or "").startswith("points:")]
