"""Reward sources: what turns a complete sequence into a reward in [0, 1].

SeqGAN rewards a complete sequence Y with the discriminator's P(real | Y) and every earlier token with the mean
reward of its Monte Carlo completions (`seqgan_hf.rollout`). The discriminator is one reward source among others:

* [`DiscriminatorReward`]: P(real) under the trained discriminator (SeqGAN), or under a frozen classifier;
* [`BleuReward`]: sentence BLEU against the training set (PG-BLEU, the paper's baseline);
* [`FunctionReward`]: a user's function, called as TRL calls `reward_funcs`:
  `func(completions=[...], completion_ids=[[...], ...]) -> list[float]`;
* [`RewardMix`]: a weighted mean of several sources (`SeqGANConfig.reward_weights`).

A source maps token ids [R, T] (cut after their first EOS by the source where it matters) to rewards [R]. The
rollout engine asks for the rewards of all completions at once through `rollout_rewards`, which a source may
override with a faster path (the discriminator's prefix sharing).

With prompts, sources are called as `source(sequences, prompts=...)` ([`~seqgan_hf.prompts.Prompts`], one per
row): the discriminator judges each completion with its prompt, and a reward function gets the prompts' texts as
`prompts=[...]` (as TRL passes them). `BleuReward` and `TensorReward` score the completion alone.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .data import strip_after_eos
from .discriminator import DiscriminatorAdapter
from .prefix_sharing import PrefixSharing
from .prompts import Prompts

#: `rows_per_forward(length)`: how many sequences of `length` tokens one scoring call may take.
RowsPerForward = Callable[[int], int]


@dataclass
class WorkCounter:
    """Counts the work of reward computations (for tests and benchmarks).

    `generator_positions`: token positions fed through the generator; `generator_calls`: generator forwards
    (or recurrent steps); `scored_sequences`: sequences given a reward; `discriminator_positions`: token
    positions fed through the discriminator (fewer than scored_sequences * T when prefixes are shared).
    """

    generator_positions: int = 0
    generator_calls: int = 0
    scored_sequences: int = 0
    discriminator_positions: int = 0

    def reset(self) -> None:
        self.generator_positions = 0
        self.generator_calls = 0
        self.scored_sequences = 0
        self.discriminator_positions = 0


class RewardSource:
    """Maps complete sequences to rewards in [0, 1]; subclass it and implement `__call__`.

    Attributes:
        name: a short name for logs and error messages.
    """

    name: str = "reward"

    def __call__(self, sequences: torch.LongTensor, prompts: Prompts | None = None) -> torch.Tensor:
        """Rewards [R] (float, in [0, 1]) of complete sequences [R, T] of generator token ids (completions of
        `prompts`, one per row, when given)."""
        raise NotImplementedError

    @torch.no_grad()
    def rollout_rewards(
        self,
        rollouts: torch.LongTensor,
        sequences: torch.LongTensor,
        rows_per_forward: RowsPerForward,
        counter: WorkCounter | None = None,
        prompts: Prompts | None = None,
        prefix_lengths: torch.LongTensor | None = None,
        finished: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Rewards of every completion and sampled sequence, flat: [B * N * P + B], completions in [B, N, P]
        order, then the sequences. `rollouts` [B, N, P, T] (entry [b, n, i]: sequence b's first
        `prefix_lengths[i]` tokens, default i + 1, then a sampled completion), `sequences` [B, T], `prompts`
        (None, or one per sequence). `finished` [B, P] (optional): prefixes that already hold EOS, whose
        completions are the sequence itself: they take the sequence's reward without being scored again."""
        batch_size, rollout_num, prefixes, length = rollouts.shape
        completions = batch_size * rollout_num * prefixes
        device = rollouts.device
        flat = torch.cat([rollouts.reshape(-1, length), sequences])
        # The sequence each flat row belongs to: completions (b, n, i) at (b * N + n) * P + i, then the sequences.
        owners = torch.cat([torch.arange(batch_size, device=device).repeat_interleave(rollout_num * prefixes),
                            torch.arange(batch_size, device=device)])
        scored_rows = None
        if finished is not None and bool(finished.any()):  # score the others only
            skip = finished.to(device)[:, None, :].expand(-1, rollout_num, -1).reshape(-1)
            scored_rows = torch.cat([(~skip).nonzero().squeeze(1),
                                     torch.arange(completions, completions + batch_size, device=device)])
            flat = flat[scored_rows]
        scored_owners = owners if scored_rows is None else owners[scored_rows]
        flat_prompts = None if prompts is None else prompts.select(scored_owners.to(prompts.input_ids.device))
        scored = self.rewards_in_chunks(flat, rows_per_forward, counter, flat_prompts)
        if scored_rows is None:
            return scored
        rewards = scored[-batch_size:][owners]  # every row its sequence's reward, then the scored ones their own
        rewards[scored_rows] = scored
        return rewards

    def rewards_in_chunks(
        self, flat: torch.LongTensor, rows_per_forward: RowsPerForward, counter: WorkCounter | None = None,
        prompts: Prompts | None = None,
    ) -> torch.Tensor:
        """`self(flat)` (with `prompts`, one per row, when given), `rows_per_forward(T)` rows per call."""
        chunk_rows = rows_per_forward(flat.shape[1])
        # Each chunk's rewards go straight into one buffer: holding every chunk's small result tensor until a
        # final cat fragmented the heap (peak RSS grew with the number of chunks, ~1 GB at T=80 on CPU).
        rewards = torch.empty(flat.shape[0], dtype=torch.float32, device=flat.device)
        for start in range(0, flat.shape[0], chunk_rows):
            chunk = flat[start : start + chunk_rows]
            chunk_prompts = None if prompts is None else prompts.select(slice(start, start + chunk.shape[0]))
            values = _call(self, chunk, chunk_prompts)
            rewards[start : start + chunk.shape[0]] = values.float().to(flat.device)
        if counter is not None:
            counter.scored_sequences += flat.shape[0]
        return rewards


class TensorReward(RewardSource):
    """A function of token-id tensors, `func(sequences [R, T]) -> rewards [R]`, as a reward source.

    With prompts it still sees the completions alone (use a [`FunctionReward`] to read the prompts). It sees the
    raw ids, tokens after EOS included; a prefix that already holds EOS is not rolled out by an engine that knows
    the EOS (the trainer's), and takes the sequence's own reward."""

    def __init__(self, func: Callable[[torch.LongTensor], torch.Tensor], name: str | None = None):
        self.func = func
        self.name = name or getattr(func, "__name__", type(func).__name__)

    def __call__(self, sequences: torch.LongTensor, prompts: Prompts | None = None) -> torch.Tensor:
        return self.func(sequences)


class DiscriminatorReward(RewardSource):
    """P(real) under a sequence classifier: SeqGAN's reward from its discriminator, or a frozen reward model.

    Args:
        adapter: turns generator ids into the classifier's inputs and its logits into P(real).
        discriminator: returns the classifier to use now (a callable, so a runtime can swap in a replica).
        autocast: returns the mixed-precision context to run it under.
        prefix_sharing: score completions on a causal classifier's cached prefixes where that is exact
            (`seqgan_hf.prefix_sharing`); full forwards otherwise.
        name: the source's name in logs.
    """

    def __init__(
        self,
        adapter: DiscriminatorAdapter,
        discriminator: Callable[[], torch.nn.Module],
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        prefix_sharing: bool = True,
        name: str = "discriminator",
    ):
        self.adapter = adapter
        self.discriminator = discriminator
        self.autocast = autocast
        self.name = name
        self.prefix_sharing = PrefixSharing(adapter, discriminator, autocast) if prefix_sharing else None

    def __call__(self, sequences: torch.LongTensor, prompts: Prompts | None = None) -> torch.Tensor:
        with self.autocast():
            return self.adapter.real_probabilities(self.discriminator(), sequences, prompts)

    @torch.no_grad()
    def rollout_rewards(self, rollouts, sequences, rows_per_forward, counter=None, prompts=None,
                        prefix_lengths=None, finished=None) -> torch.Tensor:
        if self.prefix_sharing is not None and rollouts.shape[2]:
            if prefix_lengths is None:
                prefix_lengths = torch.arange(1, rollouts.shape[2] + 1, device=rollouts.device)
            shared = self.prefix_sharing.rollout_probabilities(rollouts, sequences, rows_per_forward, prompts,
                                                               prefix_lengths, finished)
            if shared is not None:
                rewards, positions = shared
                if counter is not None:  # finished prefixes took their sequence's reward without a score
                    skipped = 0 if finished is None else int(finished.sum()) * rollouts.shape[1]
                    counter.scored_sequences += rewards.numel() - skipped
                    counter.discriminator_positions += positions
                return rewards
        return super().rollout_rewards(rollouts, sequences, rows_per_forward, counter, prompts, prefix_lengths,
                                       finished)

    def rewards_in_chunks(self, flat, rows_per_forward, counter=None, prompts=None) -> torch.Tensor:
        if counter is not None:
            # The discriminator reads each row at the pair width: the prompt room, then the completion.
            prompt_width = 0 if prompts is None else (self.adapter.prompt_width if self.adapter.prompt_width is not None
                                                      else prompts.width - 1)
            counter.discriminator_positions += flat.shape[0] * (flat.shape[1] + prompt_width)
        return super().rewards_in_chunks(flat, rows_per_forward, counter, prompts)


class BleuReward(RewardSource):
    """Sentence BLEU of each sequence against a fixed reference corpus (PG-BLEU: the training set).

    nltk's smoothing method 1 with epsilon `smoothing`, uniform weights up to `max_order`, the whole corpus as
    one multi-reference set (see `seqgan_hf.metrics`). Sequences are cut after their first EOS; EOS and padding
    are not scored as tokens.
    """

    name = "bleu"

    def __init__(self, references: Sequence[Sequence[int]], max_order: int, smoothing: float,
                 eos_token_id: int | None, pad_token_id: int | None):
        from .metrics import BleuReferences

        self.max_order = max_order
        self.smoothing = smoothing
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.references = BleuReferences(references, max_order)

    def __call__(self, sequences: torch.LongTensor, prompts: Prompts | None = None) -> torch.Tensor:
        """Sentence BLEU of each completion alone (prompts are not part of the references)."""
        from .metrics import sentence_bleu_rewards

        tokens = strip_after_eos(sequences.cpu(), self.eos_token_id, self.pad_token_id)
        rewards = sentence_bleu_rewards(tokens, self.references, self.max_order, self.smoothing)
        return torch.tensor(rewards, dtype=torch.float32, device=sequences.device)


class FunctionReward(RewardSource):
    """A plain Python reward function, called the way TRL calls its `reward_funcs`.

    `func(completions=..., completion_ids=..., **kwargs)` gets, for R complete sequences, `completion_ids` (R
    lists of token ids, cut after the first EOS, EOS and padding dropped) and `completions` (their decoded
    texts when the trainer has a tokenizer, else the same id lists), and returns R floats in [0, 1] (a list, a
    NumPy array or a tensor). With prompts it also gets `prompts` (their decoded texts, or id lists without a
    tokenizer). Declare `**kwargs`: more keyword arguments may be passed in later versions.

    Raises:
        ValueError: at call time, when `func` returns the wrong number of rewards, a non-finite one or one
            outside [0, 1] (the message names the function).
    """

    def __init__(self, func: Callable, tokenizer=None, eos_token_id: int | None = None,
                 pad_token_id: int | None = None, name: str | None = None):
        self.func = func
        self.tokenizer = tokenizer
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.name = name or getattr(func, "__name__", type(func).__name__)

    def __call__(self, sequences: torch.LongTensor, prompts: Prompts | None = None) -> torch.Tensor:
        completion_ids = strip_after_eos(sequences.cpu(), self.eos_token_id, self.pad_token_id)
        completions = (self.tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
                       if self.tokenizer is not None else completion_ids)
        extra = {}
        if prompts is not None:
            prompt_ids = prompts.token_lists()
            extra["prompts"] = (self.tokenizer.batch_decode(prompt_ids, skip_special_tokens=True)
                                if self.tokenizer is not None else prompt_ids)
        values = self.func(completions=completions, completion_ids=completion_ids, **extra)
        rewards = torch.as_tensor(values, dtype=torch.float32).reshape(-1) if values is not None else None
        if rewards is None or rewards.numel() != len(completion_ids):
            got = "None" if rewards is None else f"{rewards.numel()} values"
            raise ValueError(f"reward function {self.name!r} returned {got} for {len(completion_ids)} completions: "
                             "return one float in [0, 1] per completion.")
        if not bool(torch.isfinite(rewards).all()) or bool((rewards < 0).any() | (rewards > 1).any()):
            bad = rewards[~torch.isfinite(rewards) | (rewards < 0) | (rewards > 1)][:3].tolist()
            raise ValueError(f"reward function {self.name!r} returned {bad}: rewards must be finite and in [0, 1] "
                             "(scale or clip them, e.g. min(1.0, value / maximum)).")
        return rewards.to(sequences.device)


class RewardMix(RewardSource):
    """The weighted mean sum_i w_i r_i / sum_i w_i of several reward sources: stays in [0, 1].

    Each source scores every completion (the discriminator with its fast path), then the rewards are mixed.
    """

    name = "mix"

    def __init__(self, sources: Sequence[RewardSource], weights: Sequence[float]):
        if len(sources) != len(weights):
            raise ValueError(f"{len(sources)} reward sources but {len(weights)} weights: give one weight each.")
        total = float(sum(weights))
        self.sources = list(sources)
        self.weights = [float(weight) / total for weight in weights]

    def __call__(self, sequences: torch.LongTensor, prompts: Prompts | None = None) -> torch.Tensor:
        return sum(weight * _call(source, sequences, prompts).float()
                   for source, weight in zip(self.sources, self.weights))

    @torch.no_grad()
    def rollout_rewards(self, rollouts, sequences, rows_per_forward, counter=None, prompts=None,
                        prefix_lengths=None, finished=None) -> torch.Tensor:
        return sum(weight * source.rollout_rewards(rollouts, sequences, rows_per_forward, counter, prompts,
                                                   prefix_lengths, finished)
                   for source, weight in zip(self.sources, self.weights))


def _call(source: RewardSource, sequences: torch.LongTensor, prompts: Prompts | None) -> torch.Tensor:
    """`source(sequences)`, with `prompts=` only when there are prompts (a source written for prompt-less
    training may take no such argument)."""
    return source(sequences) if prompts is None else source(sequences, prompts=prompts)


def build_reward(
    reward_funcs,
    reward_weights: Sequence[float] | None,
    discriminator_reward: DiscriminatorReward | None,
    tokenizer=None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    prefix_sharing: bool = True,
    with_prompts: bool = False,
    prompt_width: int | None = None,
) -> RewardSource | None:
    """The trainer's reward source from its `reward_funcs` argument (None: the discriminator alone).

    `reward_funcs` is one entry or a list of entries, each one of: the string `"discriminator"` (the trained
    discriminator's P(real)); a [`RewardSource`]; a sequence classifier (`num_labels` 1 or 2, the generator's
    vocabulary), used frozen; or a function, called as [`FunctionReward`] describes. Several entries are mixed
    by `reward_weights` (default: equal weights) into their weighted mean. `with_prompts`: the data has prompts,
    so functions are also called with `prompts=`, and classifiers read (prompt, completion) pairs `prompt_width` +
    T tokens wide.
    """
    if reward_funcs is None:
        return discriminator_reward
    entries = list(reward_funcs) if isinstance(reward_funcs, list | tuple) else [reward_funcs]
    if not entries:
        raise ValueError("reward_funcs is empty: pass None (the discriminator's reward) or at least one reward.")
    sources = []
    for index, entry in enumerate(entries):
        where = f"reward_funcs[{index}]"
        if isinstance(entry, str):
            if entry != "discriminator":
                raise ValueError(f"{where} is the string {entry!r}; the only string accepted is 'discriminator' (the "
                                 "trained discriminator's reward). Load a reward model first and pass the model.")
            if discriminator_reward is None:
                raise ValueError(f"{where} is 'discriminator' but the trainer has no discriminator: pass "
                                 "discriminator=... or drop it from reward_funcs.")
            sources.append(discriminator_reward)
        elif isinstance(entry, RewardSource):
            sources.append(entry)
        elif isinstance(entry, torch.nn.Module) and hasattr(getattr(entry, "config", None), "num_labels"):
            sources.append(_classifier_reward(entry, where, pad_token_id, eos_token_id, prefix_sharing, prompt_width))
        elif callable(entry):
            _check_signature(entry, where, with_prompts)
            sources.append(FunctionReward(entry, tokenizer, eos_token_id, pad_token_id))
        else:
            raise TypeError(f"{where} is a {type(entry).__name__}: pass a function, a RewardSource, a sequence "
                            "classifier or 'discriminator'.")
    if reward_weights is not None and len(reward_weights) != len(sources):
        raise ValueError(f"reward_weights has {len(reward_weights)} values for {len(sources)} reward_funcs: give one "
                         "weight per reward function.")
    if len(sources) == 1:
        return sources[0]
    return RewardMix(sources, reward_weights if reward_weights is not None else [1.0] * len(sources))


def _classifier_reward(model: torch.nn.Module, where: str, pad_token_id, eos_token_id,
                       prefix_sharing: bool, prompt_width: int | None = None) -> DiscriminatorReward:
    """A frozen sequence classifier on the generator's token ids as a reward source: its P(label 1)."""
    config = model.config
    if config.num_labels not in (1, 2):
        raise ValueError(f"{where}: a classifier reward needs num_labels 1 (sigmoid) or 2 (label 1 = good), "
                         f"got {config.num_labels}.")
    model.eval().requires_grad_(False)
    model_pad = getattr(config, "pad_token_id", None)
    adapter = DiscriminatorAdapter(config.num_labels, eos_token_id, pad_token_id,
                                   model_pad if model_pad is not None else pad_token_id, prompt_width=prompt_width)
    return DiscriminatorReward(adapter, lambda: model, prefix_sharing=prefix_sharing, name=type(model).__name__)


def _check_signature(func: Callable, where: str, with_prompts: bool = False) -> None:
    """A reward function must accept the keyword arguments it is called with."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: find out at the first call
        return
    names = {p.name for p in parameters}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    needed = {"completions", "completion_ids"} | ({"prompts"} if with_prompts else set())
    missing = needed - names
    if missing:
        call = ", ".join(f"{name}=..." for name in sorted(needed))
        raise TypeError(f"{where} ({getattr(func, '__name__', func)!r}) is called as func({call}), but does not "
                        f"take {sorted(missing)}: add **kwargs to its parameters.")


__all__ = [
    "BleuReward",
    "DiscriminatorReward",
    "FunctionReward",
    "RewardMix",
    "RewardSource",
    "TensorReward",
    "WorkCounter",
    "build_reward",
]
