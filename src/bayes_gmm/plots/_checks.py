"""Checks of the arguments several figures take: features, sigmas, integers and options."""

from __future__ import annotations

import numbers

import numpy as np


def feature_indices(features, names: tuple[str, ...], *, n: int | None, func: str) -> list[int]:
    """Positions of `features` (ints or names) among `names`; exactly `n` of them unless `n` is None."""
    if n is not None and len(names) < n:
        raise ValueError(
            f"{func} needs {n} features, but the data has {len(names)} ({list(names)}). "
            "For one feature use plot_density, which draws a histogram with the fitted density."
        )
    if isinstance(features, str | numbers.Integral):
        features = [features]
    try:
        requested = list(features)
    except TypeError:
        raise ValueError(
            f"features must be a sequence of feature positions or names; got {features!r}. "
            f"Pass e.g. features={tuple(range(min(len(names), n or 2)))}."
        ) from None
    indices = []
    for feature in requested:
        if isinstance(feature, numbers.Integral) and not isinstance(feature, bool):
            if not -len(names) <= feature < len(names):
                raise ValueError(
                    f"features contains position {feature}, but the data has {len(names)} feature(s) "
                    f"{list(names)}. Use positions 0 to {len(names) - 1} or names."
                )
            indices.append(int(feature) % len(names))
        elif str(feature) in names:
            indices.append(names.index(str(feature)))
        else:
            raise ValueError(
                f"features contains {feature!r}, which is not a feature of the fit; the features are "
                f"{list(names)}. Use one of these names or a position."
            )
    if len(set(indices)) != len(indices):
        raise ValueError(f"features must not repeat a feature; got {requested!r}.")
    if n is not None and len(indices) != n:
        raise ValueError(
            f"features must name exactly {n} features for {func}; got {requested!r}. "
            f"Pass e.g. features={tuple(names[:n])}."
        )
    return indices


def check_sigmas(sigmas) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(sigmas, dtype=object))
    try:
        out = tuple(float(s) for s in values)
    except (TypeError, ValueError):
        out = ()
    if not out or not all(np.isfinite(s) and s > 0 for s in out):
        raise ValueError(
            f"sigmas must be one or more positive numbers (ellipse radii in standard deviations); got "
            f"{sigmas!r}. Pass e.g. sigmas=(1, 2)."
        )
    return out


def check_int(value, name: str, *, minimum: int, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(
            f"{name} must be an integer >= {minimum}; got {value!r}. Pass e.g. {name}={example}."
        )
    return int(value)


def check_option(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}. Pass e.g. {name}={choices[0]!r}."
        )
    return value
