"""Helpers for the tests that run `accelerate launch` with 2 CPU processes and check what the run saved."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

LAUNCH_TIMEOUT_S = 420

# The start of a launched script that observes a run: the trainer the CLI builds ends up in `seen["trainer"]`.
CAPTURE_TRAINER = r"""
from seqgan_hf import SeqGANTrainer

seen = {"trainer": None}
_train = SeqGANTrainer.train
def _capture(self, *args, **kwargs):
    seen["trainer"] = self
    return _train(self, *args, **kwargs)
SeqGANTrainer.train = _capture
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accelerate_launch(config: Path, target: list[str], cwd: Path, deepspeed: bool = False,
                      succeed: bool = True) -> str:
    """`accelerate launch --config_file config target...` on 127.0.0.1, offline, one thread per process.

    CPU processes come from ACCELERATE_USE_CPU=1, except under DeepSpeed (it would turn DeepSpeed off; its CPU
    accelerator is selected instead). Asserts success (or failure, with `succeed=False`); returns the output."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "MASTER_ADDR": "127.0.0.1"}
    if deepspeed:
        env["DS_ACCELERATOR"] = "cpu"
        env.pop("ACCELERATE_USE_CPU", None)
    else:
        env["ACCELERATE_USE_CPU"] = "1"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
               "--main_process_port", str(free_port()), *target]
    proc = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)
    if succeed:
        assert proc.returncode == 0, f"accelerate launch failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    else:
        assert proc.returncode != 0, "the launch was expected to fail"
    return proc.stdout + proc.stderr


def assert_saved_run_loads_and_generates(output_dir: Path, trained_generator: Path, num: int = 2) -> list[int]:
    """The saved generator loads with the Auto class, equals the trained weights (`trained_generator`, a
    safetensors file) and generates; the discriminator loads from `discriminator/`. Returns the output shape."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    import seqgan_hf  # noqa: F401  (registers the paper's models)

    generator = AutoModelForCausalLM.from_pretrained(output_dir).eval()
    trained = load_file(trained_generator)
    for key, tensor in generator.state_dict().items():
        assert torch.equal(tensor, trained[key]), key
    prompt = torch.full((num, 1), generator.config.bos_token_id)
    with torch.no_grad():
        out = generator.generate(prompt, attention_mask=torch.ones_like(prompt))
    discriminator = AutoModelForSequenceClassification.from_pretrained(output_dir / "discriminator")
    assert type(discriminator).__name__ == "CNNForSequenceClassification"
    return list(out.shape)
