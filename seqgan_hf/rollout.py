"""Monte Carlo rollouts: SeqGAN's per-token rewards, computed with as little generator work as possible.

For a batch of B sampled sequences y_1..y_T and N rollouts, the reward of token y_t (t < T) is the mean,
over the N completions of the prefix y_1..y_t, of the discriminator's P(real); the last token's reward is
P(real) of the sequence itself. The mean is taken over rollouts, never over the batch (a known bug of
ports that reshape without transposing).

Work done here, and why it is the minimum:

* the state after every prefix is computed once, in one pass over the B sequences (LSTM hidden state, or a
  transformer's KV cache through the standard `cache` interface), and reused by all N rollouts;
* each rollout then only samples its own T - t tokens: B * N * T(T-1)/2 sampled positions in all;
* every complete sequence is scored by the discriminator exactly once, in batches.

Randomness is drawn up front as one uniform number per sampled token and turned into a token by inverse-CDF
sampling. Because no row's draw depends on which other rows share its forward pass, the rewards are the same
whatever `rollout_batch_size` is (it only bounds memory).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .models.lstm import LSTMState

ScoreFn = Callable[[torch.LongTensor], torch.Tensor]


@dataclass
class WorkCounter:
    """Counts the token positions the generator processes (for tests and benchmarks)."""

    generator_positions: int = 0
    scored_sequences: int = 0

    def reset(self) -> None:
        self.generator_positions = 0
        self.scored_sequences = 0


def sample_from_logits(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float = 1.0) -> torch.LongTensor:
    """Inverse-CDF sampling: token = first index whose cumulative probability exceeds `uniforms`.

    `logits` [R, V], `uniforms` [R] in [0, 1). Equivalent in distribution to `torch.multinomial`, but each
    row's token depends only on its own uniform number, which makes results independent of batching.
    """
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    cdf = probs.cumsum(dim=-1)
    targets = (uniforms.to(cdf.dtype) * cdf[:, -1]).unsqueeze(-1)
    tokens = torch.searchsorted(cdf, targets, right=True).squeeze(-1)
    return tokens.clamp_(max=logits.shape[-1] - 1)


def _is_recurrent(model: torch.nn.Module) -> bool:
    return callable(getattr(model, "prefix_states", None)) and callable(getattr(model, "step", None))


def _with_bos(sequences: torch.LongTensor, bos_token_id: int) -> torch.LongTensor:
    bos = sequences.new_full((sequences.shape[0], 1), bos_token_id)
    return torch.cat([bos, sequences], dim=1)


class RolloutEngine:
    """Samples sequences and computes their per-token Monte Carlo rewards.

    Args:
        bos_token_id: the start token fed before every sequence.
        sequence_length: T, the number of tokens sampled after the start token.
        rollout_num: N, completions per prefix.
        temperature: sampling temperature of the policy.
        rollout_batch_size: most rows per generator forward during rollouts (bounds memory only).
        score_batch_size: most sequences per discriminator forward.
    """

    def __init__(
        self,
        bos_token_id: int,
        sequence_length: int,
        rollout_num: int,
        temperature: float = 1.0,
        rollout_batch_size: int = 4096,
        score_batch_size: int = 4096,
    ):
        self.bos_token_id = bos_token_id
        self.sequence_length = sequence_length
        self.rollout_num = rollout_num
        self.temperature = temperature
        self.rollout_batch_size = rollout_batch_size
        self.score_batch_size = score_batch_size
        self.counter = WorkCounter()

    # ---- sampling ------------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self, model: torch.nn.Module, batch_size: int, generator: torch.Generator | None = None
    ) -> torch.LongTensor:
        """Sample `batch_size` sequences of length T from `model` (start token not included)."""
        device = next(model.parameters()).device
        length = self.sequence_length
        uniforms = torch.rand(batch_size, length, generator=generator, device=_rng_device(generator, device))
        uniforms = uniforms.to(device)
        tokens = torch.empty(batch_size, length, dtype=torch.long, device=device)
        current = torch.full((batch_size,), self.bos_token_id, dtype=torch.long, device=device)
        if _is_recurrent(model):
            state = None
            for position in range(length):
                self.counter.generator_positions += batch_size
                logits, state = model.step(current, state)
                current = sample_from_logits(logits, uniforms[:, position], self.temperature)
                tokens[:, position] = current
            return tokens
        cache = None
        for position in range(length):
            context = _with_bos(tokens[:, :position], self.bos_token_id)
            logits, cache = self._forward_last(model, context, cache)
            tokens[:, position] = sample_from_logits(logits, uniforms[:, position], self.temperature)
        return tokens

    # ---- rewards ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def rollouts(
        self, model: torch.nn.Module, sequences: torch.LongTensor, generator: torch.Generator | None = None
    ) -> torch.LongTensor:
        """Complete every proper prefix of every sequence `rollout_num` times.

        Returns [B, N, T-1, T]: entry [b, n, t-1] is sequence b's first t tokens followed by the n-th
        sampled completion of that prefix.
        """
        batch_size, length = sequences.shape
        if length != self.sequence_length:
            raise ValueError(f"sequences have length {length}; the engine was built for {self.sequence_length}.")
        device = sequences.device
        # One uniform per (sequence, rollout, prefix, sampled token): the whole random stream, drawn up front.
        uniforms = torch.rand(
            batch_size, self.rollout_num, length - 1, length - 1,
            generator=generator, device=_rng_device(generator, device),
        ).to(device)
        completed = sequences[:, None, None, :].expand(-1, self.rollout_num, length - 1, -1).clone()
        if length < 2:
            return completed
        if _is_recurrent(model):
            self._recurrent_rollouts(model, sequences, uniforms, completed)
        else:
            self._cached_rollouts(model, sequences, uniforms, completed)
        return completed

    def _recurrent_rollouts(self, model, sequences, uniforms, completed) -> None:
        """Recurrent models: all prefixes of all sequences advance together, in a "staircase".

        Rows are ordered so that prefixes needing the most tokens come first; at sampling step s only the
        rows that still need tokens are fed, so no position is computed twice or wasted.
        """
        batch_size, length = sequences.shape
        rollout_num = self.rollout_num
        # State and next-token logits after every prefix, from one pass over [BOS, y_1 .. y_{T-1}].
        self.counter.generator_positions += batch_size * length
        logits_all, h_all, c_all = model.prefix_states(_with_bos(sequences[:, :-1], self.bos_token_id))
        # Row r <-> (prefix length t, sequence b, rollout n), t ascending: row-major over [T-1, B, N].
        prefix_len = torch.arange(1, length, device=sequences.device).repeat_interleave(batch_size * rollout_num)
        seq_index = torch.arange(batch_size, device=sequences.device).repeat_interleave(rollout_num).repeat(length - 1)
        roll_index = torch.arange(rollout_num, device=sequences.device).repeat(batch_size * (length - 1))
        total_rows = prefix_len.numel()
        for start in range(0, total_rows, self.rollout_batch_size):
            rows = slice(start, min(start + self.rollout_batch_size, total_rows))
            t, b, n = prefix_len[rows], seq_index[rows], roll_index[rows]
            remaining = length - t  # tokens each row must sample; non-increasing along the chunk
            logits = logits_all[b, t]
            state = LSTMState(h_all[b, t], c_all[b, t])
            row_uniforms = uniforms[b, n, t - 1]
            active = t.numel()
            for step in range(int(remaining[0])):
                # Rows are sorted by `remaining`, so the ones still sampling are a prefix of the chunk.
                active = int((remaining[:active] > step).sum())
                tokens = sample_from_logits(logits[:active], row_uniforms[:active, step], self.temperature)
                completed[b[:active], n[:active], t[:active] - 1, t[:active] + step] = tokens
                still = int((remaining[:active] > step + 1).sum())
                if still == 0:
                    break
                state = _slice_state(state, still)
                self.counter.generator_positions += still
                logits, state = model.step(tokens[:still], state)

    def _cached_rollouts(self, model, sequences, uniforms, completed) -> None:
        """Any causal LM: reuse the KV cache of the full sequence, cropped to each prefix.

        Models that return no cache fall back to re-encoding the context at every step (correct, slower).
        """
        batch_size, length = sequences.shape
        rollout_num = self.rollout_num
        context = _with_bos(sequences[:, :-1], self.bos_token_id)
        self.counter.generator_positions += context.numel()
        output = model(input_ids=context, use_cache=True)
        logits_all, full_cache = output.logits, getattr(output, "cache", None)
        seq_index = torch.arange(batch_size, device=sequences.device).repeat_interleave(rollout_num)
        roll_index = torch.arange(rollout_num, device=sequences.device).repeat(batch_size)
        for prefix in range(1, length):
            for start in range(0, seq_index.numel(), self.rollout_batch_size):
                b = seq_index[start : start + self.rollout_batch_size]
                n = roll_index[start : start + self.rollout_batch_size]
                cache = None
                if full_cache is not None:
                    # Keep BOS + y_1..y_prefix, one copy of the cache per row (rows repeat their sequence).
                    cache = copy.deepcopy(full_cache)
                    cache.crop(-(length - prefix - 1))  # negative = tokens to drop
                    cache.batch_select_indices(b)
                logits = logits_all[b, prefix]
                row_uniforms = uniforms[b, n, prefix - 1]
                rows = completed[b, n, prefix - 1]  # [R, T] copy, written back below
                for step in range(length - prefix):
                    tokens = sample_from_logits(logits, row_uniforms[:, step], self.temperature)
                    rows[:, prefix + step] = tokens
                    if prefix + step + 1 == length:
                        break
                    logits, cache = self._forward_last(
                        model, _with_bos(rows[:, : prefix + step + 1], self.bos_token_id), cache
                    )
                completed[b, n, prefix - 1] = rows

    def _forward_last(self, model, context: torch.LongTensor, cache):
        """Next-token logits after `context` ([R, L] with BOS); with a cache only the last token is fed."""
        inputs = context[:, -1:] if cache is not None else context
        self.counter.generator_positions += inputs.numel()
        output = model(input_ids=inputs, cache=cache, use_cache=True)
        return output.logits[:, -1], getattr(output, "cache", None)

    @torch.no_grad()
    def rewards(
        self, rollouts: torch.LongTensor, sequences: torch.LongTensor, score_fn: ScoreFn
    ) -> torch.Tensor:
        """Per-token rewards Q [B, T] from completed rollouts [B, N, T-1, T] and the sequences [B, T].

        `score_fn` maps sequences [R, T] to P(real) [R]. Each complete sequence is scored once.
        """
        batch_size, rollout_num, prefixes, length = rollouts.shape
        flat = torch.cat([rollouts.reshape(-1, length), sequences], dim=0)
        scores = torch.cat([score_fn(chunk) for chunk in flat.split(self.score_batch_size)]).float()
        self.counter.scored_sequences += flat.shape[0]
        rollout_scores = scores[: batch_size * rollout_num * prefixes].view(batch_size, rollout_num, prefixes)
        final_scores = scores[batch_size * rollout_num * prefixes :]
        # Average over the rollout axis (dim 1) of [B, N, T-1]: each prefix gets the mean of its own completions.
        return torch.cat([rollout_scores.mean(dim=1), final_scores.unsqueeze(1)], dim=1)

    def __call__(
        self,
        model: torch.nn.Module,
        sequences: torch.LongTensor,
        score_fn: ScoreFn,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Rewards Q [B, T] for `sequences` under rollout policy `model` and discriminator `score_fn`."""
        return self.rewards(self.rollouts(model, sequences, generator), sequences, score_fn)


def _rng_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    return generator.device if generator is not None else device


def _slice_state(state: LSTMState, rows: int) -> LSTMState:
    return LSTMState(state.h[:rows], state.c[:rows])
