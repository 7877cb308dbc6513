"""M-steps of mclust's 14 parsimonious covariance models (and the two 1-D models), in NumPy.

The models parametrise each component covariance by the eigen-decomposition

.. math:: \\Sigma_k = \\lambda_k D_k A_k D_k^\\top, \\qquad |A_k| = 1,

with volume :math:`\\lambda_k`, shape :math:`A_k` (diagonal) and orientation :math:`D_k` (orthogonal), each
either Equal across components, Variable, or the Identity (I).  The three letters of a model name give
volume, shape and orientation in this order (Banfield & Raftery 1993; Celeux & Govaert 1995).  In one
dimension only the variance remains: "E" (equal) and "V" (variable).

Given the responsibilities :math:`r_{ik}` of an E-step, the M-step of every model maximises

.. math:: -\\frac12 \\sum_k \\left[ n_k \\log|\\Sigma_k| + \\operatorname{tr}(W_k \\Sigma_k^{-1}) \\right]

over the covariances allowed by the model, where :math:`n_k = \\sum_i r_{ik}` and
:math:`W_k = \\sum_i r_{ik} (x_i - \\mu_k)(x_i - \\mu_k)^\\top = n_k S_k` is the weighted scatter matrix
around the new mean.  This module computes that maximiser from the :math:`S_k` and :math:`n_k` only.

Closed form (Celeux & Govaert 1995, Browne & McNicholas 2014 for EVV):
    EII, VII, EEI, EVI, VVI, EEE, EEV, EVV, VVV, and E, V in one dimension.
Iterative (started from ``previous`` when given):
    VEI, VEV, VEE: alternating exact updates of volumes and the common shape (or shape-orientation matrix)
    (Celeux & Govaert 1995, sections 3.2 and 4).
    EVE, VVE: the common orientation by the two majorisation-minimisation (MM) steps of Browne &
    McNicholas (2014), alternated with the exact volume and shape updates.

Differences from mclust (R package, Scrucca et al. 2016), whose Fortran code was read for reference:

* mclust's VVE update of the common orientation weights each component by its shape :math:`A_k^{-1}` only
  and leaves out :math:`1/\\lambda_k`, so it does not maximise the M-step objective when the volumes
  differ (its EM can even lose likelihood).  Here the orientation step uses :math:`(\\lambda_k A_k)^{-1}`,
  the exact block update, so every inner iteration increases the objective.
* mclust iterates its inner loops until the relative change of the parameters (VEI, VEV) or of the
  objective (VEE, EVE, VVE) is below ``sqrt(eps)`` (inside its EM, EVE and VVE continue from the previous iteration's
  orientation and shapes); here the iterations stop when the relative change of the covariances is below ``tol``.

References
----------
Banfield, J. D. and Raftery, A. E. (1993). Model-based Gaussian and non-Gaussian clustering.
    Biometrics 49(3), 803-821.
Celeux, G. and Govaert, G. (1995). Gaussian parsimonious clustering models. Pattern Recognition 28(5),
    781-793.
Browne, R. P. and McNicholas, P. D. (2014). Estimating common principal components in high dimensions.
    Advances in Data Analysis and Classification 8(2), 217-226.
Scrucca, L., Fop, M., Murphy, T. B. and Raftery, A. E. (2016). mclust 5: clustering, classification and
    density estimation using Gaussian finite mixture models. The R Journal 8(1), 289-317.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "MCLUST_MODELS",
    "ONE_D_MODELS",
    "mclust_covariances",
    "n_covariance_parameters",
]

MCLUST_MODELS = (
    "EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE",
    "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV",
)  # fmt: skip
ONE_D_MODELS = ("E", "V")

CLOSED_FORM_MODELS = ("EII", "VII", "EEI", "EVI", "VVI", "EEE", "EEV", "EVV", "VVV", "E", "V")
ITERATIVE_MODELS = ("VEI", "VEE", "EVE", "VVE", "VEV")


# --------------------------------------------------------------------------------------------------
# number of parameters
# --------------------------------------------------------------------------------------------------


def _check_model(model: str, n_features: int) -> None:
    if model in ONE_D_MODELS:
        if n_features != 1:
            raise ValueError(f"model {model!r} is a one-dimensional model, got {n_features} features")
    elif model not in MCLUST_MODELS:
        raise ValueError(
            f"unknown covariance model {model!r}; expected one of {MCLUST_MODELS + ONE_D_MODELS}"
        )


def n_covariance_parameters(model: str, n_components: int, n_features: int) -> int:
    """Number of free covariance parameters of an mclust model.

    Parameters
    ----------
    model : str
        One of :data:`MCLUST_MODELS` or, for one feature, :data:`ONE_D_MODELS`.
    n_components : int
        Number of mixture components K (>= 1).
    n_features : int
        Dimension D (>= 1).

    Returns
    -------
    int
        Covariance parameters only: ``(K - 1) + K * D + n_covariance_parameters(model, K, D)`` is the number
        of free parameters of the mixture, as mclust's ``nMclustParams`` counts them (Celeux & Govaert
        1995, table 1).

    Raises
    ------
    ValueError
        For an unknown model, a 1-D model with ``n_features != 1``, or non-positive sizes.
    """
    k, d = int(n_components), int(n_features)
    if k < 1 or d < 1:
        raise ValueError("n_components and n_features must be >= 1")
    _check_model(model, d)
    full = d * (d + 1) // 2  # one unconstrained covariance matrix
    rot = d * (d - 1) // 2  # one orientation matrix
    counts = {
        "E": 1,
        "V": k,
        "EII": 1,
        "VII": k,
        "EEI": d,
        "VEI": k + (d - 1),
        "EVI": 1 + k * (d - 1),
        "VVI": k * d,
        "EEE": full,
        "VEE": k + full - 1,
        "EVE": 1 + k * (d - 1) + rot,
        "VVE": k + k * (d - 1) + rot,
        "EEV": 1 + (d - 1) + k * rot,
        "VEV": k + (d - 1) + k * rot,
        "EVV": 1 + k * (full - 1),
        "VVV": k * full,
    }
    return counts[model]


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _geo_mean(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Geometric mean along ``axis`` (so that ``values / _geo_mean(values)`` has product 1)."""
    return np.exp(np.mean(np.log(values), axis=axis, keepdims=True))


def _diag_matrices(diag: np.ndarray) -> np.ndarray:
    """(K, D) -> (K, D, D) diagonal matrices."""
    k, d = diag.shape
    out = np.zeros((k, d, d))
    idx = np.arange(d)
    out[:, idx, idx] = diag
    return out


def _compose(vectors: np.ndarray, eigvals: np.ndarray) -> np.ndarray:
    """Sum_j eigvals[..., j] v_j v_j^T for orthogonal ``vectors`` (..., D, D) (columns v_j)."""
    return np.einsum("...ij,...j,...kj->...ik", vectors, eigvals, vectors)


def _rel_change(new: np.ndarray, old: np.ndarray) -> float:
    scale = np.max(np.abs(new), axis=(-2, -1), keepdims=True)
    return float(np.max(np.abs(new - old) / scale))


def _symmetrize(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _logdet_root(w: np.ndarray) -> np.ndarray:
    """|W_k|^(1/D) for (K, D, D) positive definite matrices."""
    sign, logdet = np.linalg.slogdet(w)
    if np.any(sign <= 0):
        raise np.linalg.LinAlgError("a scatter matrix is not positive definite")
    return np.exp(logdet / w.shape[-1])


def _polar_orthogonal(g: np.ndarray) -> np.ndarray:
    """The orthogonal D minimising tr(G^T D): D = -U V^T for G = U S V^T."""
    u, _, vt = np.linalg.svd(g)
    return -(u @ vt)


# --------------------------------------------------------------------------------------------------
# iterative M-steps
# --------------------------------------------------------------------------------------------------


def _vei_like(omega: np.ndarray, nk: np.ndarray, shape0: np.ndarray, max_iter: int, tol: float):
    """Volumes lambda_k and common shape a (prod a = 1) maximising the VEI-type objective.

    Minimises sum_k [n_k D log lambda_k + sum_j omega_kj / (lambda_k a_j)] by alternating the two exact
    block updates (Celeux & Govaert 1995, VEI: omega = diag(W_k); VEV: omega = eigenvalues of W_k, paired in
    the same order for every k).  In log coordinates the objective is convex, so the alternation converges to
    the unique minimiser.
    """
    d = omega.shape[1]
    a = shape0 / _geo_mean(shape0)[..., 0]
    lam = np.sum(omega / a, axis=1) / (d * nk)
    for _ in range(max_iter):
        lam_old, a_old = lam, a
        b = np.sum(omega / lam[:, None], axis=0)
        a = b / _geo_mean(b)[0]
        lam = np.sum(omega / a, axis=1) / (d * nk)
        err = max(np.max(np.abs(lam - lam_old) / lam), np.max(np.abs(a - a_old) / a))
        if err <= tol:
            break
    return lam, a


def _vee(w: np.ndarray, nk: np.ndarray, lam0: np.ndarray, max_iter: int, tol: float) -> np.ndarray:
    """VEE: Sigma_k = lambda_k C with |C| = 1 (Celeux & Govaert 1995, section 3.2, alternating updates)."""
    d = w.shape[-1]
    lam = lam0
    cov = None
    for _ in range(max_iter):
        c = np.sum(w / lam[:, None, None], axis=0)
        c = c / _logdet_root(c[None])[0]
        c_inv = np.linalg.inv(c)
        lam = np.einsum("kij,ji->k", w, c_inv) / (d * nk)
        new = lam[:, None, None] * c[None]
        if cov is not None and _rel_change(new, cov) <= tol:
            cov = new
            break
        cov = new
    return cov


def _orientation_mm(
    w: np.ndarray, omega_max: np.ndarray, orient: np.ndarray, inv_diag: np.ndarray
) -> np.ndarray:
    """One MM1 step and one MM2 step for the common orientation (Browne & McNicholas 2014).

    Decreases f(D) = sum_k tr(D^T W_k D C_k), C_k = diag(inv_diag[k]) >= 0, over orthogonal D.

    MM1 majorises W_k by omega_max[k] I (its largest eigenvalue), MM2 majorises C_k by max(C_k) I; both give
    a concave function of D whose tangent plane majorises f, minimised over orthogonal D by an SVD.
    """
    # MM1: G = sum_k (W_k - w_k I) D C_k
    wd = w @ orient  # (K, D, D)
    g1 = np.sum((wd - omega_max[:, None, None] * orient[None]) * inv_diag[:, None, :], axis=0)
    orient = _polar_orthogonal(g1)
    # MM2: G = sum_k W_k D (C_k - c_k I)
    wd = w @ orient
    g2 = np.sum(wd * (inv_diag - inv_diag.max(axis=1, keepdims=True))[:, None, :], axis=0)
    return _polar_orthogonal(g2)


def _common_orientation_model(
    model: str,
    w: np.ndarray,
    nk: np.ndarray,
    orient0: np.ndarray,
    max_iter: int,
    tol: float,
    orientation_weights: str = "exact",
) -> np.ndarray:
    """EVE (Sigma_k = lambda D A_k D^T) and VVE (Sigma_k = lambda_k D A_k D^T).

    Given D the volumes and shapes are exact: with b_k = diag(D^T W_k D),
    EVE: A_k = b_k / |b_k|^(1/p), lambda = sum_k |b_k|^(1/p) / n;  VVE: lambda_k A_k = b_k / n_k.
    D is then updated by the MM steps of Browne & McNicholas (2014) with the weights Sigma_k's inverse
    eigenvalues (for VVE including 1/lambda_k; with ``orientation_weights="mclust"``, mclust's VVE
    weights, the shapes' only: 1/A_k).
    """
    n = nk.sum()
    omega_max = np.linalg.eigvalsh(w)[:, -1]
    orient = orient0

    def covariances(orient):
        b = np.einsum("ji,kjl,li->ki", orient, w, orient)  # diag(D^T W_k D), (K, D)
        if model == "EVE":
            root = _geo_mean(b)
            eig = (b / root) * (root.sum() / n)
        else:  # VVE
            eig = b / nk[:, None]
        return eig

    eig = covariances(orient)
    cov = _compose(orient[None], eig)
    for _ in range(max_iter):
        # weights: inverse eigenvalues; EVE's common lambda does not change the minimiser over D
        inv_diag = 1.0 / eig
        if orientation_weights == "mclust" and model == "VVE":
            inv_diag = inv_diag / _geo_mean(inv_diag)  # 1 / A_k, |A_k| = 1: the volumes left out
        orient = _orientation_mm(w, omega_max, orient, inv_diag)
        eig = covariances(orient)
        new = _compose(orient[None], eig)
        done = _rel_change(new, cov) <= tol
        cov = new
        if done:
            break
    return cov


# --------------------------------------------------------------------------------------------------
# public M-step
# --------------------------------------------------------------------------------------------------


def mclust_covariances(
    model: str,
    scatter: np.ndarray,
    nk: np.ndarray,
    *,
    previous: np.ndarray | None = None,
    reg_covar: float = 0.0,
    max_iter: int = 100,
    tol: float = 1e-8,
    orientation_weights: str = "exact",
) -> np.ndarray:
    """M-step covariances (K, D, D) of an mclust covariance model.

    Parameters
    ----------
    model : str
        One of :data:`MCLUST_MODELS` ("EII", ..., "VVV"; volume, shape, orientation) or, with one feature,
        :data:`ONE_D_MODELS` ("E": equal variance, "V": variable variance).
    scatter : ndarray of shape (K, D, D)
        Per-component scatter around the component's new mean divided by its weight sum,
        ``S_k = sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T / n_k`` (the weighted scatter is ``W_k = n_k S_k``).
        Must be positive definite for the models that use determinants or eigenvalues (all but EII, VII, EEI,
        VVI, EEE, VVV, E, V).
    nk : ndarray of shape (K,)
        Weight sums ``n_k = sum_i r_ik > 0``.
    previous : ndarray of shape (K, D, D), optional
        Covariances of the previous EM iteration; the start of the iterative M-steps (VEI, VEE, EVE, VVE,
        VEV).  None starts from the closed form of a nearby model (EEI for VEI, EEE for VEE, EEE's
        orientation for EVE/VVE, EEV for VEV).  Ignored by the closed-form models.
    reg_covar : float, default 0
        Added to the diagonal of every result (as scikit-learn does).  Applied after the M-step, so a positive
        value slightly breaks the model's equality constraints.
    max_iter : int, default 100
        Maximum inner iterations of the iterative models.  Each inner iteration increases the M-step
        objective, so an unconverged result still improves on ``previous`` (a generalised EM step).
    tol : float, default 1e-8
        The inner iterations stop when the largest change of a covariance entry, relative to the largest
        entry of that component's covariance, falls below ``tol`` (VEI, VEV: relative change of the volumes
        and shape).
    orientation_weights : {"exact", "mclust"}, default "exact"
        VVE only: "mclust" updates the common orientation as mclust does, weighting each component by its
        shape alone (see the module's docstring); it does not maximise the objective, but EM with it follows
        mclust's path from a start, which can end at another maximum than the exact step's.

    Returns
    -------
    ndarray of shape (K, D, D)
        The covariances maximising ``-1/2 sum_k [n_k log|Sigma_k| + tr(W_k Sigma_k^{-1})]`` over the model.

    Notes
    -----
    Closed forms (Celeux & Govaert 1995, table 1 and section 3; with ``n = sum_k n_k``):

    * EII ``lambda I``, ``lambda = sum_k tr W_k / (n D)``; VII ``lambda_k = tr S_k / D``;
    * EEI ``diag(sum_k W_k) / n``; VVI ``diag(S_k)``; EVI ``lambda B_k / |B_k|^(1/D)`` with
      ``B_k = diag(W_k)``, ``lambda = sum_k |B_k|^(1/D) / n``;
    * EEE ``sum_k W_k / n``; VVV ``S_k``; EEV ``D_k (sum_j Omega_j / n) D_k^T`` with
      ``W_k = D_k Omega_k D_k^T`` (eigenvalues sorted alike); EVV ``lambda W_k / |W_k|^(1/D)`` with
      ``lambda = sum_k |W_k|^(1/D) / n`` (Browne & McNicholas 2014);
    * E: ``sum_k W_k / n``; V: ``S_k``.

    Iterative (each step an exact block update, so the objective increases monotonically):

    * VEI, VEV: ``lambda_k = tr(Omega_k A^-1) / (D n_k)`` and ``A ~ sum_k Omega_k / lambda_k``
      (``|A| = 1``), with ``Omega_k = diag(W_k)`` (VEI) or the sorted eigenvalues of ``W_k`` (VEV, whose
      orientations are the eigenvectors of ``W_k``, Celeux & Govaert 1995, section 4);
    * VEE: ``C ~ sum_k W_k / lambda_k`` (``|C| = 1``) and ``lambda_k = tr(W_k C^-1) / (D n_k)``;
    * EVE, VVE: exact volumes and shapes given the orientation D, and D by the MM steps of Browne &
      McNicholas (2014).

    References
    ----------
    Celeux, G. and Govaert, G. (1995). Gaussian parsimonious clustering models. Pattern Recognition
    28(5), 781-793.
    Browne, R. P. and McNicholas, P. D. (2014). Estimating common principal components in high dimensions.
    Advances in Data Analysis and Classification 8(2), 217-226.

    Examples
    --------
    >>> import numpy as np
    >>> s = np.array([[[2.0, 0.5], [0.5, 1.0]], [[1.0, -0.2], [-0.2, 3.0]]])
    >>> nk = np.array([30.0, 70.0])
    >>> mclust_covariances("EEE", s, nk)[0]
    array([[1.3 , 0.01],
           [0.01, 2.4 ]])
    """
    scatter = np.asarray(scatter, dtype=float)
    nk = np.asarray(nk, dtype=float)
    if scatter.ndim != 3 or scatter.shape[1] != scatter.shape[2]:
        raise ValueError(f"scatter must have shape (K, D, D), got {scatter.shape}")
    k, d, _ = scatter.shape
    _check_model(model, d)
    if nk.shape != (k,):
        raise ValueError(f"nk must have shape ({k},), got {nk.shape}")
    if not (np.all(np.isfinite(scatter)) and np.all(np.isfinite(nk))):
        raise ValueError("scatter and nk must be finite")
    if np.any(nk <= 0):
        raise ValueError("every n_k must be > 0")
    if previous is not None:
        previous = np.asarray(previous, dtype=float)
        if previous.shape != scatter.shape:
            raise ValueError(f"previous must have shape {scatter.shape}, got {previous.shape}")
    if max_iter < 1:
        raise ValueError("max_iter must be >= 1")

    s = _symmetrize(scatter)
    w = nk[:, None, None] * s
    n = nk.sum()
    idx = np.arange(d)
    eye = np.eye(d)

    if model in ("E", "EEE"):
        cov = np.broadcast_to(w.sum(axis=0) / n, (k, d, d)).copy()
    elif model in ("V", "VVV"):
        cov = s.copy()
    elif model == "EII":
        lam = np.trace(w, axis1=1, axis2=2).sum() / (n * d)
        cov = np.broadcast_to(lam * eye, (k, d, d)).copy()
    elif model == "VII":
        lam = np.trace(s, axis1=1, axis2=2) / d
        cov = lam[:, None, None] * eye
    elif model == "EEI":
        cov = np.broadcast_to(np.diag(w.sum(axis=0)[idx, idx] / n), (k, d, d)).copy()
    elif model == "VVI":
        cov = _diag_matrices(s[:, idx, idx])
    elif model == "EVI":
        b = w[:, idx, idx]
        root = _geo_mean(b)
        cov = _diag_matrices(b / root * (root.sum() / n))
    elif model == "EVV":
        root = _logdet_root(w)
        cov = w / root[:, None, None] * (root.sum() / n)
    elif model == "EEV":
        omega, vec = np.linalg.eigh(w)  # ascending eigenvalues for every k
        cov = _compose(vec, np.broadcast_to(omega.sum(axis=0) / n, (k, d)))
    elif model == "VEI":
        omega = w[:, idx, idx]
        if previous is not None:
            shape0 = np.exp(np.mean(np.log(previous[:, idx, idx] / _geo_mean(previous[:, idx, idx])), axis=0))
        else:
            shape0 = omega.sum(axis=0)
        lam, a = _vei_like(omega, nk, shape0, max_iter, tol)
        cov = _diag_matrices(lam[:, None] * a[None, :])
    elif model == "VEV":
        omega, vec = np.linalg.eigh(w)
        if previous is not None:
            ev = np.linalg.eigvalsh(previous)
            shape0 = np.exp(np.mean(np.log(ev / _geo_mean(ev)), axis=0))
        else:
            shape0 = omega.sum(axis=0)
        lam, a = _vei_like(omega, nk, shape0, max_iter, tol)
        cov = _compose(vec, lam[:, None] * a[None, :])
    elif model == "VEE":
        lam0 = _logdet_root(previous) if previous is not None else np.ones(k)
        cov = _vee(w, nk, lam0, max_iter, tol)
    else:  # EVE, VVE
        if previous is not None:
            # the common eigenvectors of the previous covariances: those of a generic combination of them
            weights = 1.0 + np.arange(k) / (k + 0.5)
            comb = np.sum(weights[:, None, None] * previous / _logdet_root(previous)[:, None, None], axis=0)
            orient0 = np.linalg.eigh(comb)[1]
        else:
            orient0 = np.linalg.eigh(w.sum(axis=0))[1]
        cov = _common_orientation_model(model, w, nk, orient0, max_iter, tol, orientation_weights)

    cov = _symmetrize(cov)
    if reg_covar:
        cov = cov + reg_covar * eye
    return cov
