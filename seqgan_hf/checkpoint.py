"""Checkpoint plumbing of `SeqGANTrainer`: what a checkpoint holds, atomic writes, RNG states, non-finite guard.

A checkpoint `output_dir/checkpoint-<global_step>/` holds:

* the generator (and its tokenizer) at its root and the discriminator under `discriminator/`, exactly as
  `save_model` writes them (so a checkpoint is itself a loadable model);
* `seqgan_state.pt`: phase and position in it, both optimizers and schedulers of the generator (MLE and
  adversarial), the discriminator's optimizer and scheduler, the delayed rollout policy (if used), the moving
  reward baseline (if used), and the metrics evaluated at the end of each phase. Under FSDP2 the optimizer
  states are gathered whole from every process (keyed by parameter name) and each process takes back its shard
  on resume;
* `rng_state_<rank>.pth` for every process: Python, NumPy, torch CPU (and CUDA) RNG states and the trainer's
  own sampling / data generators. All of it is gathered to, and written by, the main process only;
* `trainer_state.json` (the Trainer's `TrainerState`, log history included).

The trainer keeps no negatives buffer: every discriminator round draws fresh negatives from G, so a checkpoint
needs none. A checkpoint is written to `tmp-checkpoint-<step>/` and renamed into place once complete, so a
process killed while saving leaves the previous checkpoint as the latest complete one.
"""

from __future__ import annotations

import os
import random
import shutil

import numpy as np
import torch

SEQGAN_STATE_NAME = "seqgan_state.pt"
TMP_PREFIX = "tmp-checkpoint-"


class NonFiniteError(RuntimeError):
    """A loss, reward or weight became NaN or infinite; raised before anything non-finite is applied or saved."""


def rng_state(generators: dict[str, torch.Generator]) -> dict:
    """This process's RNG states: Python, NumPy, torch CPU (+ CUDA) and the named torch generators."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), position, has_gauss, cached),
        "cpu": torch.random.get_rng_state(),
        "generators": {name: generator.get_state() for name, generator in generators.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict, generators: dict[str, torch.Generator]) -> None:
    """Restore what `rng_state` captured (on the process that is to continue from it)."""
    random.setstate(_as_python_state(state["python"]))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.random.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    for name, generator in generators.items():
        if name in state["generators"]:
            generator.set_state(state["generators"][name].to(generator.get_state().device))


def _as_python_state(state):
    # torch.save / torch.load(weights_only=True) turns the tuple of ints into lists: random.setstate needs tuples.
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def rng_file(checkpoint_dir: str, process_index: int) -> str:
    return os.path.join(checkpoint_dir, f"rng_state_{process_index}.pth")


def temporary_dir(output_dir: str, step: int) -> str:
    return os.path.join(output_dir, f"{TMP_PREFIX}{step}")


def finalize(tmp_dir: str, final_dir: str) -> None:
    """Move a completely written checkpoint into place (atomic rename on one filesystem)."""
    if os.path.isdir(final_dir):
        shutil.rmtree(final_dir)
    os.replace(tmp_dir, final_dir)


def remove_stale_temporaries(output_dir: str) -> None:
    """Remove half-written checkpoints left by a killed run."""
    if not os.path.isdir(output_dir):
        return
    for name in os.listdir(output_dir):
        if name.startswith(TMP_PREFIX):
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)


def non_finite_parameters(module: torch.nn.Module) -> list[str]:
    """Names of parameters (and floating buffers) holding a NaN or an infinity."""
    bad = []
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad.append(name)
    return bad


def load_state(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
