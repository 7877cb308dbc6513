"""The covariance structures of a Gaussian mixture, each a small object that knows all about itself.

A structure says how the K covariance matrices of a mixture are parametrised and stored, and owns every
computation that depends on that: the stored shape, the number of free parameters, the expansion to full
(K, D, D) matrices, the Cholesky factors of the precisions and their log-determinants, the EM M-step, the
data it needs, and collapse detection. Everything else (EM, the PyMC models, relabelling, membership,
reports, plots) works on full matrices or asks the structure; adding a structure means adding one class
here and naming it in :data:`STRUCTURES`.

Stored shapes follow scikit-learn (K components, D features):

============  =============  ===========  ===========================================
name          mclust name    covariances  precision Cholesky
============  =============  ===========  ===========================================
"full"        VVV            (K, D, D)    (K, D, D), upper triangular
"tied"        EEE            (D, D)       (D, D), upper triangular
"diag"        VVI            (K, D)       (K, D)
"spherical"   VII            (K,)         (K,)
============  =============  ===========  ===========================================

The precision Cholesky factor ``P`` satisfies ``inv(cov) = P @ P.T``, so the squared Mahalanobis distance
of ``x`` is ``||(x - mu) @ P||**2`` and no covariance is ever inverted.
"""

from __future__ import annotations

import numpy as np

from bayes_gmm.covariance._mclust_msteps import (
    MCLUST_MODELS,
    ONE_D_MODELS,
    mclust_covariances,
    n_covariance_parameters,
)
from bayes_gmm.exceptions import COLLAPSE_HINT, IllConditionedCovarianceError

_COLLAPSE_MESSAGE = (
    "a component's covariance is not positive definite: it has collapsed onto too few or duplicated points. "
    + COLLAPSE_HINT
)


class CovarianceStructure:
    """How a mixture's covariance matrices are parametrised; one subclass per structure.

    Every method takes the number of components K and features D explicitly, whatever the structure.

    Attributes
    ----------
    name : str
        The scikit-learn name ("full", "tied", "diag", "spherical").
    mclust_name : str
        The name of the same model in R's mclust (Celeux & Govaert 1995), e.g. "VVV" for "full".
    description : str
        One line for documentation and error messages.
    correlated : bool
        Whether features may correlate within a component (off-diagonal covariances are free).
    needs_full_scatter : bool
        Whether the M-step needs the off-diagonal sums of the E-step's scatter (else only its diagonal).
    """

    name: str
    mclust_name: str
    description: str
    correlated: bool
    needs_full_scatter: bool

    def __repr__(self) -> str:
        return f"<covariance structure {self.name!r} ({self.mclust_name})>"

    def shape(self, n_components: int, n_features: int) -> tuple[int, ...]:
        """Shape of the stored covariances (and of the precision Cholesky factors)."""
        raise NotImplementedError

    def n_parameters(self, n_components: int, n_features: int) -> int:
        """Number of free covariance parameters (mclust's ``nMclustParams`` less weights and means)."""
        raise NotImplementedError

    def min_samples(self, n_components: int, n_features: int) -> tuple[int, str]:
        """Fewest samples for a non-singular fit, and why, in words (for error messages)."""
        raise NotImplementedError

    def to_full(self, covariances, n_components: int, n_features: int) -> np.ndarray:
        """The stored covariances as a new (K, D, D) stack of full matrices."""
        raise NotImplementedError

    def from_full(self, full: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Stored covariances from full matrices `full` (K, D, D): the M-step's pooling of them, with
        components weighted by `weights` where the structure pools over components."""
        raise NotImplementedError

    def precision_cholesky(self, covariances) -> np.ndarray:
        """Cholesky factors of the precisions, in the stored shape.

        Raises
        ------
        IllConditionedCovarianceError
            If a covariance is not positive definite.
        """
        raise NotImplementedError

    def full_precision_cholesky(self, prec_chol, n_components: int, n_features: int) -> np.ndarray:
        """The precision Cholesky factors as a (K, D, D) stack of upper-triangular matrices."""
        raise NotImplementedError

    def log_det_precision_cholesky(self, prec_chol, n_components: int, n_features: int) -> np.ndarray:
        """``log det P_k`` (= -0.5 log det Sigma_k) of each component, shape (K,)."""
        raise NotImplementedError

    def m_step(
        self, scatter: np.ndarray, nk: np.ndarray, reg_covar: float, previous=None, inner_iterations=None
    ) -> np.ndarray:
        """Covariances maximising the expected complete-data log-likelihood, in the stored shape.

        `scatter` (K, D, D) holds each component's responsibility-weighted scatter around its new mean
        divided by its total responsibility `nk` (K,); `reg_covar` is added to every diagonal. `previous`
        (the last covariances) starts the structures whose M-step is iterative, which run at most
        `inner_iterations` inner iterations (default :data:`INNER_ITERATIONS`; closed forms ignore it).
        """
        raise NotImplementedError

    def check_features(self, n_features: int) -> None:
        """Raise a ValueError if the structure is not defined for `n_features` features."""

    def smallest_variance(self, covariances) -> float:
        """The smallest variance of any component in any direction (to detect collapsed components)."""
        return float(np.linalg.eigvalsh(np.asarray(covariances, dtype=float)).min())


def _cholesky_of_precisions(stacked: np.ndarray) -> np.ndarray:
    """Upper-triangular precision Cholesky factors of a (K, D, D) stack of covariance matrices."""
    if not np.all(np.isfinite(stacked)):  # an M-step that met an empty or collapsed component
        raise IllConditionedCovarianceError(_COLLAPSE_MESSAGE)
    try:
        cov_chol = np.linalg.cholesky(stacked)
    except np.linalg.LinAlgError:
        raise IllConditionedCovarianceError(_COLLAPSE_MESSAGE) from None
    # One batched solve for all K factors (SciPy's per-matrix calls cost a third of a small EM's time).
    inverse = np.linalg.solve(cov_chol, np.broadcast_to(np.eye(stacked.shape[-1]), stacked.shape))
    return np.triu(np.swapaxes(inverse, -1, -2))


def _inverse_sqrt(variances) -> np.ndarray:
    variances = np.asarray(variances, dtype=float)
    if np.any(variances <= 0.0) or not np.all(np.isfinite(variances)):
        raise IllConditionedCovarianceError(_COLLAPSE_MESSAGE)
    return 1.0 / np.sqrt(variances)


def _diagonal_stack(diagonals: np.ndarray) -> np.ndarray:
    """(K, D) diagonals as a (K, D, D) stack of diagonal matrices."""
    return diagonals[:, :, None] * np.eye(diagonals.shape[1])


class Full(CovarianceStructure):
    name, mclust_name = "full", "VVV"
    description = "one unrestricted covariance per component"
    correlated, needs_full_scatter = True, True

    def shape(self, n_components, n_features):
        return (n_components, n_features, n_features)

    def n_parameters(self, n_components, n_features):
        return n_components * n_features * (n_features + 1) // 2

    def min_samples(self, n_components, n_features):
        n = n_components * (n_features + 1)
        return n, f"d + 1 = {n_features + 1} points per component (K(d + 1) = {n} in all)"

    def to_full(self, covariances, n_components, n_features):
        return np.array(covariances, dtype=float)

    def from_full(self, full, weights):
        return np.array(full, dtype=float)

    def precision_cholesky(self, covariances):
        return _cholesky_of_precisions(np.asarray(covariances, dtype=float))

    def full_precision_cholesky(self, prec_chol, n_components, n_features):
        return np.ascontiguousarray(prec_chol)

    def log_det_precision_cholesky(self, prec_chol, n_components, n_features):
        return np.sum(np.log(np.diagonal(prec_chol, axis1=-2, axis2=-1)), axis=-1)

    def m_step(self, scatter, nk, reg_covar, previous=None, inner_iterations=None):
        return scatter + reg_covar * np.eye(scatter.shape[-1])


class Tied(CovarianceStructure):
    name, mclust_name = "tied", "EEE"
    description = "one covariance shared by all components"
    correlated, needs_full_scatter = True, True

    def shape(self, n_components, n_features):
        return (n_features, n_features)

    def n_parameters(self, n_components, n_features):
        return n_features * (n_features + 1) // 2

    def min_samples(self, n_components, n_features):
        n = n_components + n_features
        return n, f"K + d = {n} points (the shared covariance has n - K degrees of freedom)"

    def to_full(self, covariances, n_components, n_features):
        return np.broadcast_to(
            np.asarray(covariances, dtype=float), (n_components, n_features, n_features)
        ).copy()

    def from_full(self, full, weights):
        return np.einsum("k,kij->ij", weights / np.sum(weights), full)

    def precision_cholesky(self, covariances):
        return _cholesky_of_precisions(np.asarray(covariances, dtype=float)[None])[0]

    def full_precision_cholesky(self, prec_chol, n_components, n_features):
        return np.ascontiguousarray(np.broadcast_to(prec_chol, (n_components, n_features, n_features)))

    def log_det_precision_cholesky(self, prec_chol, n_components, n_features):
        return np.full(n_components, np.sum(np.log(np.diag(prec_chol))))

    def m_step(self, scatter, nk, reg_covar, previous=None, inner_iterations=None):
        return np.tensordot(nk, scatter, axes=1) / nk.sum() + reg_covar * np.eye(scatter.shape[-1])


class Diagonal(CovarianceStructure):
    name, mclust_name = "diag", "VVI"
    description = "one diagonal covariance per component (features uncorrelated within a component)"
    correlated, needs_full_scatter = False, False

    def shape(self, n_components, n_features):
        return (n_components, n_features)

    def n_parameters(self, n_components, n_features):
        return n_components * n_features

    def min_samples(self, n_components, n_features):
        return 2 * n_components, f"2 points per component (2K = {2 * n_components} in all)"

    def to_full(self, covariances, n_components, n_features):
        return _diagonal_stack(np.asarray(covariances, dtype=float))

    def from_full(self, full, weights):
        return np.diagonal(full, axis1=-2, axis2=-1).copy()

    def precision_cholesky(self, covariances):
        return _inverse_sqrt(covariances)

    def full_precision_cholesky(self, prec_chol, n_components, n_features):
        return _diagonal_stack(np.asarray(prec_chol, dtype=float))

    def log_det_precision_cholesky(self, prec_chol, n_components, n_features):
        return np.sum(np.log(prec_chol), axis=1)

    def m_step(self, scatter, nk, reg_covar, previous=None, inner_iterations=None):
        return np.diagonal(scatter, axis1=1, axis2=2) + reg_covar

    def smallest_variance(self, covariances):
        return float(np.min(covariances))


class Spherical(CovarianceStructure):
    name, mclust_name = "spherical", "VII"
    description = "one variance per component, the same in every direction"
    correlated, needs_full_scatter = False, False

    def shape(self, n_components, n_features):
        return (n_components,)

    def n_parameters(self, n_components, n_features):
        return n_components

    def min_samples(self, n_components, n_features):
        return 2 * n_components, f"2 points per component (2K = {2 * n_components} in all)"

    def to_full(self, covariances, n_components, n_features):
        return np.asarray(covariances, dtype=float)[:, None, None] * np.eye(n_features)

    def from_full(self, full, weights):
        return np.trace(full, axis1=-2, axis2=-1) / full.shape[-1]

    def precision_cholesky(self, covariances):
        return _inverse_sqrt(covariances)

    def full_precision_cholesky(self, prec_chol, n_components, n_features):
        return np.asarray(prec_chol, dtype=float)[:, None, None] * np.eye(n_features)

    def log_det_precision_cholesky(self, prec_chol, n_components, n_features):
        return n_features * np.log(prec_chol)

    def m_step(self, scatter, nk, reg_covar, previous=None, inner_iterations=None):
        return np.diagonal(scatter, axis1=1, axis2=2).mean(axis=1) + reg_covar

    def smallest_variance(self, covariances):
        return float(np.min(covariances))


#: Inner iterations of an iterative M-step (VEI, VEE, EVE, VVE, VEV) per EM update. Each one raises the
#: M-step's objective, so a few, warm-started from the last covariances, make a generalised EM step that
#: still raises the likelihood; EVE and VVE took 5x longer with 100 at no gain (10,000 x 5, K = 6).
INNER_ITERATIONS = 10


class Parsimonious(Full):
    """One of mclust's parsimonious models, ``Sigma_k = lambda_k D_k A_k D_k^T`` (Celeux & Govaert 1995).

    The three letters say whether volume (lambda), shape (A) and orientation (D) are Equal across
    components, Variable, or the Identity; "E" and "V" are the one-feature models (equal or variable
    variance). Covariances are stored as full (K, D, D) matrices, as mclust stores them; the M-steps are
    those of :mod:`bayes_gmm.covariance._mclust_msteps`; the precisions are computed as for "full".
    """

    def __init__(self, mclust_name: str, orientation_weights: str = "exact"):
        self.name = self.mclust_name = mclust_name
        self.orientation_weights = orientation_weights
        one_d = mclust_name in ONE_D_MODELS
        orientation = "I" if one_d else mclust_name[2]
        self.correlated = self.needs_full_scatter = orientation != "I"
        words = {"E": "equal", "V": "variable", "I": "identity"}
        self.description = (
            f"one feature, {words[mclust_name]} variance"
            if one_d
            else "volume {}, shape {}, orientation {}".format(*(words[c] for c in mclust_name))
        )
        self._shared_orientation = orientation == "E"

    def n_parameters(self, n_components, n_features):
        return n_covariance_parameters(self.name, n_components, n_features)

    def min_samples(self, n_components, n_features):
        if not self.correlated:
            return 2 * n_components, f"2 points per component (2K = {2 * n_components} in all)"
        if self._shared_orientation:
            n = n_components + n_features
            return n, f"K + d = {n} points (the shared orientation has n - K degrees of freedom)"
        n = n_components * (n_features + 1)
        return n, f"d + 1 = {n_features + 1} points per component (K(d + 1) = {n} in all)"

    def from_full(self, full, weights):
        full = np.asarray(full, dtype=float)
        return mclust_covariances(self.name, full, np.asarray(weights, dtype=float), previous=full)

    def m_step(self, scatter, nk, reg_covar, previous=None, inner_iterations=None):
        try:
            with np.errstate(divide="ignore", invalid="ignore"):  # an empty component: NaN, caught later
                return mclust_covariances(
                    self.name,
                    scatter,
                    nk,
                    previous=previous,
                    reg_covar=reg_covar,
                    max_iter=INNER_ITERATIONS if inner_iterations is None else inner_iterations,
                    orientation_weights=self.orientation_weights,
                )
        except np.linalg.LinAlgError:  # a singular scatter (a component on too few points)
            raise IllConditionedCovarianceError(_COLLAPSE_MESSAGE) from None

    def check_features(self, n_features: int) -> None:
        if (self.name in ONE_D_MODELS) != (n_features == 1):
            raise ValueError(
                f"covariance_type={self.name!r} needs "
                + ("exactly one feature" if self.name in ONE_D_MODELS else "two or more features")
                + f"; the data have {n_features}. "
                + ("Use 'EII' to 'VVV'." if self.name in ONE_D_MODELS else "Use 'E' or 'V' for one feature.")
            )


_SKLEARN = (Full(), Tied(), Diagonal(), Spherical())
#: Every structure by each of its names: scikit-learn's four, and mclust's 14 (plus "E" and "V" for one
#: feature), of which VVV, EEE, VVI and VII are scikit-learn's full, tied, diag and spherical.
STRUCTURES: dict[str, CovarianceStructure] = {s.name: s for s in _SKLEARN} | {
    name: next((s for s in _SKLEARN if s.mclust_name == name), None) or Parsimonious(name)
    for name in MCLUST_MODELS + ONE_D_MODELS
}
#: VVE with mclust's own M-step, whose orientation update weights the components by their shapes only (not
#: the exact maximiser, see :mod:`~bayes_gmm.covariance._mclust_msteps`): EM with it follows mclust's path
#: from a start, and can end at a higher maximum than the exact M-step from the same start.
MCLUST_VVE = Parsimonious("VVE", orientation_weights="mclust")
#: The names ``covariance_type`` accepts: scikit-learn's, then mclust's.
COVARIANCE_TYPES = tuple(STRUCTURES)
#: mclust's model names for data with several features and with one.
MCLUST_NAMES = MCLUST_MODELS
MCLUST_NAMES_1D = ONE_D_MODELS


def get_structure(covariance_type) -> CovarianceStructure:
    """The structure named `covariance_type` (a structure passes through).

    Raises
    ------
    ValueError
        Naming the accepted names, if `covariance_type` is none of them.
    """
    if isinstance(covariance_type, CovarianceStructure):
        return covariance_type
    try:
        return STRUCTURES[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(
            f"covariance_type must be one of {COVARIANCE_TYPES}; got {covariance_type!r}. "
            f"Use 'full' for one unrestricted covariance per component."
        ) from None
