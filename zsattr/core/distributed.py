"""torch.distributed set-up for `torchrun --nproc_per_node N ...`.

gloo on the CPU, nccl on CUDA. Each rank draws its own P x K batch (the trainer seeds the
batch of step t on rank r with (seed, t, r)), so the effective batch is N x P x K and no two
ranks see the same draw; DistributedDataParallel averages the gradients.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    device: str


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
    torch.distributed.init_process_group(backend=backend)
    return DistInfo(rank, world_size, device)


def shutdown(info: DistInfo) -> None:
    if info.world_size > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
