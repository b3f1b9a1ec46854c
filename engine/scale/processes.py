"""Helpers for the processes a run or a shard starts."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import sys
from multiprocessing.context import BaseContext

#: processes are forked here (Linux: each starts with what this one has loaded); elsewhere the
#: platform's safe default (spawn on macOS and Windows)
FORKS = sys.platform.startswith("linux")


def die_with_parent() -> None:
    """A pool process ends when the run that started it is killed (Linux), rather than finishing
    its file beside the next run."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):  # not Linux: the transaction-set keys still keep the store whole
        pass


def worker_count(workers: int | None) -> int:
    """The processes asked for (``--workers``), or one per core when not given."""
    return max(1, workers or os.cpu_count() or 1)


def fork_context() -> BaseContext:
    """The context processes are started with: fork where processes fork (``FORKS``: each starts
    with what this one has loaded), elsewhere the platform's safe default."""
    return multiprocessing.get_context("fork" if FORKS else None)
