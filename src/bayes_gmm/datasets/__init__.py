"""Small data sets bundled with the package, for the demo and the examples."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from bayes_gmm.datasets._simulated import elongated_clusters

__all__ = ["available", "elongated_clusters", "load", "load_faithful", "load_galaxies"]

_BUNDLED = {
    "faithful": (
        "faithful.csv",
        "Old Faithful geyser: 272 eruptions, duration (eruptions, min) and waiting time to the next "
        "(waiting, min); R datasets::faithful (Härdle 1991).",
    ),
    "galaxies": (
        "galaxies.csv",
        "Velocities (1000 km/s, column velocity_1000kms) of 82 galaxies in the Corona Borealis region; R "
        "MASS::galaxies / 1000 (Roeder 1990), the classic test of choosing the number of components.",
    ),
}


def available() -> dict[str, str]:
    """Names and one-line descriptions of the bundled data sets."""
    return {name: description for name, (_, description) in _BUNDLED.items()}


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set as a DataFrame (one row per observation).

    Parameters
    ----------
    name : str
        One of :func:`available`, e.g. ``"faithful"``.
    """
    if name not in _BUNDLED:
        raise ValueError(f"name must be one of {sorted(_BUNDLED)}; got {name!r}.")
    with resources.files(__name__).joinpath(_BUNDLED[name][0]).open("r") as fh:
        return pd.read_csv(fh)


def load_faithful() -> pd.DataFrame:
    """The Old Faithful data: columns ``eruptions`` and ``waiting`` (minutes), 272 rows."""
    return load("faithful")


def load_galaxies() -> pd.DataFrame:
    """Galaxy velocities: one column ``velocity_1000kms``, 82 rows (see :func:`available`)."""
    return load("galaxies")
