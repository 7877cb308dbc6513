"""Fitting the Bayesian GMM (NUTS, ADVI), relabelling, and what is computed from the posterior."""

from bayes_gmm.inference._advi import ElboPlateau
from bayes_gmm.inference._backends import AUTO_PREFERENCE, NUTS_BACKENDS, available_backends
from bayes_gmm.inference._fit import METHODS, fit_gmm
from bayes_gmm.inference._partition import (
    PartitionEstimate,
    argmax_partitions,
    binder_loss,
    candidate_partitions,
    canonicalize_partitions,
    co_clustering_from_labels,
    co_clustering_matrix,
    expected_vi_lower_bound,
    linkage_partitions,
    point_partition,
    sample_partitions,
)
from bayes_gmm.inference._relabel import Relabelling, apply_relabelling, find_relabelling
from bayes_gmm.inference._start import jittered_start_values, start_values
from bayes_gmm.inference._waic import WAICResult, waic

__all__ = [
    "AUTO_PREFERENCE",
    "METHODS",
    "NUTS_BACKENDS",
    "ElboPlateau",
    "PartitionEstimate",
    "Relabelling",
    "WAICResult",
    "apply_relabelling",
    "argmax_partitions",
    "available_backends",
    "binder_loss",
    "candidate_partitions",
    "canonicalize_partitions",
    "co_clustering_from_labels",
    "co_clustering_matrix",
    "expected_vi_lower_bound",
    "find_relabelling",
    "fit_gmm",
    "jittered_start_values",
    "linkage_partitions",
    "point_partition",
    "sample_partitions",
    "start_values",
    "waic",
]
