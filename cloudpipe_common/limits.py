"""Limits both ends of a gRPC connection agree on."""

from __future__ import annotations

# Largest gRPC message sent or received (a batch submit, a job with its output).
MAX_MESSAGE_BYTES = 256 << 20
# Most jobs one Submit may carry (the server refuses more before converting any; the
# gateway before parsing any).
MAX_JOBS_PER_SUBMIT = 10_000
