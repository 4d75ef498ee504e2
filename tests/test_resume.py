"""Checkpoint and resume: a training subprocess is SIGKILLed, resumed, and must end bitwise where an uninterrupted
run ends (same seed, CPU, deterministic kernels).

Schedule of the child (14 training units): 8 MLE batches (2 epochs of 4), 2 discriminator pretraining rounds,
4 adversarial iterations; the delayed rollout policy and the moving-average baseline are on, so their state must
survive the kill too. The child pauses at the end of a chosen unit (before that unit's checkpoint is written)
and the test kills it there with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

CHILD_TIMEOUT_S = 240
MAX_STEPS = 14

CHILD = r"""
import json, os, sys, time
from pathlib import Path
import torch
from safetensors.torch import save_file
from transformers import TrainerCallback, set_seed
from seqgan_hf import (CNNDiscriminatorConfig, CNNForSequenceClassification, LSTMConfig, LSTMForCausalLM,
                       OracleEvaluator, OracleTask, SeqGANConfig, SeqGANTrainer)

out, mode, save_steps, pause_at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)

class PauseAt(TrainerCallback):
    # Stands still at the end of unit `pause_at` (its checkpoint not yet written) until the test kills us.
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == pause_at:
            (out / "paused").write_text(str(state.global_step))
            time.sleep(600)

set_seed(0)
task = OracleTask.create(seed=3, num_train=32, num_test=16, sequence_length=6, vocab_size=24,
                         embedding_dim=8, hidden_dim=8)
generator = LSTMForCausalLM(LSTMConfig(vocab_size=24, embedding_dim=8, hidden_dim=8, sequence_length=6))
discriminator = CNNForSequenceClassification(CNNDiscriminatorConfig(
    vocab_size=24, embedding_dim=8, filter_sizes=[1, 2, 3], num_filters=[4, 4, 4], num_labels=2))
args = SeqGANConfig(
    output_dir=str(out / "run"), sequence_length=6, per_device_train_batch_size=8, mle_epochs=2,
    discriminator_pretrain_rounds=2, discriminator_pretrain_epochs=1, num_negatives=16, adversarial_iterations=4,
    d_steps=1, d_epochs=2, rollout_num=2, discriminator_batch_size=8, rollout_policy="delayed",
    reward_baseline="moving_average", disable_tqdm=True, seed=0, learning_rate=0.01,
    discriminator_learning_rate=0.01, logging_steps=1, report_to="none",
    save_strategy="steps" if save_steps else "no", save_steps=max(save_steps, 1),
)
trainer = SeqGANTrainer(model=generator, discriminator=discriminator, args=args, train_dataset=task.train_dataset(),
                        evaluator=OracleEvaluator(task, num_samples=32),
                        callbacks=[PauseAt()] if pause_at else None)
trainer.train(resume_from_checkpoint=True if mode == "resume" else None)

def state(model):
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

save_file(state(trainer.model), out / "generator.safetensors")
save_file(state(trainer.discriminator), out / "discriminator.safetensors")
save_file(state(trainer.algorithm.rollout_model), out / "rollout.safetensors")
losses = [e["adversarial/g_loss"] for e in trainer.state.log_history if "adversarial/g_loss" in e]
(out / "result.json").write_text(json.dumps({"global_step": trainer.state.global_step, "g_losses": losses,
                                             "phase_metrics": trainer.phase_metrics}))
"""


def _run(workdir: Path, mode: str, save_steps: int = 0, pause_at: int = 0) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(workdir), mode, str(save_steps), str(pause_at)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _finish(proc: subprocess.Popen) -> None:
    output, _ = proc.communicate(timeout=CHILD_TIMEOUT_S)
    assert proc.returncode == 0, output[-5000:]


def _kill_when_paused(proc: subprocess.Popen, workdir: Path) -> None:
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while not (workdir / "paused").exists():
        if proc.poll() is not None:
            pytest.fail(f"child exited ({proc.returncode}) before pausing:\n{proc.stdout.read()[-5000:]}")
        assert time.monotonic() < deadline, "child never reached the pause point"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run (no checkpoints)."""
    workdir = tmp_path_factory.mktemp("reference")
    _finish(_run(workdir, "full"))
    return workdir


def _assert_bitwise_equal(resumed: Path, reference: Path) -> None:
    for name in ("generator", "discriminator", "rollout"):
        actual, expected = load_file(resumed / f"{name}.safetensors"), load_file(reference / f"{name}.safetensors")
        assert actual.keys() == expected.keys()
        for key, tensor in expected.items():
            assert torch.equal(actual[key], tensor), f"{name}.{key} differs from the uninterrupted run"
    got, want = json.loads((resumed / "result.json").read_text()), json.loads((reference / "result.json").read_text())
    assert got["global_step"] == want["global_step"] == MAX_STEPS
    assert got["g_losses"] == want["g_losses"]  # the log history survives too: same losses, same count
    assert got["phase_metrics"] == want["phase_metrics"]


def test_sigkill_mid_adversarial_then_resume_is_bitwise_identical(tmp_path: Path, reference: Path) -> None:
    workdir = tmp_path / "run"
    # Checkpoint after every unit; killed at the end of adversarial iteration 2 (unit 12), before checkpoint-12.
    proc = _run(workdir, "kill", save_steps=1, pause_at=12)
    _kill_when_paused(proc, workdir)
    checkpoints = sorted(p.name for p in (workdir / "run").glob("checkpoint-*"))
    assert "checkpoint-11" in checkpoints and "checkpoint-12" not in checkpoints
    last = workdir / "run" / "checkpoint-11"
    # What a checkpoint holds: both models (loadable as models), the SeqGAN state, per-process RNGs.
    for name in ("model.safetensors", "config.json", "lstm.py", "discriminator/model.safetensors",
                 "discriminator/cnn.py", "seqgan_state.pt", "rng_state_0.pth", "trainer_state.json"):
        assert (last / name).exists(), name
    state = torch.load(last / "seqgan_state.pt", weights_only=True)
    assert state["phase"] == "adversarial" and state["global_step"] == 11
    assert state["rollout_model"] is not None and state["reward_baseline"] is not None
    assert state["optimizer"]["state"] and state["discriminator_optimizer"]["state"] and state["mle_optimizer"]["state"]

    _finish(_run(workdir, "resume", save_steps=1))
    _assert_bitwise_equal(workdir, reference)


def test_sigkill_after_phase_boundary_resumes_from_mid_mle_checkpoint(tmp_path: Path, reference: Path) -> None:
    workdir = tmp_path / "run"
    # Checkpoints at units 6 (MLE epoch 2, batch 2 of 4) and 12; killed at the end of unit 11 (adversarial), so the
    # resumed run replays half an MLE epoch, then crosses MLE -> D pretraining -> adversarial.
    proc = _run(workdir, "kill", save_steps=6, pause_at=11)
    _kill_when_paused(proc, workdir)
    assert sorted(p.name for p in (workdir / "run").glob("checkpoint-*")) == ["checkpoint-6"]
    assert torch.load(workdir / "run" / "checkpoint-6" / "seqgan_state.pt", weights_only=True)["phase"] == "mle"

    _finish(_run(workdir, "resume", save_steps=6))
    _assert_bitwise_equal(workdir, reference)


def test_resume_without_checkpoint_says_what_to_do(tmp_path: Path) -> None:
    import datasets

    from seqgan_hf import SeqGANTrainer
    from tests.builders import quick_config, tiny_cnn, tiny_lstm

    data = datasets.Dataset.from_dict({"input_ids": [[1, 2, 3, 4, 5, 6]] * 8})
    trainer = SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), args=quick_config(tmp_path),
                            train_dataset=data)
    with pytest.raises(ValueError, match="holds no checkpoint"):
        trainer.train(resume_from_checkpoint=True)
    with pytest.raises(ValueError, match="not a SeqGANTrainer checkpoint"):
        trainer.train(resume_from_checkpoint=str(tmp_path))


def test_resume_from_the_args_field_continues_and_can_extend_the_adversarial_phase(tmp_path: Path) -> None:
    """`seqgan-hf train ... --resume_from_checkpoint latest` sets the TrainingArguments field; train() reads it."""
    import datasets

    from seqgan_hf import SeqGANTrainer
    from tests.builders import quick_config, tiny_cnn, tiny_lstm

    data = datasets.Dataset.from_dict({"input_ids": torch.randint(1, 40, (16, 6), generator=torch.Generator().manual_seed(0)).tolist()})
    first = SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), train_dataset=data,
                          args=quick_config(tmp_path, save_strategy="steps", save_steps=2, logging_steps=1))
    first.train()
    assert first.state.global_step == 5  # 2 MLE batches, 1 D round, 2 iterations; checkpoints 2, 4 and 5 (end)
    assert (tmp_path / "out" / "checkpoint-5").is_dir()

    # A run killed while writing a checkpoint leaves only tmp-checkpoint-<step>/: never taken for a checkpoint.
    half_written = tmp_path / "out" / "tmp-checkpoint-6"
    half_written.mkdir()
    (half_written / "seqgan_state.pt").write_bytes(b"truncated")
    args = quick_config(tmp_path, save_strategy="steps", save_steps=2, logging_steps=1, adversarial_iterations=4,
                        resume_from_checkpoint="latest")
    second = SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), train_dataset=data, args=args)
    restored = {k: v.clone() for k, v in first.model.state_dict().items()}
    g_losses = []
    original = second.algorithm.generator_step

    def counting_step():
        g_losses.append(second.state.global_step)
        if len(g_losses) == 1:  # the weights it starts from are the checkpoint's, not a fresh init
            for key, value in second.model.state_dict().items():
                assert torch.equal(value, restored[key]), key
        original()

    second.algorithm.generator_step = counting_step
    second.train()
    assert g_losses == [5, 6]  # only the 2 new iterations ran, in the adversarial phase
    assert second.state.global_step == 7
    assert not half_written.exists() and (tmp_path / "out" / "checkpoint-6").is_dir()
    # The log history of the first run was restored and continued.
    assert sum("mle/loss" in entry for entry in second.state.log_history) == 2
