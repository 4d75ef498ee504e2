"""What differs between launch setups: how weights and optimizer states are laid out across processes.

`SeqGANTrainer` runs the same loop in one process, under DDP, FSDP2 and DeepSpeed ZeRO-2; only saving and
restoring state differs, and that lives here. A run's layout is one of:

* `PLAIN` (one process or DDP): every process holds everything; `state_dict()` is the whole state.
* `FSDP2` (`fully_shard`): parameters and optimizer states are sharded DTensors. Checkpoints hold the full,
  gathered states (`torch.distributed.checkpoint.state_dict` with `full_state_dict=True`) and each process takes
  back its shard on resume, so a checkpoint loads like any other.
* `DEEPSPEED` (ZeRO-2): parameters are whole on every process, the optimizer state is partitioned. Checkpoints
  hold every process's partition in rank order; a resume needs as many processes.

Collectives: gathering and scattering states are collectives under FSDP2 and DeepSpeed, so every process must
call these functions at the same point.
"""

from __future__ import annotations

import json
import os

import torch
from torch import nn

PLAIN = "plain"
FSDP2 = "full_fsdp2"
DEEPSPEED = "deepspeed"
LAYOUT_NAMES = {FSDP2: "an FSDP2", DEEPSPEED: "a DeepSpeed", PLAIN: "a DDP or single-process"}


# ---- optimizer states ----------------------------------------------------------------------------------


def optimizer_state(model: nn.Module, optimizer, layout: str) -> dict:
    """`optimizer.state_dict()` for a checkpoint: under FSDP2 the full state (the main process receives it,
    the others an empty dict); under DeepSpeed every process's ZeRO partition, in rank order."""
    if layout == DEEPSPEED and is_deepspeed_optimizer(optimizer):
        from accelerate.utils import gather_object

        return {"deepspeed_partitions": gather_object([optimizer.state_dict()])}
    if layout != FSDP2:
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_optimizer_state(model: nn.Module, optimizer, state: dict, layout: str, world_size: int) -> None:
    """Inverse of `optimizer_state`: under FSDP2 each process takes its shard of the full state; under
    DeepSpeed its own partition (the checkpoint must come from as many processes)."""
    if layout == DEEPSPEED and is_deepspeed_optimizer(optimizer):
        partitions = state["deepspeed_partitions"]
        if len(partitions) != world_size:
            raise ValueError(
                f"The checkpoint holds DeepSpeed ZeRO optimizer partitions of {len(partitions)} processes; resume "
                f"on that many, not {world_size}."
            )
        # The fp32 master partition too (exact under bf16, where the model's own weights are rounded).
        base_optimizer(optimizer, depth=1).load_state_dict(partitions, load_from_fp32_weights=True)
        return
    if layout != FSDP2:
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def is_deepspeed_optimizer(optimizer) -> bool:
    """An optimizer that accelerate prepared into a DeepSpeed engine (its ZeRO optimizer inside)."""
    return type(optimizer).__name__ == "DeepSpeedOptimizerWrapper"


def base_optimizer(optimizer, depth: int = 2):
    """Unwrap accelerate's optimizer wrapper (depth 1: DeepSpeed's ZeRO optimizer) and DeepSpeed's (depth 2:
    the torch optimizer whose param groups DeepSpeed steps with); a plain torch optimizer as it is."""
    for _ in range(depth):
        if isinstance(optimizer, torch.optim.Optimizer) and not hasattr(optimizer, "optimizer"):
            break
        optimizer = getattr(optimizer, "optimizer", optimizer)
    return optimizer


def deepspeed_safe_globals():
    """Allow the DeepSpeed classes in a ZeRO optimizer's state_dict through `torch.load(weights_only=True)`."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return torch.serialization.safe_globals([LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address])


# ---- weights -------------------------------------------------------------------------------------------


def load_weights(model: nn.Module, folder: str, layout: str = PLAIN) -> None:
    """Load the weights `save_pretrained` wrote to `folder` into `model` in place (under FSDP2: each process
    keeps its shard of them). A peft model takes the adapter weights `save_pretrained` wrote."""
    adapter_file = os.path.join(folder, "adapter_model.safetensors")
    if hasattr(model, "peft_config") and os.path.isfile(adapter_file) and layout != FSDP2:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        result = set_peft_model_state_dict(model, load_file(adapter_file))
        unexpected = list(getattr(result, "unexpected_keys", None) or ())
        if unexpected:
            raise ValueError(f"Adapter weights in {folder} do not fit the model: unexpected {unexpected[:5]}.")
        return
    weights = read_weights(folder)
    if layout == FSDP2:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        missing, unexpected = set_model_state_dict(
            model, weights, options=StateDictOptions(full_state_dict=True, strict=False)
        )
    else:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or ())
    missing = [name for name in missing if name not in tied]
    if missing or unexpected:
        raise ValueError(f"Checkpoint weights in {folder} do not fit the model: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}.")


def read_weights(folder: str) -> dict[str, torch.Tensor]:
    """The full weights `save_pretrained` wrote to `folder` (single file or sharded safetensors)."""
    from safetensors.torch import load_file

    single = os.path.join(folder, "model.safetensors")
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.isfile(single):
        return load_file(single)
    if not os.path.isfile(index):
        raise FileNotFoundError(f"No model.safetensors(.index.json) in {folder}: the checkpoint is incomplete.")
    with open(index) as handle:
        shards = sorted(set(json.load(handle)["weight_map"].values()))
    state = {}
    for shard in shards:
        state.update(load_file(os.path.join(folder, shard)))
    return state


def full_tensor(value):
    """A DTensor (FSDP2: a sharded parameter or a value computed from one) as a whole tensor; others unchanged."""
    from torch.distributed.tensor import DTensor

    return value.full_tensor() if isinstance(value, DTensor) else value


def model_class(model: nn.Module) -> type:
    """The model's own class: FSDP2's `fully_shard` swaps in a subclass (`FSDP<Name>`) of it and `FSDPModule`."""
    from torch.distributed.fsdp import FSDPModule

    return next(cls for cls in type(model).__mro__ if not issubclass(cls, FSDPModule))


def fix_architectures(config_file: str, model: nn.Module) -> None:
    """`save_pretrained` records `type(model).__name__`, which under FSDP2 is the `FSDP<Name>` subclass."""
    if not os.path.isfile(config_file):
        return
    with open(config_file) as handle:
        config = json.load(handle)
    config["architectures"] = [model_class(model).__name__]
    with open(config_file, "w") as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
        handle.write("\n")
