"""Scoring rollouts on a causal critic's cached prefixes (`seqgan_hf.prefix_scoring.PrefixSharingScorer`).

Each completion of prefix y_1..y_t must get the score a full critic forward gives it, while the critic is fed
only the completion's own T - t tokens; critics where that is not exact must fall back to full forwards.
"""

from __future__ import annotations

import contextlib
import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from transformers import GPT2ForSequenceClassification  # noqa: E402
from transformers.modeling_outputs import SequenceClassifierOutputWithPast  # noqa: E402

from seqgan_hf.discriminator import DiscriminatorAdapter  # noqa: E402
from seqgan_hf.prefix_scoring import PrefixSharingScorer  # noqa: E402
from seqgan_hf.rollout import RolloutEngine  # noqa: E402
from tests.builders import (  # noqa: E402
    tiny_bert_classifier,
    tiny_cnn,
    tiny_gpt2,
    tiny_gpt2_classifier,
    tiny_llama_classifier,
)

# The critic's vocabulary has one extra token, its pad (never sampled); the generator's own pad is PAD.
VOCAB, BOS, PAD, EOS = 37, 0, 36, 5
CRITIC_VOCAB, CRITIC_PAD = VOCAB + 1, VOCAB
BATCH, ROLLOUT_NUM, LENGTH = 5, 3, 9


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _generator() -> torch.nn.Module:
    return tiny_gpt2(VOCAB, bos_token_id=BOS).eval()


def _gpt2_critic(n_layer: int = 2, **config) -> torch.nn.Module:
    """The GPT-2 critic, on its own vocabulary and pad unless `config` says otherwise."""
    config = {"vocab_size": CRITIC_VOCAB, "pad_token_id": CRITIC_PAD, **config}
    return tiny_gpt2_classifier(num_labels=2, n_layer=n_layer, n_positions=64, **config).eval()


def _llama_critic() -> torch.nn.Module:
    return tiny_llama_classifier(CRITIC_VOCAB, 1, num_hidden_layers=2, pad_token_id=CRITIC_PAD).eval()


class _FirstTokenCritic(GPT2ForSequenceClassification):
    """A causal critic with a cache that pools its *first* position: a cached prefix changes what it pools."""

    def forward(self, input_ids=None, attention_mask=None, cache=None, use_cache=None, **kwargs):
        output = self.transformer(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=use_cache)
        return SequenceClassifierOutputWithPast(logits=self.score(output.last_hidden_state[:, 0]), cache=output.cache)


def _first_token_critic() -> torch.nn.Module:
    return _gpt2_critic(n_layer=1, model_class=_FirstTokenCritic)


def _bert_critic() -> torch.nn.Module:
    return tiny_bert_classifier(CRITIC_VOCAB, 2, max_position_embeddings=64, pad_token_id=CRITIC_PAD).eval()


def _cnn_critic() -> torch.nn.Module:
    return tiny_cnn(CRITIC_VOCAB, filter_sizes=[2, 3], num_filters=[4, 4], pad_token_id=CRITIC_PAD).eval()


def _adapter(critic, eos_token_id: int | None = None) -> DiscriminatorAdapter:
    return DiscriminatorAdapter(
        num_labels=critic.config.num_labels, eos_token_id=eos_token_id,
        pad_token_id=PAD if eos_token_id is not None else None, discriminator_pad_token_id=critic.config.pad_token_id,
    )


def _batch(engine: RolloutEngine):
    generator = _generator()
    sequences = engine.sample(generator, BATCH, generator=torch.Generator().manual_seed(1))
    return sequences, engine.rollouts(generator, sequences, generator=torch.Generator().manual_seed(2))


def _both(critic, eos_token_id=None, score_batch_size=4096, autocast=None):
    """(rewards from full forwards, rewards with prefix sharing, the scorer, the engine's counter, rollouts)."""
    engine = RolloutEngine(BOS, LENGTH, ROLLOUT_NUM, score_batch_size=score_batch_size)
    sequences, rollouts = _batch(engine)
    adapter = _adapter(critic, eos_token_id)
    autocast = autocast or contextlib.nullcontext
    scorer = PrefixSharingScorer(adapter, lambda: critic, autocast)
    with autocast():
        full = engine.rewards(rollouts, sequences, lambda rows: adapter.score(critic, rows))
    engine.counter.reset()
    shared = engine.rewards(rollouts, sequences, lambda rows: adapter.score(critic, rows), prefix_scorer=scorer)
    return full, shared, scorer, engine.counter, rollouts


def _expected_positions(shareable: torch.Tensor) -> int:
    """B*T for the sampled sequences, then T - t per shared completion of prefix t and T per other one."""
    prefix_length = torch.arange(1, LENGTH)
    per_completion = torch.where(shareable, LENGTH - prefix_length, torch.full_like(prefix_length, LENGTH))
    return BATCH * LENGTH + int(per_completion.sum())


@pytest.mark.parametrize("make_critic", [_gpt2_critic, _llama_critic], ids=["gpt2", "llama"])
def test_shared_prefixes_give_full_forward_scores_with_the_minimum_positions(make_critic):
    critic = make_critic()
    full, shared, scorer, counter, _ = _both(critic)
    assert scorer.enabled is True
    torch.testing.assert_close(shared, full, rtol=0, atol=1e-6)
    assert counter.scored_sequences == BATCH * ROLLOUT_NUM * (LENGTH - 1) + BATCH
    # B*T for the sampled sequences plus the completions' own tokens: B*N*T(T-1)/2 (full scoring: 125 * 9).
    assert counter.discriminator_positions == BATCH * LENGTH + BATCH * ROLLOUT_NUM * LENGTH * (LENGTH - 1) // 2
    assert not critic.training


def test_completions_holding_the_critic_pad_token_get_a_full_forward():
    """A pad id that is also a token the generator samples: the classifier would pool before it; no sharing."""
    critic = _gpt2_critic(n_layer=1, vocab_size=VOCAB, pad_token_id=PAD)
    full, shared, scorer, counter, rollouts = _both(critic)
    assert scorer.enabled is True
    torch.testing.assert_close(shared, full, rtol=0, atol=1e-6)
    shareable = (rollouts != PAD).all(dim=-1)
    assert 0 < int(shareable.sum()) < shareable.numel()  # both kinds of rows occur
    assert counter.discriminator_positions == _expected_positions(shareable)


def test_completions_padded_after_eos_get_a_full_forward():
    critic = _gpt2_critic()
    full, shared, scorer, counter, rollouts = _both(critic, eos_token_id=EOS)
    assert scorer.enabled is True
    torch.testing.assert_close(shared, full, rtol=0, atol=1e-6)
    # An EOS before the last position pads the rest: such completions are not shared.
    shareable = (rollouts[..., :-1] != EOS).all(dim=-1)
    assert 0 < int(shareable.sum()) < shareable.numel()  # both kinds of rows occur
    assert counter.discriminator_positions == _expected_positions(shareable)


def test_scores_depend_on_the_critic_batch_size_only_through_float_rounding():
    """Suffix forwards of a few tokens are tiny matmuls whose kernels round differently: not bitwise equal."""
    critic = _gpt2_critic()
    _, wide, _, _, _ = _both(critic, score_batch_size=4096)
    _, narrow, _, _, _ = _both(critic, score_batch_size=2)
    torch.testing.assert_close(narrow, wide, rtol=0, atol=1e-6)


def test_a_critic_that_does_not_pool_the_last_position_is_caught_and_scored_in_full(caplog):
    critic = _first_token_critic()
    with caplog.at_level(logging.WARNING, logger="seqgan_hf.prefix_scoring"):
        full, shared, scorer, counter, _ = _both(critic)
    assert scorer.enabled is False
    assert "differ from a full forward" in caplog.text and "critic_prefix_cache=False" in caplog.text
    assert torch.equal(shared, full)
    assert counter.discriminator_positions == (BATCH * ROLLOUT_NUM * (LENGTH - 1) + BATCH) * LENGTH


@pytest.mark.parametrize("make_critic", [_bert_critic, _cnn_critic], ids=["bert", "paper-cnn"])
def test_critics_without_a_cache_are_scored_in_full_silently(make_critic, caplog):
    critic = make_critic()
    with caplog.at_level(logging.WARNING, logger="seqgan_hf.prefix_scoring"):
        full, shared, scorer, _, _ = _both(critic)
    assert scorer.enabled is False and caplog.text == ""
    assert torch.equal(shared, full)


def test_a_separate_critic_tokenizer_never_shares():
    adapter = _adapter(_gpt2_critic())
    adapter.retokenize = True  # what DiscriminatorAdapter sets when D has its own tokenizer
    scorer = PrefixSharingScorer(adapter, _gpt2_critic)
    assert scorer.enabled is False
    rollouts = torch.ones(1, 1, LENGTH - 1, LENGTH, dtype=torch.long)
    assert scorer.score_rollouts(rollouts, rollouts[:, 0, 0], lambda tokens: 8) is None


def test_bfloat16_autocast_shares_within_bfloat16_precision():
    critic = _gpt2_critic()
    full, shared, scorer, _, _ = _both(critic, autocast=lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    assert scorer.enabled is True
    torch.testing.assert_close(shared, full, rtol=0, atol=2e-2)
