"""Limits both ends of a gRPC connection agree on."""

from __future__ import annotations

# Largest gRPC message sent or received (a batch submit, a job with its output).
MAX_MESSAGE_BYTES = 256 << 20
# Most jobs one Submit may carry (the server refuses more before converting any; the
# gateway before parsing any).
MAX_JOBS_PER_SUBMIT = 10_000
# One job's stdin (a function job's pickle): the server refuses more.
MAX_STDIN_BYTES = 64 << 20
# The server's default caps on a job's output, per stream, and on its result: with a
# full stdin, a job's whole answer stays well inside one message (job_answer_bytes).
DEFAULT_OUTPUT_CAP_BYTES = 32 << 20
DEFAULT_RESULT_CAP_BYTES = 64 << 20
# What a job's full answer (Get) carries besides stdin, stdout, stderr and result, at
# most: the command and environment (1 MiB), tags, dependencies, volumes, reasons and
# the attempt history, with room to spare. The output and result caps must leave it.
JOB_ANSWER_OVERHEAD_BYTES = 4 << 20


def job_answer_bytes(output_cap_bytes: int, result_cap_bytes: int) -> int:
    """The largest full answer for one job under these caps: stdin, stdout and stderr
    each at the cap (the truncation note is within the overhead), and the result at its
    cap, or at the output cap when it is the job's stdout (the default result source)."""
    result = max(result_cap_bytes, output_cap_bytes)
    return MAX_STDIN_BYTES + 2 * output_cap_bytes + result + JOB_ANSWER_OVERHEAD_BYTES
