"""Helpers for the processes a run or a shard starts."""

from __future__ import annotations

import ctypes


def die_with_parent() -> None:
    """A pool process ends when the run that started it is killed (Linux), rather than finishing
    its file beside the next run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):  # not Linux: the transaction-set keys still keep the store whole
        pass
