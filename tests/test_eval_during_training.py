"""Evaluation during training: evaluator metrics go through `log()` into log_history and TensorBoard."""

from __future__ import annotations

import glob
import os

import pytest

from seqgan_hf import OracleEvaluator, OracleTask, SeqGANTrainer
from tests.builders import quick_config, tiny_cnn, tiny_lstm


@pytest.fixture(scope="module")
def task():
    return OracleTask.create(seed=0, num_train=32, num_test=32, vocab_size=30, embedding_dim=8, hidden_dim=8,
                             sequence_length=6)


def _trainer(tmp_path, task, **overrides):
    generator = tiny_lstm(30, sequence_length=6)
    # 4 MLE batches + 1 D round + 2 adversarial iterations = 7 training units.
    args = quick_config(tmp_path, eval_strategy="steps", eval_steps=2, logging_steps=1, **overrides)
    return SeqGANTrainer(model=generator, discriminator=tiny_cnn(30), args=args,
                         train_dataset=task.train_dataset(), evaluator=OracleEvaluator(task, num_samples=16))


def _eval_steps(log_history):
    return sorted({entry["step"] for entry in log_history if "eval_nll_oracle" in entry})


def test_periodic_evaluation_with_evaluator_only(tmp_path, task):
    trainer = _trainer(tmp_path, task)  # no eval_dataset: the evaluator alone must be enough
    trainer.train()
    steps = _eval_steps(trainer.state.log_history)
    assert {2, 4, 6} <= set(steps), steps  # every eval_steps units, through all three phases
    assert steps[-1] == trainer.state.global_step == 7  # and at the end of training
    entries = [entry for entry in trainer.state.log_history if "eval_nll_oracle" in entry]
    for entry in entries:
        assert 0 < entry["eval_nll_test"] < 10 and 0 < entry["eval_nll_oracle"] < 10
        assert entry["eval_phase"] in (1, 2, 3)
    assert {entry["eval_phase"] for entry in entries} >= {1, 3}  # MLE ends at unit 4; unit 5 is the D round
    metrics = trainer.evaluate()
    assert set(metrics) >= {"eval_nll_oracle", "eval_nll_test"}


def test_eval_metrics_reach_tensorboard(tmp_path, task):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    trainer = _trainer(tmp_path, task, report_to="tensorboard")
    trainer.train()
    files = glob.glob(os.path.join(trainer.args.output_dir, "runs", "**", "events.out.tfevents.*"), recursive=True)
    assert files, "no TensorBoard event file written"
    tags: dict[str, list[int]] = {}
    for path in files:
        accumulator = EventAccumulator(os.path.dirname(path))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            tags.setdefault(tag, []).extend(event.step for event in accumulator.Scalars(tag))
    assert "eval/nll_oracle" in tags and "eval/nll_test" in tags, sorted(tags)
    assert {2, 4, 6, 7} <= set(tags["eval/nll_oracle"])
