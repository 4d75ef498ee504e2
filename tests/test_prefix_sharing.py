"""Scoring rollouts on a causal discriminator's cached prefixes (`seqgan_hf.prefix_sharing.PrefixSharing`).

Each completion of prefix y_1..y_t must get the P(real) a full discriminator forward gives it, while the
discriminator is fed only the completion's own T - t tokens; discriminators where that is not exact must fall
back to full forwards.
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
from seqgan_hf.prefix_sharing import PrefixSharing  # noqa: E402
from seqgan_hf.rewards import DiscriminatorReward  # noqa: E402
from seqgan_hf.rollout import RolloutEngine  # noqa: E402
from tests.builders import (  # noqa: E402
    tiny_bert_classifier,
    tiny_cnn,
    tiny_gpt2,
    tiny_gpt2_classifier,
    tiny_llama_classifier,
)

# The discriminator's vocabulary has one extra token, its pad (never sampled); the generator's own pad is PAD.
VOCAB, BOS, PAD, EOS = 37, 0, 36, 5
D_VOCAB, D_PAD = VOCAB + 1, VOCAB
BATCH, ROLLOUT_NUM, LENGTH = 5, 3, 9


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _generator() -> torch.nn.Module:
    return tiny_gpt2(VOCAB, bos_token_id=BOS).eval()


def _gpt2_discriminator(n_layer: int = 2, **config) -> torch.nn.Module:
    """The GPT-2 discriminator, on its own vocabulary and pad unless `config` says otherwise."""
    config = {"vocab_size": D_VOCAB, "pad_token_id": D_PAD, **config}
    return tiny_gpt2_classifier(num_labels=2, n_layer=n_layer, n_positions=64, **config).eval()


def _llama_discriminator() -> torch.nn.Module:
    return tiny_llama_classifier(D_VOCAB, 1, num_hidden_layers=2, pad_token_id=D_PAD).eval()


class _FirstTokenDiscriminator(GPT2ForSequenceClassification):
    """A causal discriminator with a cache that pools its *first* position: a cached prefix changes what it pools."""

    def forward(self, input_ids=None, attention_mask=None, cache=None, use_cache=None, **kwargs):
        output = self.transformer(input_ids=input_ids, attention_mask=attention_mask, cache=cache, use_cache=use_cache)
        return SequenceClassifierOutputWithPast(logits=self.score(output.last_hidden_state[:, 0]), cache=output.cache)


def _first_token_discriminator() -> torch.nn.Module:
    return _gpt2_discriminator(n_layer=1, model_class=_FirstTokenDiscriminator)


def _bert_discriminator() -> torch.nn.Module:
    return tiny_bert_classifier(D_VOCAB, 2, max_position_embeddings=64, pad_token_id=D_PAD).eval()


def _cnn_discriminator() -> torch.nn.Module:
    return tiny_cnn(D_VOCAB, filter_sizes=[2, 3], num_filters=[4, 4], pad_token_id=D_PAD).eval()


def _adapter(discriminator, eos_token_id: int | None = None) -> DiscriminatorAdapter:
    return DiscriminatorAdapter(
        num_labels=discriminator.config.num_labels, eos_token_id=eos_token_id,
        pad_token_id=PAD if eos_token_id is not None else None, discriminator_pad_token_id=discriminator.config.pad_token_id,
    )


def _batch(engine: RolloutEngine):
    generator = _generator()
    sequences = engine.sample(generator, BATCH, rng=torch.Generator().manual_seed(1))
    return sequences, engine.rollouts(generator, sequences, rng=torch.Generator().manual_seed(2))


def _both(discriminator, eos_token_id=None, score_batch_size=4096, autocast=None):
    """(rewards from full forwards, rewards with prefix sharing, its PrefixSharing, the engine's counter, rollouts)."""
    engine = RolloutEngine(BOS, LENGTH, ROLLOUT_NUM, score_batch_size=score_batch_size)
    sequences, rollouts = _batch(engine)
    adapter = _adapter(discriminator, eos_token_id)
    autocast = autocast or contextlib.nullcontext
    reward = DiscriminatorReward(adapter, lambda: discriminator, autocast)
    full = engine.rewards(rollouts, sequences, DiscriminatorReward(adapter, lambda: discriminator, autocast,
                                                                   prefix_sharing=False))
    engine.counter.reset()
    shared = engine.rewards(rollouts, sequences, reward)
    return full, shared, reward.prefix_sharing, engine.counter, rollouts


def _expected_positions(shareable: torch.Tensor) -> int:
    """B*T for the sampled sequences, then T - t per shared completion of prefix t and T per other one."""
    prefix_length = torch.arange(1, LENGTH)
    per_completion = torch.where(shareable, LENGTH - prefix_length, torch.full_like(prefix_length, LENGTH))
    return BATCH * LENGTH + int(per_completion.sum())


@pytest.mark.parametrize("make_discriminator", [_gpt2_discriminator, _llama_discriminator], ids=["gpt2", "llama"])
def test_shared_prefixes_give_full_forward_scores_with_the_minimum_positions(make_discriminator):
    discriminator = make_discriminator()
    full, shared, sharing, counter, _ = _both(discriminator)
    assert sharing.enabled is True
    torch.testing.assert_close(shared, full, rtol=0, atol=1e-6)
    assert counter.scored_sequences == BATCH * ROLLOUT_NUM * (LENGTH - 1) + BATCH
    # B*T for the sampled sequences plus the completions' own tokens: B*N*T(T-1)/2 (full scoring: 125 * 9).
    assert counter.discriminator_positions == BATCH * LENGTH + BATCH * ROLLOUT_NUM * LENGTH * (LENGTH - 1) // 2
    assert not discriminator.training


def test_completions_holding_the_discriminator_pad_token_get_a_full_forward():
    """A pad id that is also a token the generator samples: the classifier would pool before it; no sharing."""
    discriminator = _gpt2_discriminator(n_layer=1, vocab_size=VOCAB, pad_token_id=PAD)
    full, shared, sharing, counter, rollouts = _both(discriminator)
    assert sharing.enabled is True
    torch.testing.assert_close(shared, full, rtol=0, atol=1e-6)
    shareable = (rollouts != PAD).all(dim=-1)
    assert 0 < int(shareable.sum()) < shareable.numel()  # both kinds of rows occur
    assert counter.discriminator_positions == _expected_positions(shareable)


def test_completions_padded_after_eos_are_shared_unless_the_eos_is_in_the_prefix():
    """Padding after EOS is at the end: once checked on such rows, they continue the prefix cache too; a row whose
    EOS falls inside the prefix has nothing left to feed after it and gets a full forward."""
    discriminator = _gpt2_discriminator()
    full, shared, sharing, counter, rollouts = _both(discriminator, eos_token_id=EOS)
    assert sharing.enabled is True and sharing.padded_enabled is True
    torch.testing.assert_close(shared, full, rtol=0, atol=1e-6)
    prefix_length = torch.arange(1, LENGTH)
    eos_in_prefix = ((rollouts == EOS).cumsum(dim=-1)[..., prefix_length - 1].diagonal(dim1=-2, dim2=-1) > 0)
    padded = (rollouts[..., :-1] == EOS).any(dim=-1)
    assert bool((padded & ~eos_in_prefix).any()) and bool((~padded).any())  # padded and unpadded rows occur
    assert counter.discriminator_positions == _expected_positions(~eos_in_prefix)


def test_scores_depend_on_the_discriminator_batch_size_only_through_float_rounding():
    """Suffix forwards of a few tokens are tiny matmuls whose kernels round differently: not bitwise equal."""
    discriminator = _gpt2_discriminator()
    _, wide, _, _, _ = _both(discriminator, score_batch_size=4096)
    _, narrow, _, _, _ = _both(discriminator, score_batch_size=2)
    torch.testing.assert_close(narrow, wide, rtol=0, atol=1e-6)


def test_a_discriminator_that_does_not_pool_the_last_position_is_caught_and_scored_in_full(caplog):
    discriminator = _first_token_discriminator()
    with caplog.at_level(logging.WARNING, logger="seqgan_hf.prefix_sharing"):
        full, shared, sharing, counter, _ = _both(discriminator)
    assert sharing.enabled is False
    assert "differ from a full forward" in caplog.text and "discriminator_prefix_cache=False" in caplog.text
    assert torch.equal(shared, full)
    assert counter.discriminator_positions == (BATCH * ROLLOUT_NUM * (LENGTH - 1) + BATCH) * LENGTH


@pytest.mark.parametrize("make_discriminator", [_bert_discriminator, _cnn_discriminator], ids=["bert", "paper-cnn"])
def test_discriminators_without_a_cache_are_scored_in_full_silently(make_discriminator, caplog):
    discriminator = make_discriminator()
    with caplog.at_level(logging.WARNING, logger="seqgan_hf.prefix_sharing"):
        full, shared, sharing, _, _ = _both(discriminator)
    assert sharing.enabled is False and caplog.text == ""
    assert torch.equal(shared, full)


def test_a_separate_discriminator_tokenizer_never_shares():
    adapter = _adapter(_gpt2_discriminator())
    adapter.retokenize = True  # what DiscriminatorAdapter sets when D has its own tokenizer
    sharing = PrefixSharing(adapter, _gpt2_discriminator)
    assert sharing.enabled is False
    rollouts = torch.ones(1, 1, LENGTH - 1, LENGTH, dtype=torch.long)
    assert sharing.rollout_probabilities(rollouts, rollouts[:, 0, 0], lambda tokens: 8) is None


def test_bfloat16_autocast_shares_within_bfloat16_precision():
    discriminator = _gpt2_discriminator()
    full, shared, sharing, _, _ = _both(discriminator, autocast=lambda: torch.autocast("cpu", dtype=torch.bfloat16))
    assert sharing.enabled is True
    torch.testing.assert_close(shared, full, rtol=0, atol=2e-2)
