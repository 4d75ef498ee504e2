"""Baselines: PG-BLEU (policy gradient with BLEU vs the training set) and MLE with a fixed update count."""

from __future__ import annotations

import pytest
import torch

from seqgan_hf import LSTMConfig, LSTMForCausalLM, OracleEvaluator, OracleTask
from seqgan_hf.baselines import PGBleuTrainer, mle_baseline_trainer, mle_continuation_dataset
from seqgan_hf.metrics import corpus_bleu
from seqgan_hf.oracle import sample_sequences
from tests.conftest import quick_config


def _generator(vocab_size=12, length=6):
    torch.manual_seed(0)
    return LSTMForCausalLM(LSTMConfig(vocab_size=vocab_size, embedding_dim=8, hidden_dim=16, sequence_length=length))


def test_pg_bleu_raises_bleu_on_a_toy_corpus(tmp_path):
    import datasets

    # Two real sequences; BLEU-2 against them is high only for samples made of their bigrams.
    real = [[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]] * 16
    generator = _generator()
    before = {name: value.clone() for name, value in generator.state_dict().items()}
    args = quick_config(tmp_path, mle_epochs=0, discriminator_pretrain_rounds=0, d_steps=0,
                        adversarial_iterations=25, rollout_num=4, per_device_train_batch_size=32,
                        learning_rate=0.05, reward_baseline="batch_mean", logging_steps=10)
    trainer = PGBleuTrainer(generator, args, train_dataset=datasets.Dataset.from_dict({"input_ids": real}),
                            bleu_max_order=2)

    def bleu():
        samples = sample_sequences(trainer.model, 256, 6, bos_token_id=0, seed=3)
        return corpus_bleu(samples.tolist(), trainer.bleu_references, max_order=2)

    start = bleu()
    trainer.train()
    assert any(not torch.equal(before[name], value) for name, value in trainer.model.state_dict().items())
    rewards = [entry["adversarial/reward_mean"] for entry in trainer.state.log_history
               if "adversarial/reward_mean" in entry]
    assert len(rewards) >= 2 and rewards[-1] > rewards[0]
    assert bleu() > start + 0.1


def test_pg_bleu_reward_is_bleu_against_training_set(tmp_path):
    import datasets

    real = [[1, 2, 3, 4, 5, 6]] * 8
    trainer = PGBleuTrainer(_generator(), quick_config(tmp_path, discriminator_pretrain_rounds=0, d_steps=0),
                            train_dataset=datasets.Dataset.from_dict({"input_ids": real}))
    scores = trainer._score(torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 7]]))
    assert scores.tolist() == pytest.approx([1.0, 0.0])


def test_pg_bleu_refuses_a_discriminator_schedule(tmp_path):
    with pytest.raises(ValueError, match="d_steps=0"):
        PGBleuTrainer(_generator(), quick_config(tmp_path), train_dataset=None)


def test_mle_baseline_runs_exactly_the_requested_updates(tmp_path):
    task = OracleTask.create(seed=0, num_train=40, num_test=32, vocab_size=12, embedding_dim=8, hidden_dim=8,
                             sequence_length=6)
    dataset = mle_continuation_dataset(task.train, num_updates=7, batch_size=8)
    assert len(dataset) == 56
    trainer = mle_baseline_trainer(_generator(), quick_config(tmp_path, eval_strategy="steps", eval_steps=3),
                                   task.train, num_updates=7, evaluator=OracleEvaluator(task, num_samples=16))
    trainer.train()
    assert trainer.state.global_step == 7
    assert [entry["step"] for entry in trainer.state.log_history if "eval_nll_oracle" in entry][:2] == [3, 6]
