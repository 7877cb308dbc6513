"""save_figure: write a figure atomically, in the format its suffix names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from bayes_gmm._io import atomic_path
from bayes_gmm.plots._checks import check_int


def save_figure(fig, path, dpi: int = 150) -> Path:
    """Save a figure so that `path` is never left half-written (temporary file, then rename).

    Parameters
    ----------
    fig : matplotlib.figure.Figure, Axes or array of Axes
        What to save (for Axes, the figure they are on), as returned by the ``plot_*`` functions.
    path : str or path-like
        Target file; its suffix picks the format (``.png``, ``.pdf``, ``.svg``, ...). Parent folders
        are created.
    dpi : int, default 150
        Resolution for raster formats.

    Returns
    -------
    pathlib.Path
        `path`.
    """
    figure = _figure_of(fig)
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    supported = figure.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(
            f"path must end in a format matplotlib can write ({', '.join('.' + f for f in sorted(supported))}); "
            f"got {str(path)!r}. Add a suffix, e.g. {path.with_suffix('.png').name!r}."
        )
    dpi = check_int(dpi, "dpi", minimum=1, example=150)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    return path


def _figure_of(obj) -> Figure:
    if isinstance(obj, Figure):
        return obj
    if isinstance(obj, Axes):
        return obj.figure
    if isinstance(obj, np.ndarray) and obj.size and isinstance(obj.flat[0], Axes):
        return obj.flat[0].figure
    raise TypeError(
        f"fig must be a matplotlib Figure, Axes or array of Axes (what the plot_* functions return); got "
        f"{type(obj).__name__}."
    )
