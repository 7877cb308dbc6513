"""What the figures take from a fit, on top of :func:`bayes_gmm.inference._draws.fit_draws`: its title
(with a red caveat when the fit did not converge), the membership of the points, and fewer posterior
draws for densities."""

from __future__ import annotations

import textwrap

import xarray as xr
from matplotlib.text import Text

from bayes_gmm.inference._draws import FitDraws, fit_draws
from bayes_gmm.inference._membership import membership_probabilities
from bayes_gmm.inference._verdict import fit_verdict

#: Posterior draws (evenly thinned) the membership probabilities of the plotted points average over.
MEMBERSHIP_MAX_DRAWS = 500
#: Colour of the caveat in the title of a figure of a fit that did not converge.
CAVEAT_COLOR = "#B00000"
#: Most characters per line of the caveat (fewer on a narrow figure).
CAVEAT_WIDTH = 70


def fit_label(draws: FitDraws) -> str:
    """What the fit is, for titles: e.g. "EM fit (full covariances)", "Bayesian fit (NUTS, full covariances)"."""
    if draws.source == "em":
        return f"EM fit ({draws.fit.covariance_type} covariances)"
    attrs = getattr(draws.fit, "attrs", {}) or {}
    method = str(attrs.get("method", "posterior")).upper().replace("_", "-")
    cov = attrs.get("covariance_type")
    return f"Bayesian fit ({method}{f', {cov} covariances' if cov else ''})"


def membership_of(draws: FitDraws, X) -> xr.Dataset:
    """Membership probabilities of the points of `draws` (`X` as the plot function was given it)."""
    return membership_probabilities(draws.fit, X, max_draws=MEMBERSHIP_MAX_DRAWS)


def thinned(draws: FitDraws, X, max_draws: int | None, *, func: str) -> FitDraws:
    """`draws` with at most `max_draws` posterior draws, evenly thinned (an EM fit's one draw as it is)."""
    if max_draws is None or draws.n_draws <= max_draws:
        return draws
    return fit_draws(draws.fit, X, func=func, max_draws=max_draws)


def fit_caveat(fit) -> str:
    """``"NOT CONVERGED: <failed checks>"`` for a `fit` that did not converge (as
    :func:`bayes_gmm.inference._verdict.fit_verdict` judges it); empty for one that did or has no verdict."""
    verdict = fit_verdict(fit)
    return "" if verdict is None else verdict.caveat


def caveat_title(title: Text, fit) -> Text:
    """Put the caveat of a `fit` that did not converge in red above `title` (an Axes title or a figure's
    suptitle); a fit that converged leaves the title as it is."""
    return red_caveat(title, fit_caveat(fit))


def red_caveat(title: Text, caveat: str) -> Text:
    """`caveat` (if not empty) wrapped above the text of `title`, which turns red and bold."""
    if caveat:
        width = _line_width(title)
        lines = [_wrap_problems(line, width) for line in caveat.splitlines()]
        title.set_text("\n".join([*lines, title.get_text()]).rstrip("\n"))
        title.set_color(CAVEAT_COLOR)
        title.set_fontweight("bold")
        title.set_gid("caveat:not-converged")
    return title


def _line_width(title: Text) -> int:
    """About how many characters of `title`'s font fit across its figure (at least 30)."""
    inches = title.figure.get_figwidth()
    return max(30, min(CAVEAT_WIDTH, int(inches * 72 / (0.6 * title.get_fontsize()))))


def _wrap_problems(line: str, width: int) -> str:
    """`line` broken into lines of at most `width` characters between its "; "-separated problems (a
    problem longer than that is wrapped on its own)."""
    rows = []
    for part in line.split("; "):
        if rows and len(rows[-1]) + 2 + len(part) <= width:
            rows[-1] += "; " + part
        else:
            if rows:
                rows[-1] += ";"
            rows.append(part)
    return "\n".join(textwrap.fill(row, width) for row in rows)
