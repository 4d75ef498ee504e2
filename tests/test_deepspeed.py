"""SeqGAN under DeepSpeed ZeRO-2: `accelerate launch` with 2 CPU processes (gloo), one engine per model.

DeepSpeed is an optional extra of the package (`pip install seqgan_hf[deepspeed]`) and part of the `test` extra, so
`make test` installs it and runs these tests; on a machine without a GPU it runs on its CPU accelerator (gloo; the
first run compiles DeepSpeed's small shared-memory op with ninja, about a minute).

One DeepSpeed launch of the CLI on recipes/oracle_smoke.yaml (with a non-default MLE learning rate, a linear
schedule and a gradient clip that bites, so that G's phase-switched optimizer is exercised), one DDP launch with
the same settings as the reference, and resumes from a mid-MLE and a phase-boundary checkpoint.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.launch import accelerate_launch, assert_saved_run_loads_and_generates

# The test extra installs DeepSpeed: a clear ImportError at collection beats failing subprocesses.
importlib.import_module("deepspeed")

REPO = Path(__file__).resolve().parent.parent
DEEPSPEED_CONFIG = REPO / "recipes" / "accelerate" / "deepspeed_zero2_cpu_2proc.yaml"
DDP_CONFIG = REPO / "recipes" / "accelerate" / "cpu_2proc.yaml"
RECIPE = REPO / "recipes" / "oracle_smoke.yaml"
SETTINGS = ["--mle_learning_rate", "0.02", "--lr_scheduler_type", "linear", "--max_grad_norm", "0.5",
            "--rollout_policy", "delayed"]

# Runs the CLI on every rank and records what DeepSpeed set up there; argv[1] is the folder for the records.
RANK_SCRIPT = r"""
import json, os, sys
from pathlib import Path
from safetensors.torch import save_file
import seqgan_hf.cli as cli
from seqgan_hf import SeqGANTrainer

record, argv = Path(sys.argv[1]), sys.argv[2:]
trainers = []
original_train = SeqGANTrainer.train
def train(self, *args, **kwargs):
    trainers.append(self)
    return original_train(self, *args, **kwargs)
SeqGANTrainer.train = train
cli.main(["train", *argv])

trainer = trainers[0]
engine = trainer.model_wrapped
zero = trainer.optimizer.optimizer  # accelerate's wrapper -> DeepSpeed's ZeRO optimizer
mine = record / f"rank{trainer.args.process_index}"
mine.mkdir(parents=True)
for name, module in (("generator", trainer.model), ("discriminator", trainer.discriminator),
                     ("rollout", trainer.algorithm.rollout_model)):
    save_file({k: v.detach().clone().contiguous() for k, v in module.state_dict().items()},
              mine / f"{name}.safetensors")
(mine / "info.json").write_text(json.dumps({
    "world_size": trainer.args.world_size,
    "process_index": trainer.args.process_index,
    "engines": [type(engine).__name__, type(trainer.runtime.training_model("discriminator")).__name__],
    "zero_stage": engine.zero_optimization_stage(),
    "gradient_clipping": engine.gradient_clipping(),
    "partition_numel": sum(p.numel() for p in zero.single_partition_of_fp32_groups),
    "parameter_numel": sum(p.numel() for p in trainer.model.parameters()),
    "global_step": trainer.state.global_step,
    "max_steps": trainer.state.max_steps,
}))
"""


def _train_args(output_dir: Path, *extra: str) -> list[str]:
    return ["--config", str(RECIPE), "--output_dir", str(output_dir), "--ddp_backend", "gloo", *SETTINGS, *extra]


@pytest.fixture(scope="module")
def deepspeed_run(tmp_path_factory) -> tuple[Path, Path]:
    """(output_dir, per-rank records) of the DeepSpeed ZeRO-2 launch."""
    work = tmp_path_factory.mktemp("zero2")
    script = work / "rank_script.py"
    script.write_text(RANK_SCRIPT)
    accelerate_launch(DEEPSPEED_CONFIG, [str(script), str(work / "record"), *_train_args(work / "out")], work, deepspeed=True)
    return work / "out", work / "record"


@pytest.fixture(scope="module")
def ddp_output(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("ddp_reference")
    accelerate_launch(DDP_CONFIG, ["-m", "seqgan_hf.cli", "train", *_train_args(work / "out")], work, deepspeed=False)
    return work / "out"


def _info(record: Path, rank: int) -> dict:
    return json.loads((record / f"rank{rank}" / "info.json").read_text())


def _assert_same_weights(left: Path, right: Path) -> None:
    for name in ("model.safetensors", "discriminator/model.safetensors"):
        a, b = load_file(left / name), load_file(right / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}: {key}"


def test_each_model_is_a_zero2_engine_on_two_processes(deepspeed_run) -> None:
    _, record = deepspeed_run
    infos = [_info(record, rank) for rank in (0, 1)]
    assert [i["world_size"] for i in infos] == [2, 2] and [i["process_index"] for i in infos] == [0, 1]
    for info in infos:
        assert info["engines"] == ["DeepSpeedEngine", "DeepSpeedEngine"]
        assert info["zero_stage"] == 2
        assert info["gradient_clipping"] == 0.5  # max_grad_norm, not a default
        assert info["global_step"] == info["max_steps"]  # training completed
    # ZeRO-2: each process holds only its half of G's fp32 master weights and optimizer state.
    total = infos[0]["parameter_numel"]
    assert all(i["partition_numel"] < total for i in infos)
    assert sum(i["partition_numel"] for i in infos) >= total


def test_both_ranks_end_with_identical_models(deepspeed_run) -> None:
    _, record = deepspeed_run
    for name in ("generator", "discriminator", "rollout"):
        rank0, rank1 = (load_file(record / f"rank{r}" / f"{name}.safetensors") for r in (0, 1))
        for key in rank0:
            assert torch.equal(rank0[key], rank1[key]), f"{name}.{key} differs between ranks"


def test_zero2_trains_exactly_as_ddp(deepspeed_run, ddp_output) -> None:
    """fp32 on 2 processes: ZeRO-2's partitioned Adam, its clipping and G's phase-switched optimizer (MLE
    learning rate, then a fresh state for the adversarial phase) give DDP's weights, bit for bit."""
    output_dir, _ = deepspeed_run
    _assert_same_weights(output_dir, ddp_output)


@pytest.mark.parametrize("checkpoint", ["checkpoint-5", "checkpoint-10"])  # mid-MLE; end of D pretraining
def test_resume_under_zero2_is_bitwise(deepspeed_run, tmp_path, checkpoint) -> None:
    output_dir, _ = deepspeed_run
    resumed = tmp_path / "resumed"
    shutil.copytree(output_dir / checkpoint, resumed / checkpoint)
    target = ["-m", "seqgan_hf.cli", "train", *_train_args(resumed, "--resume_from_checkpoint", "latest")]
    accelerate_launch(DEEPSPEED_CONFIG, target, tmp_path, deepspeed=True)
    _assert_same_weights(resumed, output_dir)


def test_result_loads_and_generates(deepspeed_run) -> None:
    output_dir, record = deepspeed_run
    shape = assert_saved_run_loads_and_generates(output_dir, record / "rank0" / "generator.safetensors", num=2)
    assert shape[0] == 2 and shape[1] > 1


# A finite policy-gradient loss whose gradient is NaN: d sqrt(x)/dx at x = 0 is inf, times dx/dp = 0.
NAN_GRADIENT_SCRIPT = r"""
import sys
import seqgan_hf.cli as cli
from seqgan_hf.algorithm import SeqGAN

original = SeqGAN.policy_gradient_loss
def policy_gradient_loss(self, model, *args, **kwargs):
    loss = original(self, model, *args, **kwargs)
    return loss + (next(self.runtime.model("generator").parameters()).sum() * 0.0).sqrt()
SeqGAN.policy_gradient_loss = policy_gradient_loss
cli.main(["train", *sys.argv[1:]])
"""


def test_non_finite_gradient_stops_training_and_nothing_non_finite_is_saved(tmp_path) -> None:
    script = tmp_path / "nan_gradient.py"
    script.write_text(NAN_GRADIENT_SCRIPT)
    output_dir = tmp_path / "out"
    log = accelerate_launch(DEEPSPEED_CONFIG, [str(script), *_train_args(output_dir)], tmp_path, deepspeed=True, succeed=False)
    assert "NonFiniteError: Non-finite gradient norm of the policy-gradient loss" in log
    assert not (output_dir / "model.safetensors").exists()  # the final save never happened
    checkpoints = sorted(output_dir.glob("checkpoint-*"))
    assert [c.name for c in checkpoints] == ["checkpoint-10", "checkpoint-5"]  # before the adversarial phase
    for checkpoint in checkpoints:
        for name in ("model.safetensors", "discriminator/model.safetensors"):
            assert all(torch.isfinite(t).all() for t in load_file(checkpoint / name).values())
