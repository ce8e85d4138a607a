"""``--device cuda:0 cuda:1`` (or ``cpu cpu``): one process per device, started by torch's elastic launcher, the
API behind torchrun, so the processes are exactly those ``torchrun --nproc-per-node N`` would start.

Each process runs the same command line; it finds its own device in the list by its ``LOCAL_RANK``. A signal to
this process reaches every worker (the launcher forwards it), and the exit status is the first failed worker's.
"""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Sequence

from .devices import check_devices


def launch(command: Sequence[str], devices: Sequence[str], timeout: float) -> int:
    """Run ``command`` once per device on this machine and wait; returns the exit status for the whole."""
    check_devices(devices)
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    for name in list(logging.root.manager.loggerDict):  # each sets its own level: quiet them one by one
        if name.startswith(("torch.distributed.elastic", "torch.distributed.launcher")):
            logging.getLogger(name).setLevel(logging.CRITICAL)  # the workers say what went wrong themselves
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=len(devices), run_id=uuid.uuid4().hex,
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.1,
                          rdzv_configs={"join_timeout": timeout})
    try:
        elastic_launch(config, command[0])(*command[1:])
    except ChildFailedError as failed:
        rank, failure = failed.get_first_failure()
        if failure.exitcode < 0:  # killed by a signal: it could not say so itself
            sys.stderr.write(f"error: process {rank} was killed by signal {-failure.exitcode}, the others were "
                             "stopped; run the same command to go on from the last saved state\n")
            return 128 - failure.exitcode
        return failure.exitcode
    except SignalException as stop:
        return 128 + int(stop.sigval)
    return 0
