"""Several processes on one run: torchrun's environment, the process group, sums across processes.

In:  the environment torchrun sets (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and the
     run's device.
Out: `rank_and_world()` → (rank, world) (0, 1 without torchrun); `start(torch, device)` → the
     device this process trains on, after joining the process group (gloo on the CPU, NCCL on
     CUDA devices, each process on the GPU of its LOCAL_RANK); `all_sum(torch, values, device)` →
     the sums of `values` (floats) over all processes; `stop(torch)`.
"""

from __future__ import annotations

import os

from ..errors import SpecError


def rank_and_world() -> tuple:
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        raise SpecError("WORLD_SIZE and RANK must be whole numbers (torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world:
        raise SpecError(f"RANK={rank} is not one of WORLD_SIZE={world} processes")
    return rank, world


def start(torch, device: str) -> str:
    import torch.distributed as td

    cuda = device.startswith("cuda")
    if cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if not td.is_initialized():
        td.init_process_group(backend="nccl" if cuda else "gloo")
    return device


def all_sum(torch, values: list, device) -> list:
    import torch.distributed as td

    t = torch.tensor(values, dtype=torch.float64, device=device)
    td.all_reduce(t, op=td.ReduceOp.SUM)
    return t.tolist()


def stop(torch) -> None:
    import torch.distributed as td

    if td.is_initialized():
        td.destroy_process_group()
