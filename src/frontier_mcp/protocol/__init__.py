"""The benchmark protocol: plan the runs, run the harness binary in the sandbox, judge the numbers.

Protocol (the same for every optimizer, candidate included):
1. tuning: every learning rate of a log-spaced grid on the tuning seeds; the learning rate with
   the lowest median final loss wins (divergence counts as +inf);
2. evaluation: the chosen learning rate on fresh seeds, paired across optimizers by seed;
3. per problem, the candidate is compared with the best baseline by a paired Wilcoxon test on
   log losses, Holm-corrected across problems.
Baseline results depend only on the harness and the plan, so they are cached per harness version.

Modules: `suites` (what is run), `harness` (plan lines and the sandboxed harness binary),
`tuning` (one optimizer's tuning and evaluation), `timing` (time per step against Adam),
`judging` (the statistics and the verdict), `report` (the report models), `run` (a whole benchmark).
"""

from .harness import MAX_CRASH_RETRIES, Harness, HarnessError, format_line, instance_key, plan_lines
from .judging import compare_variant, indistinguishable, judge, rediscovery
from .report import BenchmarkReport, OptimizerSummary, ProblemResult, SuiteSummary, holdout_passed
from .run import Progress, benchmark, machine_info
from .suites import BASELINES, CANDIDATE, CLAIM_SUITES, PROFILE_TAUS, SUITES, ProblemSpec, Suite, log_grid
from .timing import TIMING_PAIRS, TIMING_STEPS, TIMING_WARMUP, time_against_adam
from .tuning import TRIAL_COLUMNS, run_optimizer, runs_per_optimizer, tune_with_knobs

__all__ = [
    "BASELINES", "CANDIDATE", "CLAIM_SUITES", "MAX_CRASH_RETRIES", "PROFILE_TAUS", "SUITES", "TIMING_PAIRS",
    "TIMING_STEPS", "TIMING_WARMUP", "TRIAL_COLUMNS", "BenchmarkReport", "Harness", "HarnessError",
    "OptimizerSummary",
    "ProblemResult", "ProblemSpec", "Progress", "Suite", "SuiteSummary", "benchmark",
    "compare_variant", "format_line", "holdout_passed", "indistinguishable", "instance_key", "judge",
    "log_grid", "machine_info", "plan_lines", "rediscovery", "run_optimizer", "runs_per_optimizer",
    "time_against_adam", "tune_with_knobs",
]
