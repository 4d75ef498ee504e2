"""Prompt-conditioned sampling, rollouts and rewards (`seqgan_hf.prompts`, `seqgan_hf.rollout`).

Prompts of different lengths share a batch left-padded; every check compares against a row computed alone,
unpadded, by re-encoding its whole context: the padding must change nothing but float rounding.
"""

from __future__ import annotations

import contextlib
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import types

import pytest
import torch

from seqgan_hf.algorithm import SeqGAN
from seqgan_hf.discriminator import DiscriminatorAdapter
from seqgan_hf.prompts import Prompts
from seqgan_hf.rewards import DiscriminatorReward
from seqgan_hf.rollout import RolloutEngine, sample_from_logits
from tests.builders import tiny_gpt2, tiny_gpt2_classifier, tiny_llama, tiny_lstm

VOCAB = 23
BOS, PAD = 0, 1
# Three prompts of different lengths (the first one empty: the start token alone), tokens avoid BOS and PAD.
PROMPTS = [[], [5, 9, 3, 7], [4, 11]]
MODELS = {
    "lstm": lambda: tiny_lstm(VOCAB, init_std=0.5).eval(),
    "gpt2": lambda: tiny_gpt2(VOCAB, n_layer=2, bos_token_id=BOS).eval(),
    "llama": lambda: tiny_llama(VOCAB, num_hidden_layers=2, bos_token_id=BOS).eval(),
}

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _prompts(rows=PROMPTS) -> Prompts:
    return Prompts.from_token_lists(rows, BOS, PAD)


def _next_token(model, context: list[int], uniform: torch.Tensor) -> int:
    """The token sampled after `context` (re-encoded whole, no padding) with `uniform`."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([context])).logits[:, -1]
    return int(sample_from_logits(logits, uniform.reshape(1))[0])


def _naive_sample(model, prompts: list[list[int]], length: int, seed: int) -> torch.LongTensor:
    uniforms = torch.rand(len(prompts), length, generator=torch.Generator().manual_seed(seed))
    rows = []
    for b, prompt in enumerate(prompts):
        context = [BOS, *prompt]
        for k in range(length):
            context.append(_next_token(model, context, uniforms[b, k]))
        rows.append(context[1 + len(prompt) :])
    return torch.tensor(rows)


def _naive_rollouts(model, prompts, sequences, rollout_num: int, seed: int) -> torch.LongTensor:
    """Every (sequence, rollout, prefix) completed alone from [BOS, prompt, prefix], re-encoded at every token."""
    batch, length = sequences.shape
    uniforms = torch.rand(batch, rollout_num, length - 1, length - 1, generator=torch.Generator().manual_seed(seed))
    out = sequences[:, None, None, :].expand(-1, rollout_num, length - 1, -1).clone()
    for b in range(batch):
        for n in range(rollout_num):
            for t in range(1, length):
                row = out[b, n, t - 1]
                for k in range(length - t):
                    context = [BOS, *prompts[b], *row[: t + k].tolist()]
                    row[t + k] = _next_token(model, context, uniforms[b, n, t - 1, k])
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_prompted_samples_and_rollouts_continue_exactly_the_prompt_and_prefix(name):
    """Same uniforms -> the same tokens as each row alone: the completion starts right after the prompt, every
    rollout right after its prompt + prefix, and no row reads another row's tokens or padding."""
    model = MODELS[name]()
    length, rollout_num = 5, 2
    engine = RolloutEngine(BOS, length, rollout_num, rollout_batch_size=5)
    sequences = engine.sample(model, len(PROMPTS), rng=torch.Generator().manual_seed(1), prompts=_prompts())
    assert torch.equal(sequences, _naive_sample(model, PROMPTS, length, seed=1))
    rollouts = engine.rollouts(model, sequences, rng=torch.Generator().manual_seed(2), prompts=_prompts())
    for t in range(1, length):  # only completion tokens come back, each rollout keeping its prefix
        assert torch.equal(rollouts[:, :, t - 1, :t], sequences[:, None, :t].expand(-1, rollout_num, -1))
    assert torch.equal(rollouts, _naive_rollouts(model, PROMPTS, sequences, rollout_num, seed=2))


def _pair_discriminator():
    return tiny_gpt2_classifier(VOCAB, 2, n_layer=2, pad_token_id=PAD).eval()


def _pair_reward(discriminator, prefix_sharing: bool = True) -> DiscriminatorReward:
    adapter = DiscriminatorAdapter(2, eos_token_id=2, pad_token_id=PAD, discriminator_pad_token_id=PAD,
                                   prompt_width=6)
    return DiscriminatorReward(adapter, lambda: discriminator, prefix_sharing=prefix_sharing)


@pytest.mark.parametrize("name", list(MODELS))
def test_a_rows_rewards_are_the_same_alone_or_batched_with_longer_and_shorter_prompts(name):
    model, discriminator = MODELS[name](), _pair_discriminator()
    length, rollout_num = 6, 3
    engine = RolloutEngine(BOS, length, rollout_num, rollout_batch_size=7, score_batch_size=5)
    # The row under test first: alone, its random numbers are the first ones of the batched draw too.
    for row in ([4, 11], [5, 9, 3, 7], []):
        batch_rows = [row, [6] * 9, [], [8, 3]]
        sequences = engine.sample(model, len(batch_rows), rng=torch.Generator().manual_seed(3),
                                  prompts=_prompts(batch_rows))
        alone = engine.sample(model, 1, rng=torch.Generator().manual_seed(3), prompts=_prompts([row]))
        assert torch.equal(sequences[:1], alone)
        batched = engine(model, sequences, _pair_reward(discriminator), rng=torch.Generator().manual_seed(4),
                         prompts=_prompts(batch_rows))
        single = engine(model, alone, _pair_reward(discriminator), rng=torch.Generator().manual_seed(4),
                        prompts=_prompts([row]))
        torch.testing.assert_close(batched[:1], single, rtol=0, atol=1e-5)


def test_the_discriminator_judges_prompt_completion_pairs():
    """Same vocabulary: [prompt, completion up to EOS, padding] at a fixed width, whatever the batch holds."""
    adapter = DiscriminatorAdapter(2, eos_token_id=2, pad_token_id=PAD, discriminator_pad_token_id=PAD,
                                   prompt_width=5)
    completions = torch.tensor([[7, 2, 9], [8, 8, 8], [3, 4, 2]])
    inputs = adapter.encode(completions, torch.device("cpu"), _prompts())
    assert inputs["input_ids"].tolist() == [
        [7, 2, 1, 1, 1, 1, 1, 1],
        [5, 9, 3, 7, 8, 8, 8, 1],
        [4, 11, 3, 4, 2, 1, 1, 1],
    ]
    assert inputs["attention_mask"].tolist() == [
        [1, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 0, 0, 0],
    ]
    alone = adapter.encode(completions[2:], torch.device("cpu"), _prompts([PROMPTS[2]]))
    assert torch.equal(alone["input_ids"], inputs["input_ids"][2:])
    # Prompts longer than the width keep their end (the tokens next to the completion).
    assert adapter.encode(completions[1:2], torch.device("cpu"), _prompts([[6, 5, 9, 3, 7, 4]]))[
        "input_ids"].tolist() == [[5, 9, 3, 7, 4, 8, 8, 8]]


def test_a_discriminator_with_its_own_tokenizer_gets_text_pairs(word_tokenizer):
    """Different vocabularies: decoded prompt and completion go through the classifier tokenizer's pair encoding."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "on", "mat", "a", "dog"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    classifier_tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]",
                                                   model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    generator_tokenizer = word_tokenizer
    adapter = DiscriminatorAdapter(2, generator_tokenizer.eos_token_id, generator_tokenizer.pad_token_id,
                                   generator_tokenizer=generator_tokenizer,
                                   discriminator_tokenizer=classifier_tokenizer, max_length=32)
    encode = generator_tokenizer(["the cat", "a dog sat on the mat"], add_special_tokens=False)["input_ids"]
    prompts = Prompts.from_token_lists([encode[0]], generator_tokenizer.bos_token_id, generator_tokenizer.pad_token_id)
    completion = torch.tensor([encode[1] + [generator_tokenizer.eos_token_id]])
    inputs = adapter.encode(completion, torch.device("cpu"), prompts)
    expected = classifier_tokenizer("the cat", "a dog sat on the mat", return_tensors="pt")
    assert torch.equal(inputs["input_ids"], expected["input_ids"])
    assert torch.equal(inputs["token_type_ids"], expected["token_type_ids"])  # which text each token is from
    assert inputs["token_type_ids"][0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]


def test_prefix_sharing_over_prompts_gives_full_forward_scores_with_less_work():
    model, discriminator = MODELS["gpt2"](), _pair_discriminator()
    length, rollout_num = 6, 3
    engine = RolloutEngine(BOS, length, rollout_num)
    prompts = _prompts()
    sequences = engine.sample(model, 3, rng=torch.Generator().manual_seed(5), prompts=prompts)
    rollouts = engine.rollouts(model, sequences, rng=torch.Generator().manual_seed(6), prompts=prompts)
    full = engine.rewards(rollouts, sequences, _pair_reward(discriminator, prefix_sharing=False), prompts)
    full_positions = engine.counter.discriminator_positions
    engine.counter.reset()
    reward = _pair_reward(discriminator)
    shared = engine.rewards(rollouts, sequences, reward, prompts)
    assert reward.prefix_sharing.enabled is True
    torch.testing.assert_close(shared, full, rtol=0, atol=1e-5)
    assert full_positions == (3 * rollout_num * (length - 1) + 3) * (6 + length)  # every pair at its full width
    assert engine.counter.discriminator_positions < 0.85 * full_positions


@pytest.mark.parametrize("name", list(MODELS))
def test_generator_work_with_prompts_stays_within_10_percent_of_the_minimum(name):
    """One pass over [BOS, prompt, y_1..y_{T-1}] per row (its left pads included) plus each rollout's own tokens:
    B*N*T(T-1)/2."""
    model = MODELS[name]()
    batch_rows = [[5, 9, 3], [4, 11], [6, 7, 8], [9]]
    batch, rollout_num, length = len(batch_rows), 3, 8
    engine = RolloutEngine(BOS, length, rollout_num, rollout_batch_size=13, score_batch_size=10)
    prompts = _prompts(batch_rows)
    sequences = engine.sample(model, batch, rng=torch.Generator().manual_seed(7), prompts=prompts)
    engine.counter.reset()
    rewards = engine(model, sequences, lambda rows: rows.float().mean(-1) / VOCAB,
                     rng=torch.Generator().manual_seed(8), prompts=prompts)
    minimum = batch * rollout_num * length * (length - 1) // 2 + sum(1 + len(p) + length - 1 for p in batch_rows)
    assert engine.counter.generator_positions <= 1.1 * minimum
    assert engine.counter.scored_sequences == batch * rollout_num * (length - 1) + batch
    assert rewards.shape == (batch, length)


@pytest.mark.parametrize("name", ["lstm", "gpt2"])
def test_policy_log_probs_cover_completion_tokens_after_each_rows_prompt(name):
    """The g-step's teacher-forced logits: one per completion token, each row as if it were alone."""
    model = MODELS[name]()
    algorithm = types.SimpleNamespace(engine=RolloutEngine(BOS, 4, 2),
                                      runtime=types.SimpleNamespace(autocast=contextlib.nullcontext))
    sequences = torch.tensor([[3, 4, 5, 6], [7, 8, 9, 10], [11, 12, 13, 14]])
    with torch.no_grad():
        batched = SeqGAN.policy_logits(algorithm, model, sequences, _prompts())
        assert batched.shape == (3, 4, VOCAB)
        for b, prompt in enumerate(PROMPTS):
            context = torch.tensor([[BOS, *prompt, *sequences[b, :-1].tolist()]])
            alone = model(input_ids=context).logits[:, len(prompt) :]
            torch.testing.assert_close(batched[b : b + 1], alone, rtol=0, atol=1e-5)


def test_reward_stride_rolls_out_every_kth_prefix_and_fills_the_tokens_between():
    """Stride k: the rolled-out prefixes get exactly the stride-1 rewards (same random numbers); a token between
    takes the next rolled-out prefix's reward, the last ones the final reward; the generator does less work."""
    model = MODELS["gpt2"]()
    length, rollout_num = 8, 3
    every = RolloutEngine(BOS, length, rollout_num)
    strided = RolloutEngine(BOS, length, rollout_num, reward_stride=3)
    assert strided.prefix_lengths(length).tolist() == [3, 6]
    sequences = every.sample(model, 4, rng=torch.Generator().manual_seed(9))

    def score(rows):
        return torch.sigmoid(rows.float().sum(-1) - 4 * length)

    every.counter.reset()
    reference = every(model, sequences, score, rng=torch.Generator().manual_seed(10))
    rewards = strided(model, sequences, score, rng=torch.Generator().manual_seed(10))
    # token t (1-based) takes prefix 3 for t = 1..3, prefix 6 for t = 4..6, the final reward for t = 7, 8
    expected = torch.stack([reference[:, 2]] * 3 + [reference[:, 5]] * 3 + [reference[:, 7]] * 2, dim=1)
    torch.testing.assert_close(rewards, expected, rtol=0, atol=1e-6)
    assert strided.counter.generator_positions < 0.5 * every.counter.generator_positions
    assert strided.counter.scored_sequences == 4 * rollout_num * 2 + 4


def test_a_bad_reward_stride_is_refused():
    with pytest.raises(ValueError, match="reward_stride=0"):
        RolloutEngine(BOS, 5, 2, reward_stride=0)


EOS = 2


@pytest.mark.parametrize("name", ["lstm", "gpt2"])
@pytest.mark.parametrize("prefix_sharing", [True, False])
def test_prefixes_that_already_hold_eos_are_not_rolled_out_and_keep_their_rewards(name, prefix_sharing):
    """A prefix holding EOS is a finished sequence: with the engine told the EOS, its rollouts are skipped and it
    takes the sequence's own reward, which every rollout of it scores anyway under a reward that cuts at EOS."""
    model, discriminator = MODELS[name](), _pair_discriminator()
    length, rollout_num = 7, 3
    sequences = torch.tensor([[7, EOS, 9, 9, 4, 3, 5], [6, 8, 4, EOS, 3, 3, 3], [5, 6, 7, 8, 9, 10, 11],
                              [EOS, 4, 4, 4, 4, 4, 4]])
    prompts = _prompts([[4, 11], [], [5, 9, 3], [8]])
    every, skipping = RolloutEngine(BOS, length, rollout_num), RolloutEngine(BOS, length, rollout_num, eos_token_id=EOS)
    finished = skipping.finished_prefixes(sequences)
    assert finished.tolist()[0] == [False, True, True, True, True, True]  # EOS is token 2: prefixes of 2+ tokens
    reference = every.rollouts(model, sequences, torch.Generator().manual_seed(5), prompts)
    rollouts = skipping.rollouts(model, sequences, torch.Generator().manual_seed(5), prompts)
    assert every.counter.generator_positions > skipping.counter.generator_positions
    expanded = finished[:, None, :, None].expand_as(rollouts)
    assert torch.equal(rollouts[~expanded], reference[~expanded])  # the others: the same completions
    assert torch.equal(rollouts[expanded], sequences[:, None, None, :].expand_as(rollouts)[expanded])
    every.counter.reset()
    full = every.rewards(reference, sequences, _pair_reward(discriminator, prefix_sharing), prompts)
    rewards = skipping.rewards(rollouts, sequences, _pair_reward(discriminator, prefix_sharing), prompts)
    torch.testing.assert_close(rewards, full, rtol=0, atol=1e-5)
    assert skipping.counter.scored_sequences == rollout_num * int((~finished).sum()) + 4
    assert skipping.counter.discriminator_positions < every.counter.discriminator_positions
