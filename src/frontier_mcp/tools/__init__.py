"""One module per tool; each exposes register(server)."""

from . import (
    ablate,
    benchmark,
    compile,
    experiment,
    history,
    job_status,
    leaderboard,
    propose_pairing,
    record_result,
    write_crate,
)

ALL_TOOLS = [
    propose_pairing.register,
    write_crate.register,
    compile.register,
    benchmark.register,
    job_status.register,
    record_result.register,
    history.register,
    experiment.register,
    leaderboard.register,
    ablate.register,
]
