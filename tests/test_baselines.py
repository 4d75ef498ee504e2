"""Baselines: PG-BLEU (policy gradient with BLEU vs the training set) and MLE with a fixed update count."""

from __future__ import annotations

import pytest
import torch

from seqgan_hf import OracleEvaluator, OracleTask
from seqgan_hf.baselines import (
    PGBleuTrainer,
    mle_baseline_trainer,
    mle_continuation_dataset,
    scheduled_sampling_trainer,
)
from seqgan_hf.metrics import corpus_bleu
from seqgan_hf.oracle import sample_sequences
from tests.builders import quick_config, tiny_gpt2, tiny_lstm


def _generator(vocab_size=12, length=6):
    return tiny_lstm(vocab_size, hidden_dim=16, sequence_length=length)


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
        return corpus_bleu(samples.tolist(), trainer.reward.references, max_order=2)

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
    scores = trainer.reward(torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 7]]))
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



def test_mle_baseline_continues_on_text_rows(tmp_path):
    import datasets

    from seqgan_hf.text import build_tokenizer
    from tests.builders import CORPUS, lm_token_ids

    texts = datasets.Dataset.from_dict({"text": CORPUS[:5]})
    rows = mle_continuation_dataset(texts, num_updates=3, batch_size=4, seed=1)
    assert rows.column_names == ["text"] and len(rows) == 12
    # Shuffled whole passes: every text once in the first five rows, and again in the next five.
    assert sorted(rows["text"][:5]) == sorted(CORPUS[:5]) == sorted(rows["text"][5:10])
    tokenizer = build_tokenizer(CORPUS, "word")
    generator = tiny_lstm(sequence_length=8, **lm_token_ids(tokenizer))
    trainer = mle_baseline_trainer(generator, quick_config(tmp_path, per_device_train_batch_size=4), texts,
                                   num_updates=3, processing_class=tokenizer)
    trainer.train()
    assert trainer.state.global_step == 3

# ---- scheduled sampling -------------------------------------------------------------------------------------


def _ss_trainer(tmp_path, model, num_updates=6, **kwargs):
    task = OracleTask.create(seed=0, num_train=40, num_test=32, vocab_size=12, embedding_dim=8, hidden_dim=8,
                             sequence_length=6)
    return scheduled_sampling_trainer(model, quick_config(tmp_path), task.train, num_updates=num_updates, **kwargs)


def test_scheduled_sampling_sequential_loss_is_mle_when_nothing_is_sampled(tmp_path):
    trainer = _ss_trainer(tmp_path, _generator())
    batch = next(iter(trainer.get_train_dataloader()))
    teacher_forced = trainer.model(**batch).loss
    assert trainer._sequential_loss(trainer.model, batch, 0.0).item() == pytest.approx(teacher_forced.item(), rel=1e-5)


def test_scheduled_sampling_feeds_the_models_own_tokens_on_a_rising_schedule(tmp_path):
    generator = _generator()
    fed = []
    step = generator.step
    generator.step = lambda tokens, state: (fed.append(tokens.clone()), step(tokens, state))[1]
    trainer = _ss_trainer(tmp_path, generator, num_updates=6, sampling_probability=1.0)
    probabilities = []
    original = trainer.current_sampling_probability
    trainer.current_sampling_probability = lambda: (probabilities.append(original()), probabilities[-1])[1]
    batches = list(trainer.get_train_dataloader())
    trainer.train()
    assert probabilities == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    # The first update (probability 0) is plain teacher forcing: no recurrent steps. The last (probability 1)
    # feeds the start token, then only the model's own samples: they differ from the ground truth.
    last_inputs = batches[-1]["input_ids"]
    length = last_inputs.shape[1] - 1
    assert len(fed) == 5 * length
    last_fed = torch.stack(fed[-length:], dim=1)
    assert torch.equal(last_fed[:, 0], last_inputs[:, 0])
    assert (last_fed[:, 1:] != last_inputs[:, 1:length]).float().mean() > 0.5


def test_scheduled_sampling_two_pass_for_transformers_keeps_targets_and_padding(tmp_path):
    model = tiny_gpt2(12, n_positions=16, bos_token_id=0, eos_token_id=0)
    trainer = _ss_trainer(tmp_path, model, sampling_probability=1.0, schedule="constant")
    batch = next(iter(trainer.get_train_dataloader()))
    batch["attention_mask"][:2, -2:] = 0
    batch["labels"][:2, -2:] = -100
    mixed = trainer._mixed_inputs(trainer.model, batch, 1.0)
    assert torch.equal(mixed["labels"], batch["labels"])  # targets stay the ground truth
    assert torch.equal(mixed["input_ids"][:, 0], batch["input_ids"][:, 0])  # the start token is given
    assert torch.equal(mixed["input_ids"][:2, -2:], batch["input_ids"][:2, -2:])  # padding is never replaced
    assert (mixed["input_ids"][:, 1:-2] != batch["input_ids"][:, 1:-2]).float().mean() > 0.5
    before = [p.clone() for p in trainer.model.parameters()]
    trainer.train()
    assert trainer.state.global_step == 6
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


@pytest.mark.parametrize("kwargs, message", [({"sampling_probability": 1.5}, "sampling_probability=1.5"),
                                             ({"schedule": "cosine"}, "schedule='cosine'")])
def test_scheduled_sampling_rejects_bad_settings(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        _ss_trainer(tmp_path, _generator(), **kwargs)
