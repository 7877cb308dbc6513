# Reference values from R's mclust, stored as test fixtures for bayes_gmm.
#
# What it produces (all in tests/data/mclust/):
#   iris.csv, diabetes.csv      data sets that the repository did not hold yet (faithful and acidity are
#                               read from tests/data/faithful.csv and tests/data/acidity.csv, after checking
#                               that they equal R's datasets::faithful and mclust::acidity)
#   mclust_fits_<data>.json     for every covariance model (the 14 multivariate ones, or "E"/"V" in 1-D) and
#                               G = 1..4:
#                                 * "fit":   Mclust(data, G = g, modelNames = m) with mclust's defaults:
#                                            loglik, bic (mclust's sign: 2 logL - p log n), icl, df, pro,
#                                            mean (K x D) and sigma (K x D x D); NULL/NA fits are marked
#                                            status = "failed".
#                                 * "tight": me() restarted from the Mclust fit's z with a much tighter EM
#                                            tolerance (see TIGHT below), so that its parameters are a fixed
#                                            point of the M-step up to ~1e-6 (mclust's default EM stops at a
#                                            relative logL change of 1e-5, which can leave the parameters far
#                                            from convergence: VVE on faithful, G = 3, gains 3.3 logL units).
#                                 * "mstep": estep() with the Mclust fit's parameters followed by one mstep()
#                                            (inner iterations of the iterative models to 1e-13): mclust's
#                                            M-step applied to known responsibilities.
#                               plus mclustBIC(data, G = 1:4): the full BIC table and its top 3 (model, G).
#   mclust_nparams.json         nMclustParams(model, d, G) for the 14 models and E/V, d = 1..6, G = 1..9
#                               (NA where mclust raises an error).
#
# Ran with R 4.2.2 and mclust 6.0.0 (Debian packages r-base 4.2.2, r-cran-mclust 6.0.0,
# r-cran-jsonlite 1.8.4), see "meta" in the JSON files for the exact versions of the last run.
#
# Rerun from the repository root:
#   Rscript tests/data/mclust/make_mclust_reference.R
# (Debian/Ubuntu: apt-get install r-cran-mclust r-cran-jsonlite). Runs in well under a minute.

suppressPackageStartupMessages({
  library(mclust)
  library(jsonlite)
})

out_dir <- file.path("tests", "data", "mclust")
if (!dir.exists(out_dir)) stop("run from the repository root")

MODELS <- c("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE",
            "VEE", "EVE", "VVE", "EEV", "VEV", "EVV", "VVV")
MODELS_1D <- c("E", "V")
GS <- 1:4
TIGHT <- emControl(tol = c(1e-13, 1e-13), itmax = c(50000L, 20000L))
MSTEP_CONTROL <- emControl(tol = c(1e-5, 1e-13), itmax = c(.Machine$integer.max, 20000L))

meta <- list(
  R_version = R.version.string,
  mclust_version = as.character(packageVersion("mclust")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  created = format(Sys.time(), "%Y-%m-%d", tz = "UTC"),
  default_emControl = emControl()[c("eps", "tol", "itmax")],
  tight_emControl = TIGHT[c("eps", "tol", "itmax")],
  mstep_emControl = MSTEP_CONTROL[c("eps", "tol", "itmax")],
  mclust_options_hcUse = mclust.options("hcUse"),
  note = paste("sigma is stored as K x D x D (mclust: D x D x K); mean as K x D;",
               "bic has mclust's sign (2 logL - df log n, higher is better)")
)

# ---- data sets ---------------------------------------------------------------------------------
faithful_repo <- read.csv(file.path("tests", "data", "faithful.csv"))
stopifnot(identical(dim(faithful_repo), dim(datasets::faithful)),
          isTRUE(all.equal(as.matrix(faithful_repo), as.matrix(datasets::faithful),
                           tolerance = 0, check.attributes = FALSE)))
acidity_repo <- read.csv(file.path("tests", "data", "acidity.csv"))
acidity_matches_mclust <- isTRUE(all.equal(acidity_repo$log_acidity, as.numeric(mclust::acidity),
                                           tolerance = 1e-12, check.attributes = FALSE))
iris4 <- datasets::iris[, 1:4]
write.csv(iris4, file.path(out_dir, "iris.csv"), row.names = FALSE)
diabetes3 <- mclust::diabetes[, c("glucose", "insulin", "sspg")]
write.csv(diabetes3, file.path(out_dir, "diabetes.csv"), row.names = FALSE)
# read back what we wrote, so that R fits exactly the numbers that the Python tests read
iris4 <- read.csv(file.path(out_dir, "iris.csv"))
diabetes3 <- read.csv(file.path(out_dir, "diabetes.csv"))

datasets_list <- list(
  faithful = list(x = as.matrix(datasets::faithful), csv = "faithful.csv",
                  source = "R datasets::faithful (identical to tests/data/faithful.csv)"),
  iris = list(x = as.matrix(iris4), csv = "mclust/iris.csv",
              source = "R datasets::iris[, 1:4]"),
  diabetes = list(x = as.matrix(diabetes3), csv = "mclust/diabetes.csv",
                  source = "R mclust::diabetes[, c('glucose', 'insulin', 'sspg')]"),
  acidity = list(x = as.matrix(acidity_repo$log_acidity), csv = "acidity.csv",
                 source = paste0("tests/data/acidity.csv (equals mclust::acidity: ",
                                 acidity_matches_mclust, ")"))
)

# ---- helpers -------------------------------------------------------------------------------------
sigma_kdd <- function(params, d, G) {
  # K x D x D array from mclust's variance (D x D x K, or a 1-D variance vector)
  v <- params$variance
  if (d == 1) {
    s2 <- rep_len(v$sigmasq, G)
    return(array(s2, c(G, 1, 1)))
  }
  aperm(array(v$sigma, c(d, d, G)), c(3, 1, 2))
}
mean_kd <- function(params, d, G) matrix(t(matrix(params$mean, d, G)), G, d)

params_list <- function(params, d, G) {
  list(pro = I(as.numeric(params$pro)), mean = mean_kd(params, d, G),  # I(): keep an array for G = 1
       sigma = sigma_kdd(params, d, G))
}

e_step <- function(x, p) {
  # responsibilities from pro, mean (K x D), sigma (K x D x D), computed on the log scale
  G <- length(p$pro)
  logd <- sapply(seq_len(G), function(k)
    log(p$pro[k]) + mclust::dmvnorm(x, mean = p$mean[k, ], sigma = matrix(p$sigma[k, , ], ncol(x)),
                                    log = TRUE))
  logd <- matrix(logd, nrow(x), G)
  m <- apply(logd, 1, max)
  z <- exp(logd - m)
  z / rowSums(z)
}

capture <- function(expr) {
  warns <- character(0)
  value <- withCallingHandlers(
    tryCatch(expr, error = function(e) structure(list(msg = conditionMessage(e)), class = "fit_error")),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  list(value = value, warnings = unique(warns))
}

one_fit <- function(x, model, g) {
  n <- nrow(x); d <- ncol(x)
  res <- list(model = model, G = g)
  cf <- capture(Mclust(x, G = g, modelNames = model, verbose = FALSE))
  fit <- cf$value
  res$warnings <- cf$warnings
  if (is.null(fit) || inherits(fit, "fit_error") || is.na(fit$loglik)) {
    res$status <- "failed"
    if (inherits(fit, "fit_error")) res$error <- fit$msg
    return(res)
  }
  res$status <- "ok"
  res$fit <- c(list(loglik = fit$loglik, bic = fit$bic, icl = fit$icl, df = fit$df),
               params_list(fit$parameters, d, g))
  # tight EM restarted from the Mclust solution
  ct <- capture(me(x, modelName = model, z = fit$z, control = TIGHT, warn = TRUE))
  tf <- ct$value
  if (!inherits(tf, "fit_error") && !is.na(tf$loglik)) {
    info <- attr(tf, "info")
    res$tight <- c(list(loglik = tf$loglik,
                        iterations = as.numeric(info[1]), error = as.numeric(info[2]),
                        returnCode = attr(tf, "returnCode"), warnings = ct$warnings),
                   params_list(tf$parameters, d, g))
  } else {
    res$tight <- list(status = "failed", warnings = ct$warnings)
  }
  # one E-step with the Mclust parameters, then mclust's M-step
  # (computed here from pro/mean/sigma: estep() needs the model-specific decomposition, absent for G = 1)
  z <- e_step(x, params_list(fit$parameters, d, g))
  cm <- capture(mstep(x, modelName = model, z = z, control = MSTEP_CONTROL, warn = TRUE))
  ms <- cm$value
  if (!inherits(ms, "fit_error") && !anyNA(ms$parameters$pro)) {
    res$mstep <- c(list(warnings = cm$warnings), params_list(ms$parameters, d, g))
  } else {
    res$mstep <- list(status = "failed", warnings = cm$warnings)
  }
  res
}

# ---- fits ----------------------------------------------------------------------------------------
for (name in names(datasets_list)) {
  ds <- datasets_list[[name]]
  x <- ds$x
  d <- ncol(x)
  models <- if (d == 1) MODELS_1D else MODELS
  fits <- list()
  for (m in models) for (g in GS) fits[[length(fits) + 1]] <- one_fit(x, m, g)
  bic <- suppressWarnings(mclustBIC(x, G = GS, modelNames = models, verbose = FALSE))
  bic_table <- lapply(models, function(m) as.numeric(bic[, m]))
  names(bic_table) <- models
  top <- summary(bic, x, G = GS)  # summary.mclustBIC: best three
  top3_names <- names(attr(top, "bestBICvalues"))
  top3 <- lapply(top3_names, function(s) {
    parts <- strsplit(s, ",")[[1]]
    list(model = parts[1], G = as.integer(parts[2]), bic = as.numeric(attr(top, "bestBICvalues")[s]))
  })
  out <- list(meta = meta, dataset = name, source = ds$source,
              csv = ds$csv, n = nrow(x), d = d, columns = colnames(x),
              models = models, G = GS, fits = fits,
              mclustBIC = list(G = GS, table = bic_table, top3 = top3))
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = FALSE),
             file.path(out_dir, paste0("mclust_fits_", name, ".json")))
  cat(name, ": ", sum(vapply(fits, function(f) f$status == "ok", TRUE)), "/", length(fits), " fits ok\n",
      sep = "")
}

# ---- held-out data sets: every model, G = 1..6, and mclust's hierarchical starts ---------------------
# Data sets that no other test uses, of different sizes and dimensions, so that the EM starts are checked on
# data they were not tuned to. For each: the data as CSV (read back, so that R fits exactly what Python reads)
# and mclust_hc_fits_<data>.json with
#   * "fits":  Mclust(x, G = g, modelNames = m) for the 14 models (E, V in 1-D) and G = 1..6: loglik, bic, df,
#              icl, or status = "failed" where mclust returns no fit;
#   * "start": the partitions mclust starts EM from, one 1-based label vector per G ("classes"): its
#              hierarchical clustering hclass(hc(x, modelName = "VVV", use = "SVD"), G) (mclust's defaults,
#              hcModelName and hcUse), or in 1-D its quantile classes qclass(x, G);
#   * "subset_rows": for data with more than mclust.options("subset") = 2000 rows, the 0-based rows of the
#              random subset (set.seed(SUBSET_SEED)) that mclust's hierarchical start runs on (passed to
#              Mclust as initialization = list(subset = ...)); "start" is then the clustering of those rows.
HELD_OUT_GS <- 1:6
SUBSET_SEED <- 2024L
held_out <- list(
  usarrests = list(x = datasets::USArrests, source = "R datasets::USArrests (50 US states, 1973)"),
  swiss = list(x = datasets::swiss, source = "R datasets::swiss (47 French-speaking Swiss provinces, 1888)"),
  airquality = list(x = na.omit(datasets::airquality[, c("Ozone", "Solar.R", "Wind", "Temp")]),
                    source = "R datasets::airquality, complete cases of Ozone, Solar.R, Wind, Temp"),
  quakes = list(x = datasets::quakes[, c("lat", "long", "depth", "mag")],
                source = "R datasets::quakes[, c('lat', 'long', 'depth', 'mag')] (1000 Fiji earthquakes)"),
  crabs = list(x = MASS::crabs[, c("FL", "RW", "CL", "CW", "BD")],
               source = "R MASS::crabs, the five measurements (Campbell & Mahon 1974)"),
  geyser = list(x = MASS::geyser[, c("waiting", "duration")],
                source = "R MASS::geyser (Azzalini & Bowman 1990; 42 duplicated rows)"),
  penguins = list(x = na.omit(as.data.frame(palmerpenguins::penguins)[, c("bill_length_mm", "bill_depth_mm",
                                                                           "flipper_length_mm",
                                                                           "body_mass_g")]),
                  source = "R palmerpenguins::penguins, complete cases of the four measurements (Gorman et al. 2014)"),
  banknote = list(x = mclust::banknote[, -1],
                  source = "R mclust::banknote, the six measurements (Flury & Riedwyl 1988)"),
  gvhd = list(x = mclust::GvHD.control,
              source = "R mclust::GvHD.control (6809 cells, 4 markers; Brinkman et al. 2007)"),
  rivers = list(x = data.frame(log_length = log(datasets::rivers)),
                source = "R log(datasets::rivers) (lengths of 141 North American rivers, miles)")
)

for (name in names(held_out)) {
  ds <- held_out[[name]]
  csv <- paste0(name, ".csv")
  write.csv(as.data.frame(ds$x), file.path(out_dir, csv), row.names = FALSE)
  x <- as.matrix(read.csv(file.path(out_dir, csv)))
  n <- nrow(x); d <- ncol(x)
  models <- if (d == 1) MODELS_1D else MODELS
  init <- NULL
  subset_rows <- NULL
  if (n > mclust.options("subset")) {
    set.seed(SUBSET_SEED)
    subset_rows <- sort(sample.int(n, mclust.options("subset")))
    init <- list(subset = subset_rows)
  }
  fits <- list()
  for (m in models) for (g in HELD_OUT_GS) {
    cf <- capture(if (is.null(init)) Mclust(x, G = g, modelNames = m, verbose = FALSE)
                  else Mclust(x, G = g, modelNames = m, initialization = init, verbose = FALSE))
    fit <- cf$value
    res <- list(model = m, G = g, warnings = cf$warnings)
    if (is.null(fit) || inherits(fit, "fit_error") || is.na(fit$loglik)) {
      res$status <- "failed"
      if (inherits(fit, "fit_error")) res$error <- fit$msg
    } else {
      res$status <- "ok"
      res$fit <- list(loglik = fit$loglik, bic = fit$bic, icl = fit$icl, df = fit$df)
    }
    fits[[length(fits) + 1]] <- res
  }
  # mclust's start: the hierarchical clustering (multivariate) or the quantile classes (one feature)
  rows <- if (is.null(subset_rows)) seq_len(n) else subset_rows
  starts <- if (d > 1) hclass(hc(x[rows, ], modelName = "VVV", use = "SVD"), HELD_OUT_GS)
            else sapply(HELD_OUT_GS, function(g) mclust:::qclass(x[rows, 1], g))
  start_classes <- lapply(seq_along(HELD_OUT_GS), function(i) I(as.integer(starts[, i])))
  out <- list(meta = meta, dataset = name, source = ds$source, csv = paste0("mclust/", csv), n = n, d = d,
              columns = colnames(x), models = models, G = HELD_OUT_GS, fits = fits,
              start = list(method = if (d > 1) "hclass(hc(x, modelName = 'VVV', use = 'SVD'), G)" else "qclass(x, G)",
                           classes = start_classes),
              subset_rows = if (is.null(subset_rows)) NULL else I(subset_rows - 1L))
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = FALSE),
             file.path(out_dir, paste0("mclust_hc_fits_", name, ".json")))
  cat(name, " (", n, " x ", d, "): ", sum(vapply(fits, function(f) f$status == "ok", TRUE)), "/",
      length(fits), " fits ok\n", sep = "")
}

# ---- number of parameters -----------------------------------------------------------------------
np_rows <- list()
for (m in c(MODELS_1D, MODELS)) for (d in 1:6) for (g in 1:9) {
  v <- tryCatch(nMclustParams(m, d, g), error = function(e) NA)
  np_rows[[length(np_rows) + 1]] <- list(model = m, d = d, G = g, nparams = v)
}
writeLines(toJSON(list(meta = meta[c("R_version", "mclust_version", "created")],
                       note = "nMclustParams(model, d, G): (G-1) mixing proportions + G*d means + covariance",
                       table = np_rows),
                  auto_unbox = TRUE, digits = NA, na = "null"),
           file.path(out_dir, "mclust_nparams.json"))
cat("done\n")
