"""The command line's input checks and its all-or-nothing output folder (see :mod:`bayes_gmm.cli`).

The --out folder that is replaced as a whole by a run's results (:class:`OutputFolder`), and the tables
the commands write. Interrupts are :mod:`bayes_gmm._interrupt`'s.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_gmm._interrupt import INTERRUPT
from bayes_gmm._io import atomic_path, is_mount_point, remove_stale_stages, replace_directory


class CLIError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


#: Exit status of a run stopped by Ctrl-C (SIGINT), as shells report 128 + the signal number.
EXIT_INTERRUPTED = 130
#: Exit status when stdout was closed before the summary was printed (128 + SIGPIPE, as shells report).
EXIT_BROKEN_PIPE = 141

#: What a run writes into --out (folders: their files). A folder holding anything else is not replaced.
OUTPUT_FILES = {
    "summary.txt",
    "assignments.csv",
    "posterior.nc",
    "compare_em.csv",
    "selection.txt",
    "selection.csv",
    "k_selection.png",
    "parameters.json",
}
OUTPUT_FOLDERS = {"plots": ".png", "assignments.parquet": ".parquet"}


class OutputFolder:
    """The --out folder: checked before any fitting, then replaced as a whole by the run's results."""

    def __init__(self, text: str):
        self.shown = Path(text)
        path = Path(text).expanduser()
        try:
            # A symbolic link to a folder: the folder it points to is replaced, the link kept.
            self.path = Path(os.path.abspath(path.resolve() if path.is_symlink() else path))
            remove_stale_stages(self.path)  # of killed runs; may put back results a killed swap moved aside
            self._check()
        except OSError as exc:
            raise CLIError(
                f"--out {text}: cannot use it ({exc.strerror or exc}); choose another folder"
            ) from None

    def _check(self) -> None:
        path, shown = self.path, self.shown
        if path.exists() and not path.is_dir():
            raise CLIError(
                f"--out {shown} is an existing file, not a folder; give a folder path (created if missing)"
            )
        if path.is_dir():
            cwd = Path.cwd().resolve()
            if path.resolve() == cwd or path.resolve() in cwd.parents:
                raise CLIError(
                    f"--out {shown} is the current folder or one above it, which a run would replace; "
                    f"give a subfolder, e.g. --out results"
                )
            self.check_replaceable()
        ancestor = path.parent
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise CLIError(
                f"--out {shown}: {ancestor} is a file, so no folder can be made in it; give a folder path"
            )
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise CLIError(
                f"--out {shown}: cannot write in {ancestor} (permission denied); choose a writable location"
            )
        try:  # the only reliable test of writability (root, read-only mounts, /proc)
            os.rmdir(tempfile.mkdtemp(dir=ancestor, prefix=".bayes-gmm-probe-"))
        except OSError as exc:
            raise CLIError(
                f"--out {shown}: cannot write in {ancestor} ({exc.strerror or exc}); choose a writable location"
            ) from None

    def check_replaceable(self) -> None:
        """Refuse to replace a folder that is a mount point, is write-protected or holds others' files.

        A run swaps its folder in by renames, which a mount point refuses; and it removes the old folder's
        files, which a write-protected folder keeps (a folder no one may write to is refused even for root,
        whom the permission bits do not stop).
        """
        path, shown = self.path, self.shown
        if not path.is_dir():
            return
        if is_mount_point(path):
            raise CLIError(
                f"--out {shown} is a mount point, which a run cannot replace (it swaps a new folder in by "
                f"renaming); give a folder inside it, e.g. --out {shown / 'results'}"
            )
        self.check_only_outputs()
        for folder in (path, *(entry for entry in path.iterdir() if entry.is_dir())):
            if not os.access(folder, os.W_OK | os.X_OK) or not folder.stat().st_mode & 0o222:
                raise CLIError(
                    f"--out {shown} is write-protected ({folder} may not be changed), and a run would replace "
                    f"it; make it writable (chmod -R u+w {shown}) or give another folder"
                )

    def check_only_outputs(self) -> None:
        """Refuse to replace a folder that holds anything a bayes-gmm run did not write."""
        path = self.path
        if not path.is_dir():
            return
        foreign = sorted(entry.name for entry in path.iterdir() if not _is_output(entry))
        if foreign:
            listed = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise CLIError(
                f"--out {self.shown} holds files that bayes-gmm did not write ({listed}); a run replaces the "
                f"whole folder, so give a new or empty folder, or one an earlier run wrote"
            )

    def write(self, write_files) -> list[Path]:
        """Run ``write_files(folder)`` on a fresh folder, then swap it in; returns the written paths."""

        def before_swap(stage: Path) -> None:
            INTERRUPT.check()
            INTERRUPT.deferred = True  # from here on a Ctrl-C no longer stops the (quick) swap
            self.check_replaceable()  # again: the folder may have changed during the fit

        try:
            with replace_directory(self.path, before_swap=before_swap) as stage:
                names = write_files(stage)
        finally:
            INTERRUPT.deferred = False
        return [self.shown / name for name in names]


def _is_output(entry: Path) -> bool:
    if entry.name in OUTPUT_FILES:
        return entry.is_file() and not entry.is_symlink()
    suffix = OUTPUT_FOLDERS.get(entry.name)
    return (
        suffix is not None
        and entry.is_dir()
        and not entry.is_symlink()
        and all(f.is_file() and f.suffix == suffix for f in entry.iterdir())
    )


def assignments_table(table: pd.DataFrame, membership) -> pd.DataFrame:
    columns = {
        "component": membership["most_probable"].values,
        "max_probability": membership["max_probability"].values,
        "entropy": membership["entropy"].values,
    }
    for j, k in enumerate(membership["component"].values):
        columns[f"p_component_{k}"] = membership["probability"].values[:, j]
    if "probability_lower" in membership:
        level = round(100 * membership.attrs["interval_prob"])
        for j, k in enumerate(membership["component"].values):
            columns[f"p_component_{k}_lower{level}"] = membership["probability_lower"].values[:, j]
            columns[f"p_component_{k}_upper{level}"] = membership["probability_upper"].values[:, j]
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(columns)], axis=1)


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def parameters_json(em, feature_names) -> str:
    """An EM fit's parameters as JSON text: weights, means, full covariances, and the fit's figures."""
    document = {
        "covariance_type": em.covariance_type,
        "feature_names": list(feature_names),
        "weights": em.weights.tolist(),
        "means": em.means.tolist(),
        "covariances": em.full_covariances().tolist(),
        "log_likelihood": em.log_likelihood,
        "n_samples": em.n_samples,
        "n_iter": em.n_iter,
        "converged": em.converged,
        "bic": em.bic(),
        "icl": em.icl(),
    }
    return json.dumps(document, indent=2) + "\n"


def _membership_block(block, em, feature_names) -> pd.DataFrame:
    """assignments.csv's columns for one chunk of rows (the data, then the membership probabilities)."""
    X = np.asarray(block, dtype=np.float64)
    proba = em.predict_proba(X) if len(X) else np.empty((0, em.n_components))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(proba > 0, proba * np.log(proba), 0.0)
    columns = {name: X[:, j] for j, name in enumerate(feature_names)}
    columns.update(
        component=proba.argmax(axis=1) if len(X) else np.empty(0, dtype=np.int64),
        max_probability=proba.max(axis=1, initial=0.0),
        entropy=np.maximum(-terms.sum(axis=1), 0.0),
    )
    columns.update({f"p_component_{k}": proba[:, k] for k in range(em.n_components)})
    return pd.DataFrame(columns)


def write_assignments_parquet(path: Path, array, feature_names, em) -> None:
    """assignments.csv's table for Dask data, as parquet files in the folder `path`, one per chunk."""
    import dask
    import dask.dataframe as dd

    parts = [dask.delayed(_membership_block)(b, em, feature_names) for b in array.to_delayed().ravel()]
    meta = _membership_block(np.empty((0, len(feature_names))), em, feature_names)
    dd.from_delayed(parts, meta=meta).to_parquet(path, write_index=False, write_metadata_file=False)
