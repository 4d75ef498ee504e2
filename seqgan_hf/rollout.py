"""Monte Carlo rollouts: SeqGAN's per-token rewards, computed with as little generator work as possible.

For a batch of B sampled sequences y_1..y_T and N rollouts, the reward of token y_t (t < T) is the mean,
over the N completions of the prefix y_1..y_t, of the discriminator's P(real); the last token's reward is
P(real) of the sequence itself. The mean is taken over rollouts, never over the batch (a known bug of
ports that reshape without transposing).

Work done here, and why it is the minimum:

* one teacher-forced pass over the B sequences gives the state after every prefix (LSTM hidden state, or a
  transformer's KV cache through the standard `cache` interface) *and* the next-token logits after every
  prefix, so each rollout's first token is sampled without any generator call;
* every rollout then feeds only its own sampled tokens: B * N * (T-1)(T-2)/2 positions in all, in forwards
  that mix rollouts of all N copies and of many prefixes (rows of different prefix lengths share one
  forward: a "staircase", rows that finish early simply drop out);
* every complete sequence gets its reward exactly once, from a reward source (`seqgan_hf.rewards`), in batches;
  a causal discriminator with a KV cache (`prefix_sharing.PrefixSharing`) encodes each prefix once and feeds
  completions only their own tokens.

Randomness is drawn up front as one uniform number per sampled token and turned into a token by inverse-CDF
sampling, with kernels whose per-row result does not depend on the other rows of the batch. So the rewards
are the same whatever `rollout_batch_size` is (it only bounds memory).

Prompts (`seqgan_hf.prompts`): every row may continue its own prompt. A batch's prompts are left-padded, so the
completions start at one column for all rows; the pads are masked and skipped by the positions (a recurrent model
holds its state over them), which keeps a row's tokens and rewards what they are alone. With `reward_stride` k only
the completion prefixes of k, 2k, ... tokens are rolled out (`prefix_lengths`); the tokens between take the next
rolled-out prefix's reward (`reward_positions`). With `eos_token_id`, a prefix that already holds EOS is finished:
it is neither rolled out nor scored, and takes the sequence's own reward (`finished_prefixes`).

Three paths, picked per model:

* recurrent (`prefix_states` / `step`, e.g. `LSTMForCausalLM`): states gathered per row, one step per token;
* cached (any causal LM returning a `DynamicCache` of plain attention layers): every rollout row gets its own
  fixed-length cache buffer of T positions holding its sequence's full-pass keys/values for the prefix; the
  row's own tokens are written at the positions after its prefix (no O(T) concatenation per token), the
  attention mask hides the positions not yet written, and explicit `position_ids` place new tokens right after
  the prefix. The layout of a row never depends on the other rows of its chunk, which keeps the results
  independent of chunking;
* fallback (no cache, or a cache kind where hiding positions by mask is not valid, e.g. sliding windows or
  recurrent states): every step re-encodes the contiguous context. Correct for any causal LM, O(T^3).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from .kv_cache import RolloutLayer, maskable_cache, prefix_buffer
from .models.lstm import LSTMState
from .prompts import Prompts, position_ids
from .rewards import RewardSource, TensorReward, WorkCounter
from .sampling import SamplingDistribution

__all__ = ["RolloutEngine", "WorkCounter", "is_recurrent", "sample_from_logits"]

# Inverse-CDF sampling searches the vocabulary in two levels: blocks of this many tokens, then within a block.
_CDF_BLOCK = 64
# On CPU the sampling passes run over sub-blocks of about this many logits (a few MB: they stay in cache).
_CPU_SAMPLE_ELEMENTS = 1 << 19
# On CPU a rollout forward produces at most about this many logits (rows x vocabulary: 16 MB in float32). glibc
# serves larger blocks (over 32 MB) by mmap, fresh zeroed pages on every step: for the paper's LSTM (V=5000),
# 4096-row chunks took ~0.93 million minor page faults per reward computation and 1.6x the time of 838-row ones
# (benchmarks/chunking.py).
_CPU_ROLLOUT_LOGITS = 1 << 22
# On CPU discriminator forwards take about this many tokens at a time: measured 1.5-2.5x faster than
# 4096-sequence batches for the paper's CNN and a small GPT-2 classifier (activations stay in cache).
_CPU_SCORE_TOKENS = 1 << 13


def sample_from_logits(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
                       top_p: float = 1.0) -> torch.LongTensor:
    """Inverse-CDF sampling: token = first index whose cumulative probability exceeds `uniforms`.

    `logits` [R, V], `uniforms` [R] in [0, 1); the distribution is `SamplingDistribution(temperature, top_k,
    top_p)`. Equivalent in distribution to `torch.multinomial`, but each row's token depends only on its own
    logits and uniform number, which makes results independent of batching.
    """
    logits = SamplingDistribution(temperature, top_k, top_p).logits(logits)
    # softmax works row by row (max, exp-sum, scale fused per row): a row's result ignores the other rows.
    return _inverse_cdf(torch.softmax(logits, dim=-1), uniforms)


def _inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.LongTensor:
    """Token index where the CDF of `probs` [R, V] crosses `uniforms` [R] * total mass.

    A full cumulative sum over V is a sequential (unvectorised) pass; instead the vocabulary is cut into blocks
    of `_CDF_BLOCK` tokens: one vectorised pass sums each block, the CDF over block masses (V/64 entries) picks
    the block, and a CDF over that block's 64 probabilities picks the token. The small CDFs are accumulated in
    float64 so that they agree with each other to far below float32 resolution.
    """
    rows, vocab = probs.shape
    full = vocab - vocab % _CDF_BLOCK
    masses = probs[:, :full].unflatten(1, (-1, _CDF_BLOCK)).sum(-1)
    if full < vocab:
        masses = torch.cat([masses, probs[:, full:].sum(-1, keepdim=True)], dim=1)
    masses = masses.double()
    cdf = masses.cumsum(-1)
    target = (uniforms.double() * cdf[:, -1]).unsqueeze(1)
    block = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[1] - 1)
    residual = target - (cdf.gather(1, block) - masses.gather(1, block))
    columns = block * _CDF_BLOCK + torch.arange(_CDF_BLOCK, device=probs.device)
    inside = probs.gather(1, columns.clamp(max=vocab - 1)).double()
    inside = inside.masked_fill_(columns >= vocab, 0.0).cumsum(-1)
    offset = torch.searchsorted(inside, residual, right=True).clamp_(max=_CDF_BLOCK - 1)
    return (block * _CDF_BLOCK + offset).squeeze(1).clamp_(max=vocab - 1)


def is_recurrent(model: torch.nn.Module) -> bool:
    """True for generators with the recurrent rollout interface (`prefix_states` / `step`, e.g. the LSTM)."""
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
        temperature, top_k, top_p: the policy's sampling distribution (`seqgan_hf.sampling`), used for the
            sequences and for every rollout token.
        rollout_batch_size: most rows per generator forward during rollouts (bounds memory only).
        score_batch_size: most sequences per discriminator forward.
        sample_block_rows: rows per sampling pass over the vocabulary; None picks a cache-sized block on CPU
            and the whole batch on accelerators; 0 never splits. Never changes results.
        score_block_tokens: on CPU, discriminator forwards are further capped to about this many tokens
            (None: 8192; 0: no cap, `score_batch_size` only). Ignored on accelerators.
        rollout_block_logits: on CPU, rollout forwards are further capped to about this many logits, rows times
            vocabulary (None: 4M; 0: no cap, `rollout_batch_size` only). Ignored on accelerators. Never changes
            results.
        reward_stride: k; Monte Carlo rewards only for completion prefixes of k, 2k, ... tokens; every other token
            takes the reward of the next prefix computed (or the final reward). 1: every token (the paper).
        eos_token_id: a prefix that already holds this token is a finished sequence: it is not rolled out, and
            its reward is the sequence's own (what every rollout of it scores under a reward that cuts at EOS, as
            the discriminator, BLEU and reward functions do). None: every prefix is rolled out.
    """

    def __init__(
        self,
        bos_token_id: int,
        sequence_length: int,
        rollout_num: int,
        temperature: float = 1.0,
        rollout_batch_size: int = 4096,
        score_batch_size: int = 4096,
        sample_block_rows: int | None = None,
        score_block_tokens: int | None = None,
        rollout_block_logits: int | None = None,
        top_k: int = 0,
        top_p: float = 1.0,
        reward_stride: int = 1,
        eos_token_id: int | None = None,
    ):
        if reward_stride < 1:
            raise ValueError(f"reward_stride={reward_stride}: Monte Carlo rewards need a stride of at least 1.")
        self.bos_token_id = bos_token_id
        self.reward_stride = reward_stride
        self.eos_token_id = eos_token_id
        self.sequence_length = sequence_length
        self.rollout_num = rollout_num
        self.distribution = SamplingDistribution(temperature, top_k, top_p)
        self.rollout_batch_size = rollout_batch_size
        self.score_batch_size = score_batch_size
        self.sample_block_rows = sample_block_rows
        self.score_block_tokens = score_block_tokens
        self.rollout_block_logits = rollout_block_logits
        self.counter = WorkCounter()

    # ---- sampling ------------------------------------------------------------------------------------

    def _sample(self, logits: torch.Tensor, uniforms: torch.Tensor) -> torch.LongTensor:
        """`sample_from_logits` over row blocks: on CPU the softmax/CDF passes then stay in cache."""
        rows, vocab = logits.shape
        block = self.sample_block_rows
        if block is None:
            block = max(8, _CPU_SAMPLE_ELEMENTS // vocab) if logits.device.type == "cpu" else rows
        if block <= 0 or rows <= block:
            return self._sample_block(logits, uniforms)
        return torch.cat([
            self._sample_block(logits[start : start + block], uniforms[start : start + block])
            for start in range(0, rows, block)
        ])

    def _sample_block(self, logits: torch.Tensor, uniforms: torch.Tensor) -> torch.LongTensor:
        return _inverse_cdf(torch.softmax(self.distribution.logits(logits), dim=-1), uniforms)

    @torch.no_grad()
    def sample(
        self, model: torch.nn.Module, batch_size: int, rng: torch.Generator | None = None,
        prompts: Prompts | None = None,
    ) -> torch.LongTensor:
        """Sample `batch_size` sequences of length T from `model` (start token not included), each continuing
        its row of `prompts` (None: the start token alone)."""
        device = next(model.parameters()).device
        prompts = self._prompts(prompts, batch_size, device)
        length = self.sequence_length
        uniforms = torch.rand(batch_size, length, generator=rng, device=_rng_device(rng, device))
        uniforms = uniforms.to(device)
        tokens = torch.empty(batch_size, length, dtype=torch.long, device=device)
        if is_recurrent(model):
            logits, state = self._recurrent_prompt(model, prompts)
            for position in range(length):
                tokens[:, position] = self._sample(logits, uniforms[:, position])
                if position + 1 < length:
                    self._count(batch_size)
                    logits, state = model.step(tokens[:, position], state)
            return tokens
        output = self._forward(model, prompts.input_ids, prompts)
        logits, cache = output.logits[:, -1], getattr(output, "cache", None)
        for position in range(length):
            tokens[:, position] = self._sample(logits, uniforms[:, position])
            if position + 1 == length:
                break
            if cache is None:  # a model without a cache re-reads its whole context
                output = self._forward(model, torch.cat([prompts.input_ids, tokens[:, : position + 1]], 1), prompts)
            else:  # only the new token; positions continue each row's own count
                output = self._forward(model, tokens[:, position : position + 1], prompts, cache=cache,
                                       fed_before=prompts.width + position)
            logits, cache = output.logits[:, -1], getattr(output, "cache", None)
        return tokens

    # ---- rollouts --------------------------------------------------------------------------------------

    def prefix_lengths(self, length: int, device: torch.device | None = None) -> torch.LongTensor:
        """The completion prefix lengths t whose rewards are estimated by rollouts: k, 2k, ... below T."""
        return torch.arange(self.reward_stride, length, self.reward_stride, device=device)

    def reward_positions(self, length: int, device: torch.device | None = None) -> torch.LongTensor:
        """For each token t = 1..T, which computed reward it takes: the first computed prefix of at least t tokens
        (index into `prefix_lengths`), or the final reward (index len(prefix_lengths)) when there is none."""
        tokens = torch.arange(1, length + 1, device=device)
        slots = torch.div(tokens + self.reward_stride - 1, self.reward_stride, rounding_mode="floor") - 1
        return slots.clamp(max=len(self.prefix_lengths(length)))

    @torch.no_grad()
    def rollouts(
        self, model: torch.nn.Module, sequences: torch.LongTensor, rng: torch.Generator | None = None,
        prompts: Prompts | None = None,
    ) -> torch.LongTensor:
        """Complete the rewarded prefixes of every sequence `rollout_num` times.

        Returns [B, N, P, T], P = len(`prefix_lengths(T)`) (T - 1 with `reward_stride` 1): entry [b, n, i] is
        sequence b's first t = prefix_lengths[i] tokens followed by the n-th sampled completion of that prefix.
        With `prompts`, every row continues its prompt followed by its prefix; only completion tokens are returned.
        """
        batch_size, length = sequences.shape
        if length != self.sequence_length:
            raise ValueError(f"sequences have length {length}; the engine was built for {self.sequence_length}.")
        device = sequences.device
        prompts = self._prompts(prompts, batch_size, device)
        # One uniform per (sequence, rollout, prefix, sampled token): the whole random stream, drawn up front.
        # uniforms[b, n, t-1, k] draws the k-th token sampled after prefix y_1..y_t, i.e. y_{t+1+k}. It is drawn
        # for every prefix whatever the stride, so a prefix's rollouts are the same with any `reward_stride`.
        uniforms = torch.rand(
            batch_size, self.rollout_num, length - 1, length - 1,
            generator=rng, device=_rng_device(rng, device),
        ).to(device)
        prefix_lengths = self.prefix_lengths(length, device)
        completed = sequences[:, None, None, :].expand(-1, self.rollout_num, len(prefix_lengths), -1).clone()
        if not len(prefix_lengths):
            return completed
        if is_recurrent(model):
            self._recurrent_rollouts(model, sequences, prompts, uniforms, completed)
        else:
            self._transformer_rollouts(model, sequences, prompts, uniforms, completed)
        return completed

    def rollout_rows(self, vocab_size: int, device: torch.device) -> int:
        """Rollout rows per chunk: `rollout_batch_size`, on CPU also about `rollout_block_logits` / vocabulary."""
        return _cpu_capped(self.rollout_batch_size, device, self.rollout_block_logits, _CPU_ROLLOUT_LOGITS,
                           vocab_size, floor=64)

    def finished_prefixes(self, sequences: torch.LongTensor) -> torch.Tensor | None:
        """[B, P]: whether sequence b's first `prefix_lengths[i]` tokens already hold EOS (None without an EOS)."""
        if self.eos_token_id is None:
            return None
        eos_so_far = (sequences == self.eos_token_id).cumsum(dim=1)
        return eos_so_far[:, self.prefix_lengths(sequences.shape[1], sequences.device) - 1] > 0

    def _rows(self, sequences: torch.LongTensor):
        """All rollout rows as (prefix length t, its slot in the output, sequence b, rollout n), t ascending, but
        for the prefixes that already hold EOS (left as the sequence itself in the output).

        Sorting by t puts the rows needing the most tokens first, so within any chunk the rows still sampling
        at a given step are always a leading slice: the "staircase" that never computes a finished row.
        """
        (batch_size, length), device = sequences.shape, sequences.device
        rollout_num, prefixes = self.rollout_num, self.prefix_lengths(length, device)
        per_prefix = batch_size * rollout_num
        prefix_len = prefixes.repeat_interleave(per_prefix)
        slot = torch.arange(len(prefixes), device=device).repeat_interleave(per_prefix)
        seq_index = torch.arange(batch_size, device=device).repeat_interleave(rollout_num).repeat(len(prefixes))
        roll_index = torch.arange(rollout_num, device=device).repeat(batch_size * len(prefixes))
        finished = self.finished_prefixes(sequences)
        if finished is not None:
            todo = ~finished[seq_index, slot]
            prefix_len, slot, seq_index, roll_index = prefix_len[todo], slot[todo], seq_index[todo], roll_index[todo]
        return prefix_len, slot, seq_index, roll_index

    def _recurrent_prompt(self, model, prompts: Prompts):
        """A recurrent model's next-token logits and state after each row's `[BOS, prompt]`: its own forward over the
        left-padded prompts, whose mask holds a row's state over its pads (`LSTMForCausalLM.forward`), so a row's
        state never depends on how much its batch padded it; the same forward teacher forcing uses."""
        output = self._forward(model, prompts.input_ids, prompts)
        return output.logits[:, -1], output.cache

    def _recurrent_rollouts(self, model, sequences, prompts, uniforms, completed) -> None:
        """Recurrent models: per chunk, every row starts from its prefix's state; one step per sampled token."""
        batch_size, length = sequences.shape
        if prompts.width == 1:
            # State and next-token logits after every prefix, from one pass over [BOS, y_1 .. y_{T-1}].
            self._count(batch_size * length)
            logits_all, h_all, c_all = model.prefix_states(_with_bos(sequences[:, :-1], self.bos_token_id))
        else:  # after the prompt (prefix t = 0), then one pass over y_1 .. y_{T-1} from there
            first_logits, state = self._recurrent_prompt(model, prompts)
            self._count(batch_size * (length - 1))
            logits_all, h_all, c_all = model.prefix_states(sequences[:, :-1], state=state)
            logits_all = torch.cat([first_logits[:, None], logits_all], dim=1)
            h_all, c_all = torch.cat([state.h[:, None], h_all], dim=1), torch.cat([state.c[:, None], c_all], dim=1)
        prefix_len, slot, seq_index, roll_index = self._rows(sequences)
        total_rows = prefix_len.numel()
        chunk_rows = self.rollout_rows(logits_all.shape[-1], sequences.device)
        for start in range(0, total_rows, chunk_rows):
            rows = slice(start, min(start + chunk_rows, total_rows))
            t, s, b, n = prefix_len[rows], slot[rows], seq_index[rows], roll_index[rows]
            remaining = (length - t).tolist()  # tokens each row must sample; non-increasing along the chunk
            logits = logits_all[b, t]
            state = LSTMState(h_all[b, t], c_all[b, t])
            row_uniforms = uniforms[b, n, t - 1]
            active = len(remaining)
            for step in range(remaining[0]):
                # Rows are sorted by `remaining`, so the ones still sampling are a leading slice of the chunk.
                active = _count_above(remaining, active, step)
                tokens = self._sample(logits[:active], row_uniforms[:active, step])
                completed[b[:active], n[:active], s[:active], t[:active] + step] = tokens
                still = _count_above(remaining, active, step + 1)
                if still == 0:
                    break
                state = LSTMState(state.h[:still], state.c[:still])
                self._count(still)
                logits, state = model.step(tokens[:still], state)

    def _transformer_rollouts(self, model, sequences, prompts, uniforms, completed) -> None:
        """Any causal LM: one pass over prompts + sequences, then all rollout rows batched across N and prefixes."""
        batch_size, length = sequences.shape
        # [B, L + T - 1]: the prompt columns (left-padded, ending with BOS + prompt), then y_1 .. y_{T-1}.
        context = torch.cat([prompts.input_ids, sequences[:, :-1]], dim=1)
        output = self._forward(model, context, prompts)
        # logits_all[:, t]: the next-token logits after completion prefix y_1..y_t (t = 0: after the prompt).
        logits_all, full_cache = output.logits[:, prompts.width - 1 :], getattr(output, "cache", None)
        use_cache = full_cache is not None and maskable_cache(full_cache)
        prefix_len, slot, seq_index, roll_index = self._rows(sequences)
        total_rows = prefix_len.numel()
        chunk_rows = self.rollout_rows(logits_all.shape[-1], sequences.device)
        for start in range(0, total_rows, chunk_rows):
            rows = slice(start, min(start + chunk_rows, total_rows))
            t, s, b, n = prefix_len[rows], slot[rows], seq_index[rows], roll_index[rows]
            # First sampled token of every row: straight from the full pass's logits after the prefix.
            tokens = self._sample(logits_all[b, t], uniforms[b, n, t - 1, 0])
            completed[b, n, s, t] = tokens
            if use_cache:
                self._cached_chunk(model, full_cache, context, prompts, tokens, t, s, b, n, uniforms, completed)
            else:
                self._uncached_chunk(model, context, prompts, tokens, t, s, b, n, uniforms, completed)

    def _cached_chunk(self, model, full_cache, context, prompts, tokens, t, s, b, n, uniforms, completed) -> None:
        """Rows (t, b, n) of one chunk, t ascending, each with its first token sampled already.

        Row layout, the same for every row whatever the chunk: the columns of `context`, L prompt columns then
        the completion (completion token y_j at column L - 1 + j). Columns up to L - 1 + t are sequence b's
        prompt and prefix (from the full pass); the row's k-th fed token is written at column L + t + k and the
        mask shows the row's own prompt columns (not its left pads) and the completion columns up to there. Rows
        that have sampled all their tokens leave the batch (a leading slice remains).
        """
        length, width = completed.shape[-1], prompts.width
        remaining = (length - 1 - t).tolist()  # forwards each row still needs (non-increasing)
        active = _count_above(remaining, len(remaining), 0)
        if active == 0:
            return
        # Each row's own buffer with its sequence's prefix keys/values (up to the longest prefix of the chunk), in
        # a shallow copy of the full pass's cache object (its layers are replaced, its tensors never copied).
        cache = copy.copy(full_cache)
        rows_b = b[:active]
        prefix_columns = width + int(t[active - 1])
        layers = [
            RolloutLayer(prefix_buffer(layer.keys, rows_b, prefix_columns),
                          prefix_buffer(layer.values, rows_b, prefix_columns))
            for layer in full_cache.layers
        ]
        cache.layers = layers
        columns = torch.arange(context.shape[1], device=context.device)
        # Left pads: hidden in every row's mask, and not counted in its positions.
        visible = torch.cat([prompts.attention_mask, prompts.attention_mask.new_ones(len(prompts), length - 1)], 1)
        visible, pads = visible[b].bool(), (width - prompts.attention_mask.sum(1))[b] if prompts.padded else None
        # The chunk's random numbers and output rows, gathered once: per step only leading slices of them are used.
        row_uniforms = uniforms[b, n, t - 1]
        row_tokens = completed[b, n, s]
        for step in range(remaining[0]):
            active_now = _count_above(remaining, active, step)
            if active_now < active:
                cache.batch_select_indices(torch.arange(active_now, device=context.device))
                active = active_now
            rows = slice(0, active)
            write = width + t[rows] + step  # the column each row's fed token goes to
            for layer in layers:
                layer.write_positions = write
            self._count(active)
            mask = (columns[None, :] <= write[:, None]) & visible[rows]
            positions = write - pads[rows] if pads is not None else write
            output = model(
                input_ids=tokens[rows].unsqueeze(1), attention_mask=mask.long(),
                position_ids=positions.unsqueeze(1), cache=cache, use_cache=True,
            )
            cache = output.cache
            tokens = self._sample(output.logits[:, -1], row_uniforms[rows, step + 1])
            row_tokens[rows].scatter_(1, (write - width + 1).unsqueeze(1), tokens.unsqueeze(1))
        completed[b, n, s] = row_tokens

    def _uncached_chunk(self, model, context, prompts, tokens, t, s, b, n, uniforms, completed) -> None:
        """Fallback: every step re-encodes each row's context [prompt, y_1..y_t, sampled...] (pads masked).

        Rows are grouped by prefix length, so each forward is a plain rectangle."""
        length = completed.shape[-1]
        for prefix in t.unique().tolist():
            group = (t == prefix).nonzero().squeeze(1)
            gb, gn, gs = b[group], n[group], s[group]
            group_prompts = prompts.select(gb)
            rows = completed[gb, gn, gs]  # [R, T] copy, written back below
            rows[:, prefix] = tokens[group]
            for step in range(length - 1 - prefix):
                inputs = torch.cat([group_prompts.input_ids, rows[:, : prefix + 1 + step]], dim=1)
                logits = self._forward(model, inputs, group_prompts).logits
                rows[:, prefix + 1 + step] = self._sample(logits[:, -1], uniforms[gb, gn, prefix - 1, step + 1])
            completed[gb, gn, gs] = rows

    def _prompts(self, prompts: Prompts | None, batch_size: int, device: torch.device) -> Prompts:
        if prompts is None:
            return Prompts.start_only(batch_size, self.bos_token_id, device)
        if len(prompts) != batch_size:
            raise ValueError(f"{len(prompts)} prompts for {batch_size} sequences: give one prompt per sequence.")
        return prompts.to(device)

    def _forward(self, model, input_ids: torch.LongTensor, prompts: Prompts, cache=None, fed_before: int = 0):
        """`model` on `input_ids`: the prompt columns (plus what follows), or with `cache` the tokens after the
        `fed_before` columns it holds. With left-padded prompts the mask hides the pads and the positions skip
        them; without padding neither is passed (the model's own defaults are the same)."""
        self._count(input_ids.numel())
        if not prompts.padded:
            return model(input_ids=input_ids, cache=cache, use_cache=True)
        rows, new = input_ids.shape
        total = fed_before + new if cache is not None else new
        mask = torch.cat([prompts.attention_mask, prompts.attention_mask.new_ones(rows, total - prompts.width)], 1)
        positions = position_ids(mask)[:, -new:]
        return model(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True)

    def _count(self, positions: int) -> None:
        self.counter.generator_positions += positions
        self.counter.generator_calls += 1

    # ---- rewards ---------------------------------------------------------------------------------------

    def reward_rows(self, length: int, device: torch.device) -> int:
        """Sequences of `length` tokens per reward call: `score_batch_size`, on CPU also ~8192 tokens."""
        return _cpu_capped(self.score_batch_size, device, self.score_block_tokens, _CPU_SCORE_TOKENS, length,
                           floor=32)

    @torch.no_grad()
    def rewards(
        self,
        rollouts: torch.LongTensor,
        sequences: torch.LongTensor,
        reward: RewardSource | Callable[[torch.LongTensor], torch.Tensor],
        prompts: Prompts | None = None,
    ) -> torch.Tensor:
        """Per-token rewards Q [B, T] from completed rollouts [B, N, P, T] and the sequences [B, T].

        `reward` maps complete sequences [R, T] to rewards [R] in [0, 1]: a [`RewardSource`] (e.g. the
        discriminator's P(real), which scores completions on cached prefixes where exact, and judges each
        completion together with its prompt) or a plain function of token-id tensors. Each complete sequence is
        scored once. With `reward_stride` k > 1 a token whose prefix was not rolled out takes the reward of the
        next prefix that was (see `reward_positions`).
        """
        if not isinstance(reward, RewardSource):
            reward = TensorReward(reward)
        batch_size, rollout_num, prefixes, length = rollouts.shape
        scores = reward.rollout_rewards(
            rollouts, sequences, lambda tokens: self.reward_rows(tokens, rollouts.device), self.counter,
            prompts=prompts, prefix_lengths=self.prefix_lengths(length, rollouts.device),
            finished=self.finished_prefixes(sequences),
        )
        rollout_scores = scores[: batch_size * rollout_num * prefixes].view(batch_size, rollout_num, prefixes)
        final_scores = scores[batch_size * rollout_num * prefixes :]
        # Average over the rollout axis (dim 1) of [B, N, P]: each prefix gets the mean of its own completions.
        computed = torch.cat([rollout_scores.mean(dim=1), final_scores.unsqueeze(1)], dim=1)
        if prefixes == length - 1:
            return computed
        return computed[:, self.reward_positions(length, rollouts.device)]

    def __call__(
        self,
        model: torch.nn.Module,
        sequences: torch.LongTensor,
        reward: RewardSource | Callable[[torch.LongTensor], torch.Tensor],
        rng: torch.Generator | None = None,
        prompts: Prompts | None = None,
    ) -> torch.Tensor:
        """Rewards Q [B, T] for `sequences` (continuing `prompts`) under rollout policy `model` and `reward`."""
        rollouts = self.rollouts(model, sequences, rng, prompts)
        return self.rewards(rollouts, sequences, reward, prompts)


def _rng_device(rng: torch.Generator | None, device: torch.device) -> torch.device:
    return rng.device if rng is not None else device


def _cpu_capped(rows: int, device: torch.device, budget: int | None, default_budget: int, per_row: int,
                floor: int) -> int:
    """`rows`, on CPU at most `budget` (None: `default_budget`; 0: no cap) // `per_row`, but never below `floor`."""
    if device.type != "cpu":
        return rows
    budget = default_budget if budget is None else budget
    return min(rows, max(floor, budget // per_row)) if budget > 0 else rows


def _count_above(remaining: list[int], active: int, step: int) -> int:
    """Rows among the first `active` whose `remaining` exceeds `step` (`remaining` is non-increasing)."""
    while active and remaining[active - 1] <= step:
        active -= 1
    return active
