"""Fitting the Bayesian GMM (NUTS, ADVI), relabelling, and what is computed from the posterior."""

from bayes_gmm.inference._advi import ElboPlateau
from bayes_gmm.inference._arviz import loo_subsampled
from bayes_gmm.inference._backends import ADVI_BACKENDS, AUTO_PREFERENCE, NUTS_BACKENDS, available_backends
from bayes_gmm.inference._coclustering import co_clustering_from_labels, co_clustering_matrix
from bayes_gmm.inference._compare import compare_with_em
from bayes_gmm.inference._coreset import DEFAULT_CORESET_SIZE, fit_coreset_gmm
from bayes_gmm.inference._fit import METHODS, fit_gmm
from bayes_gmm.inference._membership import (
    co_clustering,
    draw_responsibilities,
    membership_probabilities,
    posterior_log_density,
    posterior_partition,
)
from bayes_gmm.inference._nutpie_compile import prepare_nutpie
from bayes_gmm.inference._partition_candidates import (
    argmax_partitions,
    candidate_partitions,
    linkage_partitions,
    sample_partitions,
)
from bayes_gmm.inference._partition_canonical import canonicalize_partitions
from bayes_gmm.inference._partition_loss import (
    PartitionEstimate,
    binder_loss,
    expected_vi_lower_bound,
    point_partition,
)
from bayes_gmm.inference._relabel import Relabelling, apply_relabelling, find_relabelling
from bayes_gmm.inference._select import CRITERIA, ONE_SE_RULE, KSelection, select_k
from bayes_gmm.inference._sparse import DEFAULT_CONCENTRATION, fit_sparse_gmm, n_clusters_distribution
from bayes_gmm.inference._start import jittered_start_values, start_values
from bayes_gmm.inference._verdict import ConvergenceVerdict, fit_verdict
from bayes_gmm.inference._waic import WAICResult, waic

__all__ = [
    "ADVI_BACKENDS",
    "AUTO_PREFERENCE",
    "CRITERIA",
    "DEFAULT_CONCENTRATION",
    "DEFAULT_CORESET_SIZE",
    "METHODS",
    "NUTS_BACKENDS",
    "ONE_SE_RULE",
    "ConvergenceVerdict",
    "ElboPlateau",
    "KSelection",
    "PartitionEstimate",
    "Relabelling",
    "WAICResult",
    "apply_relabelling",
    "argmax_partitions",
    "available_backends",
    "binder_loss",
    "candidate_partitions",
    "canonicalize_partitions",
    "co_clustering",
    "co_clustering_from_labels",
    "co_clustering_matrix",
    "compare_with_em",
    "draw_responsibilities",
    "expected_vi_lower_bound",
    "find_relabelling",
    "fit_coreset_gmm",
    "fit_gmm",
    "fit_sparse_gmm",
    "fit_verdict",
    "jittered_start_values",
    "linkage_partitions",
    "loo_subsampled",
    "membership_probabilities",
    "n_clusters_distribution",
    "point_partition",
    "posterior_log_density",
    "posterior_partition",
    "prepare_nutpie",
    "sample_partitions",
    "select_k",
    "start_values",
    "waic",
]
