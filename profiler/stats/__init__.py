"""Every statistic the profiler computes, each once (a room: one module per kind, every name
re-exported here, so callers import ``profiler.stats``).

Summaries (mean, spread, percentiles), Student's t (its tail, quantile and Welch's test), the
interval of a mean whose samples may be autocorrelated (AR(1) effective sample size), normal
tests on proportions (two-proportion, McNemar, the sample size that would resolve a difference),
the Wilson interval, intervals of a difference of proportions (paired and unpaired) and the
equivalence test (TOST) read from them, trend tests (Mann-Kendall, Theil-Sen) and least squares with its intervals,
including the inverse-prediction (calibration) interval of x from a new y, and the half-width of a
sum of an estimated (Student's t) part and a known part; how often a cost with an interval fits in
a budget (answers per battery charge).

Pure Python plus numpy, no SciPy: SciPy is a heavy install on a Raspberry Pi, and the few special
functions needed here (the incomplete beta function, the normal tail via ``math.erfc``) are short.
The standard library's ``statistics`` is not used for mean and stdev because ours must answer NaN
and 0 for too few samples (as llama-bench reports them) where it raises.
"""

from profiler.stats.budget import (  # noqa: F401
    FitsInBudget,
    fits_in_budget,
    weighted_sum_half_width,
)
from profiler.stats.constants import (  # noqa: F401
    ALPHA,
    Z_80,
    Z_90,
    Z_90_ONE_SIDED,
    Z_95,
)
from profiler.stats.perplexity import (  # noqa: F401
    cluster_mean_stderr,
    mean_and_stderr,
    mean_covariance,
    mean_stderr_from_sums,
    perplexity_and_stderr,
)
from profiler.stats.proportions import (  # noqa: F401
    equivalent,
    mcnemar_p,
    mean_difference_interval,
    mean_difference_p,
    normal_p,
    paired_difference_interval,
    tasks_to_resolve,
    tasks_to_show_equivalence,
    two_proportion_difference_interval,
    two_proportion_p,
    wilson_interval,
)
from profiler.stats.regression import (  # noqa: F401
    InversePrediction,
    LineFit,
    inverse_prediction,
    least_squares,
    mann_kendall_z,
    mean_response_half_width,
    theil_sen_slope,
)
from profiler.stats.student import (  # noqa: F401
    AUTOCORR_MAX_RHO,
    AUTOCORR_MIN_N,
    AUTOCORR_MIN_RHO,
    AUTOCORR_UPPER_Z,
    MeanInterval,
    ar1_variance_factor,
    betainc,
    combined_mean_ci_half_width,
    difference_half_width,
    expected_mean_ci_half_width,
    fixed_count_for_half_width,
    lag1_autocorrelation,
    mean_ci,
    mean_ci_half_width,
    mean_of_independent_half_width,
    student_t_two_sided_p,
    t_critical,
    t_plus_known_half_width,
    welch_t_test,
)
from profiler.stats.summary import (  # noqa: F401
    cv,
    geometric_mean,
    mean,
    mean_of_known,
    percentile,
    proportion_stderr,
    sorted_percentile,
    stdev,
)
