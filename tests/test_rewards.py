"""Reward sources (`seqgan_hf.rewards`): user functions, mixes with the discriminator, and refusals."""

from __future__ import annotations

import datasets
import pytest
import torch

from seqgan_hf import SeqGANTrainer
from seqgan_hf.rewards import BleuReward, FunctionReward, RewardMix, TensorReward, build_reward
from tests.builders import quick_config, tiny_cnn, tiny_lstm

VOCAB = 12
DATA = datasets.Dataset.from_dict({"input_ids": [[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]] * 8})


def length_reward(completion_ids, **kwargs):
    """A user's reward in TRL's style: the fraction of tokens equal to 7."""
    return [sum(token == 7 for token in ids) / max(len(ids), 1) for ids in completion_ids]


def test_function_reward_gets_texts_and_cut_ids(word_tokenizer):
    seen = {}

    def reward(completions, completion_ids, **kwargs):
        seen.update(completions=completions, completion_ids=completion_ids)
        return [0.25] * len(completions)

    eos, pad = word_tokenizer.eos_token_id, word_tokenizer.pad_token_id
    cat, sat = word_tokenizer.convert_tokens_to_ids(["cat", "sat"])
    rows = torch.tensor([[cat, sat, eos, cat], [sat, sat, sat, sat]])
    rewards = FunctionReward(reward, word_tokenizer, eos, pad)(rows)
    assert rewards.tolist() == [0.25, 0.25]
    assert seen["completion_ids"] == [[cat, sat], [sat, sat, sat, sat]]  # cut after EOS, EOS dropped
    assert seen["completions"] == ["cat sat", "sat sat sat sat"]
    # Without a tokenizer, completions are the id lists.
    FunctionReward(reward)(rows)
    assert seen["completions"] == seen["completion_ids"] == rows.tolist()


@pytest.mark.parametrize("returned, message", [
    ([0.5], "returned 1 values for 2 completions"),
    ([0.5, 1.5], "must be finite and in \\[0, 1\\]"),
    ([0.5, float("nan")], "must be finite"),
    (None, "returned None"),
])
def test_function_reward_refuses_bad_values_naming_the_function(returned, message):
    def my_reward(completions, completion_ids, **kwargs):
        return returned

    with pytest.raises(ValueError, match=f"'my_reward'.*{message}|{message}.*'my_reward'|'my_reward' {message}"):
        FunctionReward(my_reward)(torch.zeros(2, 3, dtype=torch.long))


def test_mix_is_the_weighted_mean_and_stays_in_unit_interval():
    ones = TensorReward(lambda rows: torch.ones(len(rows)))
    zeros = TensorReward(lambda rows: torch.zeros(len(rows)))
    mix = RewardMix([ones, zeros], [3.0, 1.0])
    rows = torch.zeros(4, 5, dtype=torch.long)
    assert torch.allclose(mix(rows), torch.full((4,), 0.75))
    rollouts = torch.zeros(4, 2, 4, 5, dtype=torch.long)
    flat = mix.rollout_rewards(rollouts, rows, lambda length: 7)
    assert flat.shape == (4 * 2 * 4 + 4,) and torch.allclose(flat, torch.full_like(flat, 0.75))


@pytest.mark.parametrize("reward_funcs, weights, error, message", [
    ([], None, ValueError, "reward_funcs is empty"),
    (["critic"], None, ValueError, "only string accepted is 'discriminator'"),
    ([42], None, TypeError, r"reward_funcs\[0\] is a int"),
    ([lambda ids: ids], None, TypeError, "does not take \\['completion_ids', 'completions'\\]"),
    ([length_reward, length_reward], [1.0], ValueError, "reward_weights has 1 values for 2 reward_funcs"),
])
def test_build_reward_refuses_bad_entries(reward_funcs, weights, error, message):
    with pytest.raises(error, match=message):
        build_reward(reward_funcs, weights, None)


def test_discriminator_string_needs_a_discriminator():
    with pytest.raises(ValueError, match="'discriminator' but the trainer has no discriminator"):
        build_reward(["discriminator"], None, None)


def test_trainer_mixes_the_discriminator_with_a_user_reward(tmp_path, one_thread):
    args = quick_config(tmp_path, reward_weights=[0.8, 0.2])
    trainer = SeqGANTrainer(tiny_lstm(VOCAB), tiny_cnn(VOCAB), args=args, train_dataset=DATA,
                            reward_funcs=["discriminator", length_reward])
    rows = torch.tensor([[7, 7, 1, 2, 3, 4], [1, 2, 3, 4, 5, 6]])
    discriminator = trainer.discriminator_reward(rows)
    expected = 0.8 * discriminator + 0.2 * torch.tensor([2 / 6, 0.0])
    assert torch.allclose(trainer.reward(rows), expected)
    trainer.train()
    assert [entry for entry in trainer.state.log_history if "adversarial/reward_mean" in entry]


def test_a_user_reward_alone_trains_the_generator_without_a_discriminator(tmp_path, one_thread):
    """PG on "fraction of 7s" with no discriminator at all: 7s become more frequent."""
    args = quick_config(tmp_path, mle_epochs=0, discriminator_pretrain_rounds=0, d_steps=0, adversarial_iterations=40,
                        per_device_train_batch_size=32, rollout_num=2, learning_rate=0.05, logging_steps=40)
    trainer = SeqGANTrainer(tiny_lstm(VOCAB), args=args, train_dataset=DATA, reward_funcs=length_reward)
    sample = trainer.rollout_engine.sample
    before = (sample(trainer.model, 512, rng=torch.Generator().manual_seed(3)) == 7).float().mean()
    trainer.train()
    after = (sample(trainer.model, 512, rng=torch.Generator().manual_seed(3)) == 7).float().mean()
    assert after > before + 0.2
    trainer.save_model()
    assert not (tmp_path / "out" / "discriminator").exists()


@pytest.mark.parametrize("kwargs, overrides, message", [
    (dict(reward_funcs=length_reward), {}, "discriminator is trained, but reward_funcs does not use it"),
    ({}, dict(reward_weights=[1.0]), "reward_weights is set but reward_funcs is not"),
    (dict(discriminator=None, reward_funcs=length_reward), {}, "There is no discriminator, but"),
    (dict(discriminator=None), dict(discriminator_pretrain_rounds=0, d_steps=0), "needs a reward"),
])
def test_trainer_refuses_rewards_that_do_not_fit_the_phases(tmp_path, kwargs, overrides, message):
    kwargs = {"discriminator": tiny_cnn(VOCAB), **kwargs}
    with pytest.raises(ValueError, match=message):
        SeqGANTrainer(tiny_lstm(VOCAB), args=quick_config(tmp_path, **overrides), train_dataset=DATA, **kwargs)


def test_a_frozen_classifier_is_a_reward_source(tmp_path, one_thread):
    reward_model = tiny_cnn(VOCAB, num_labels=1)
    args = quick_config(tmp_path, discriminator_pretrain_rounds=0, d_steps=0)
    trainer = SeqGANTrainer(tiny_lstm(VOCAB), args=args, train_dataset=DATA, reward_funcs=[reward_model])
    rows = torch.tensor([[1, 2, 3, 4, 5, 6]])
    with torch.no_grad():
        expected = torch.sigmoid(reward_model(input_ids=rows, attention_mask=torch.ones_like(rows)).logits[:, 0])
    assert torch.allclose(trainer.reward(rows), expected)
    before = {name: value.clone() for name, value in reward_model.state_dict().items()}
    trainer.train()
    assert all(torch.equal(before[name], value) for name, value in reward_model.state_dict().items())


def test_bleu_reward_scores_against_the_references():
    reward = BleuReward([[1, 2, 3, 4, 5, 6]], max_order=4, smoothing=0.1, eos_token_id=None, pad_token_id=None)
    assert reward(torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 7]])).tolist() == pytest.approx([1.0, 0.0])
