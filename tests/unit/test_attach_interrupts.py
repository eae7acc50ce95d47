"""The attach command's SIGINT handler: a Ctrl-C that arrives once the attachment has
ended (the job ended as it was typed) does nothing, where Python's default handler
would raise KeyboardInterrupt and click would end the command "Aborted!" with exit 1
instead of the job's code."""

from __future__ import annotations

import os
import signal
import time

from cloudpipe_sdk.cli_live import _Interrupts


def test_a_ctrl_c_after_the_attachment_ended_is_ignored() -> None:
    previous = signal.getsignal(signal.SIGINT)
    interrupts = _Interrupts(job_id=7)
    try:
        interrupts.install()
        interrupts.finish()  # the attachment ended
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs between bytecodes of this thread
        assert interrupts.count == 0
    finally:
        signal.signal(signal.SIGINT, previous)
