"""Invariants of the Monte Carlo rollout engine (`seqgan_hf.rollout.RolloutEngine`).

Tiny models built from configs (no Hub access): the paper's LSTM, GPT-2 and Llama.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from seqgan_hf import rollout as rollout_module
from seqgan_hf.rollout import RolloutEngine, sample_from_logits
from tests.builders import tiny_gpt2, tiny_llama, tiny_lstm

VOCAB = 37  # not a multiple of the sampler's block size: the tail block is exercised too
BOS = 0


def _lstm() -> torch.nn.Module:
    return tiny_lstm(VOCAB, init_std=0.5).eval()


def _gpt2() -> torch.nn.Module:
    return tiny_gpt2(VOCAB, n_layer=2, bos_token_id=BOS).eval()


def _llama() -> torch.nn.Module:
    return tiny_llama(VOCAB, num_hidden_layers=2, bos_token_id=BOS).eval()


MODELS = {"lstm": _lstm, "gpt2": _gpt2, "llama": _llama}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _score(sequences: torch.LongTensor) -> torch.Tensor:
    """A deterministic stand-in discriminator: P(real) as a fixed function of the whole sequence."""
    weights = torch.arange(1, sequences.shape[1] + 1, dtype=torch.float64)
    return torch.sin((sequences.double() * weights).sum(-1)) * 0.5 + 0.5


def _sequences(engine: RolloutEngine, model, batch: int, seed: int = 1) -> torch.LongTensor:
    return engine.sample(model, batch, rng=torch.Generator().manual_seed(seed))


def _naive_rollouts(model, sequences, rollout_num: int, seed: int) -> torch.LongTensor:
    """Reference: every (sequence, rollout, prefix) completed alone, re-encoding its context at every token."""
    batch, length = sequences.shape
    uniforms = torch.rand(batch, rollout_num, length - 1, length - 1, generator=torch.Generator().manual_seed(seed))
    out = sequences[:, None, None, :].expand(-1, rollout_num, length - 1, -1).clone()
    with torch.no_grad():
        for b in range(batch):
            for n in range(rollout_num):
                for t in range(1, length):
                    row = out[b, n, t - 1]
                    for k in range(length - t):
                        context = torch.cat([torch.tensor([BOS]), row[: t + k]]).unsqueeze(0)
                        logits = model(input_ids=context).logits[:, -1]
                        row[t + k] = sample_from_logits(logits, uniforms[b, n, t - 1, k : k + 1])[0]
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_same_rng_stream_same_rewards_whatever_the_chunking(name):
    model = MODELS[name]()
    length, rollout_num = 6, 3
    reference = None
    for rollout_batch_size, block_rows in [(4096, 0), (2, 1), (7, 3), (20, None)]:
        engine = RolloutEngine(
            BOS, length, rollout_num, rollout_batch_size=rollout_batch_size, score_batch_size=rollout_batch_size,
            sample_block_rows=block_rows,
        )
        sequences = _sequences(engine, model, 4)
        rollouts = engine.rollouts(model, sequences, rng=torch.Generator().manual_seed(2))
        rewards = engine.rewards(rollouts, sequences, _score)
        if reference is None:
            reference = (sequences, rollouts, rewards)
            continue
        assert torch.equal(sequences, reference[0])
        assert torch.equal(rollouts, reference[1])
        assert torch.equal(rewards, reference[2])


@pytest.mark.parametrize("name", ["lstm", "gpt2"])
def test_cpu_rollout_chunks_are_capped_by_their_logits_without_changing_results(name):
    """On CPU a chunk holds at most ~rollout_block_logits / V rows (at least 64), whatever rollout_batch_size says."""
    model = MODELS[name]()
    length, rollout_num, batch = 6, 8, 4  # 4 * 8 * 5 = 160 rollout rows
    capped = RolloutEngine(BOS, length, rollout_num, rollout_block_logits=VOCAB * 70)
    uncapped = RolloutEngine(BOS, length, rollout_num, rollout_block_logits=0)
    assert capped.rollout_rows(VOCAB, torch.device("cpu")) == 70
    assert capped.rollout_rows(VOCAB, torch.device("meta")) == 4096  # accelerators: rollout_batch_size only
    assert uncapped.rollout_rows(VOCAB, torch.device("cpu")) == 4096
    sequences = _sequences(capped, model, batch)
    capped.counter.reset()
    widest = []  # rows of every transformer forward (the LSTM's steps bypass forward: its calls are counted)
    hook = model.register_forward_pre_hook(
        lambda module, args, kwargs: widest.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    rollouts = capped.rollouts(model, sequences, rng=torch.Generator().manual_seed(2))
    hook.remove()
    assert torch.equal(rollouts, uncapped.rollouts(model, sequences, rng=torch.Generator().manual_seed(2)))
    assert capped.counter.generator_calls > uncapped.counter.generator_calls  # more, smaller forwards
    if name == "gpt2":
        assert max(widest[1:]) == 70  # after the one pass over the B sequences


@pytest.mark.parametrize("name", list(MODELS))
def test_engine_matches_the_naive_reference_and_keeps_prefixes(name):
    """Same uniforms -> the same completions as re-encoding each prefix alone (cache reuse changes nothing)."""
    model = MODELS[name]()
    length, rollout_num = 5, 2
    engine = RolloutEngine(BOS, length, rollout_num, rollout_batch_size=5)
    sequences = _sequences(engine, model, 3)
    rollouts = engine.rollouts(model, sequences, rng=torch.Generator().manual_seed(3))
    for t in range(1, length):
        assert torch.equal(rollouts[:, :, t - 1, :t], sequences[:, None, :t].expand(-1, rollout_num, -1))
    assert torch.equal(rollouts, _naive_rollouts(model, sequences, rollout_num, seed=3))


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_cached_path_equals_uncached_fallback(name, monkeypatch):
    model = MODELS[name]()
    engine = RolloutEngine(BOS, 7, 3, rollout_batch_size=11)
    sequences = _sequences(engine, model, 4)
    cached = engine.rollouts(model, sequences, rng=torch.Generator().manual_seed(4))
    cached_positions = engine.counter.generator_positions
    monkeypatch.setattr(rollout_module, "maskable_cache", lambda cache: False)
    engine.counter.reset()
    uncached = engine.rollouts(model, sequences, rng=torch.Generator().manual_seed(4))
    assert engine.counter.generator_positions > cached_positions  # the fallback really re-encoded
    assert torch.equal(cached, uncached)


class _NoCache(torch.nn.Module):
    """A causal LM that never returns a cache (e.g. a custom model): the engine must fall back."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, **kwargs):
        output = self.inner(input_ids=input_ids, use_cache=False)
        output.cache = None
        return output


def test_model_without_cache_falls_back_correctly():
    model = _gpt2()
    engine = RolloutEngine(BOS, 5, 2, rollout_batch_size=4)
    sequences = _sequences(engine, model, 3)
    got = engine.rollouts(_NoCache(model), sequences, rng=torch.Generator().manual_seed(5))
    assert torch.equal(got, engine.rollouts(model, sequences, rng=torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("name", list(MODELS))
def test_generator_work_and_scoring_counts(name):
    """Positions fed <= 1.1 x (B*N*T(T-1)/2 + B*T); each complete sequence scored exactly once."""
    model = MODELS[name]()
    batch, rollout_num, length = 4, 3, 8
    engine = RolloutEngine(BOS, length, rollout_num, rollout_batch_size=13, score_batch_size=10)
    sequences = _sequences(engine, model, batch)
    engine.counter.reset()
    rewards = engine(model, sequences, _score, rng=torch.Generator().manual_seed(6))
    minimum = batch * rollout_num * length * (length - 1) // 2 + batch * length
    assert engine.counter.generator_positions <= 1.1 * minimum
    assert engine.counter.scored_sequences == batch * rollout_num * (length - 1) + batch
    assert rewards.shape == (batch, length)


def test_rewards_are_averaged_over_rollouts_not_over_the_batch():
    engine = RolloutEngine(BOS, 4, 3)
    batch, rollout_num, length = 2, 3, 4
    rollouts = torch.randint(1, VOCAB, (batch, rollout_num, length - 1, length), generator=torch.Generator().manual_seed(7))
    sequences = torch.randint(1, VOCAB, (batch, length), generator=torch.Generator().manual_seed(8))
    rewards = engine.rewards(rollouts, sequences, _score)
    for b in range(batch):
        for t in range(length - 1):
            expected = torch.stack([_score(rollouts[b, n, t][None])[0] for n in range(rollout_num)]).mean()
            torch.testing.assert_close(rewards[b, t], expected.float())
        torch.testing.assert_close(rewards[b, -1], _score(sequences[b][None])[0].float())


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_inverse_cdf_sampler_follows_the_softmax(temperature):
    vocab, rows = 130, 40000  # two full blocks of 64 plus a tail of 2
    logits = torch.randn(vocab, generator=torch.Generator().manual_seed(9)) * 2
    logits[5] = float("-inf")  # a token that must never be drawn
    uniforms = torch.rand(rows, generator=torch.Generator().manual_seed(10))
    tokens = sample_from_logits(logits.expand(rows, -1), uniforms, temperature)
    frequencies = torch.bincount(tokens, minlength=vocab).double() / rows
    probs = torch.softmax(logits.double() / temperature, -1)
    assert frequencies[5] == 0
    assert (frequencies - probs).abs().max() < 5 * (probs.max() / rows) ** 0.5
    # Monotone in the uniform: inverse-CDF sampling maps sorted uniforms to sorted tokens.
    ordered = sample_from_logits(logits.expand(rows, -1), uniforms.sort().values, temperature)
    assert torch.all(ordered[1:] >= ordered[:-1])
