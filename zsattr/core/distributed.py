"""torch.distributed set-up for `torchrun --nproc_per_node N ...`.

gloo on the CPU, nccl on CUDA. Each rank draws its own P x K batch (the trainer seeds the
batch of step t on rank r with (seed, t, r)), so the effective batch is N x P x K and no two
ranks see the same draw; DistributedDataParallel averages the gradients.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    device: str


# While rank 0 builds what the ranks share (the synthetic bank: hours at `paper`), the others wait
# at a barrier; nccl's default 10-minute timeout would kill them. ZSATTR_DIST_TIMEOUT_MINUTES
# overrides it.
DEFAULT_TIMEOUT_MINUTES = 24 * 60


def timeout_from_env() -> datetime.timedelta:
    raw = os.environ.get("ZSATTR_DIST_TIMEOUT_MINUTES", str(DEFAULT_TIMEOUT_MINUTES))
    try:
        minutes = float(raw)
    except ValueError:
        minutes = -1.0
    if not minutes > 0:
        raise ValueError(f"ZSATTR_DIST_TIMEOUT_MINUTES must be a positive number of minutes, got {raw!r}")
    return datetime.timedelta(minutes=minutes)


def init_from_env(device: str = "cpu") -> DistInfo:
    """Initialise the process group when launched by torchrun; a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo(0, 1, device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    backend = "nccl" if device.startswith("cuda") else "gloo"
    torch.distributed.init_process_group(backend=backend, timeout=timeout_from_env())
    return DistInfo(rank, world_size, device)


def shutdown(info: DistInfo) -> None:
    if info.world_size > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
