"""Reward semantics of the Monte Carlo rollouts on hand-built cases with known answers."""

from __future__ import annotations

import torch

from seqgan_hf.rollout import RolloutEngine
from tests.builders import tiny_lstm

VOCAB = 8
FILL = 3  # the deterministic policy always samples this token


def deterministic_policy():
    """An LSTM whose next-token distribution puts all its mass on FILL, whatever the prefix."""
    model = tiny_lstm(vocab_size=VOCAB).eval()
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.fill_(-1e4)
        model.lm_head.bias[FILL] = 0.0
    return model


def coin_policy():
    """An LSTM that samples tokens 1 and 2 with probability 1/2 each."""
    model = tiny_lstm(vocab_size=VOCAB).eval()
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.fill_(-1e4)
        model.lm_head.bias[1] = 0.0
        model.lm_head.bias[2] = 0.0
    return model


def known_discriminator(sequences: torch.LongTensor) -> torch.Tensor:
    """P(real) = share of 1s, plus 0.25 when the sequence starts with 5: a row-specific, known score."""
    return (sequences == 1).float().mean(dim=1) * 0.5 + (sequences[:, 0] == 5).float() * 0.25


class WithoutRecurrentInterface(torch.nn.Module):
    """Hides the LSTM's rollout interface and cache: exercises the generic causal-LM path."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids, cache=None, use_cache=None, **kwargs):
        output = self.model(input_ids=input_ids, use_cache=False)
        output.cache = None
        return output


def expected_rewards(sequences: torch.LongTensor) -> torch.Tensor:
    batch, length = sequences.shape
    expected = torch.empty(batch, length)
    for b in range(batch):
        for t in range(length):
            completed = sequences[b].clone()
            completed[t + 1 :] = FILL
            expected[b, t] = known_discriminator(completed.unsqueeze(0))[0]
    return expected


SEQUENCES = torch.tensor([[1, 2, 1, 2, 1], [5, 5, 1, 5, 5], [1, 1, 2, 2, 6], [5, 1, 1, 1, 1]])


def test_rewards_match_hand_computed_q_values():
    engine = RolloutEngine(bos_token_id=0, sequence_length=5, rollout_num=4)
    for policy in (deterministic_policy(), WithoutRecurrentInterface(deterministic_policy())):
        rewards = engine(policy, SEQUENCES, known_discriminator, rng=torch.Generator().manual_seed(0))
        torch.testing.assert_close(rewards, expected_rewards(SEQUENCES), rtol=0, atol=1e-6)


def test_last_token_reward_is_the_discriminator_on_the_sequence_itself():
    engine = RolloutEngine(bos_token_id=0, sequence_length=5, rollout_num=3)
    rewards = engine(coin_policy(), SEQUENCES, known_discriminator)
    torch.testing.assert_close(rewards[:, -1], known_discriminator(SEQUENCES))


def test_permuting_the_batch_permutes_the_rewards():
    engine = RolloutEngine(bos_token_id=0, sequence_length=5, rollout_num=4)
    permutation = torch.tensor([2, 0, 3, 1])
    rewards = engine(deterministic_policy(), SEQUENCES, known_discriminator)
    permuted = engine(deterministic_policy(), SEQUENCES[permutation], known_discriminator)
    torch.testing.assert_close(permuted, rewards[permutation], rtol=0, atol=0)
    # Rows differ, so a reward averaged over the batch instead of over rollouts would fail the checks above.
    assert not torch.allclose(rewards[0], rewards[1])


def test_stochastic_rollouts_average_over_rollouts_per_prefix():
    """With a fair coin over {1, 2}, Q(prefix) = (#1s in prefix + (T - t) / 2) / T * 0.5 + start bonus."""
    length, rollout_num = 5, 4000
    engine = RolloutEngine(bos_token_id=0, sequence_length=length, rollout_num=rollout_num)
    rewards = engine(coin_policy(), SEQUENCES, known_discriminator, rng=torch.Generator().manual_seed(0))
    for b in range(SEQUENCES.shape[0]):
        for t in range(length - 1):
            ones = (SEQUENCES[b, : t + 1] == 1).sum().item()
            expected = (ones + (length - t - 1) / 2) / length * 0.5 + (0.25 if SEQUENCES[b, 0] == 5 else 0.0)
            # std of the mean: 0.5 * sqrt((T-t-1)/4) / T / sqrt(N) < 0.003; allow 5 sigma.
            assert abs(rewards[b, t].item() - expected) < 0.015, (b, t, rewards[b, t].item(), expected)


def test_rollouts_keep_each_prefix_and_count_work():
    length, rollout_num = 6, 3
    engine = RolloutEngine(bos_token_id=0, sequence_length=length, rollout_num=rollout_num)
    policy = tiny_lstm(vocab_size=VOCAB).eval()
    sequences = engine.sample(policy, 4)
    engine.counter.reset()
    rollouts = engine.rollouts(policy, sequences)
    assert rollouts.shape == (4, rollout_num, length - 1, length)
    for t in range(1, length):
        assert torch.equal(rollouts[:, :, t - 1, :t], sequences[:, None, :t].expand(-1, rollout_num, -1))
    engine.rewards(rollouts, sequences, known_discriminator)
    assert engine.counter.scored_sequences == 4 * rollout_num * (length - 1) + 4
