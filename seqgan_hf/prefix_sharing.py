"""Rollout rewards from a causal discriminator: each sampled prefix is encoded once, not once per rollout.

The N completions of prefix y_1..y_t all start with the same t tokens. A causal classifier (a decoder LM with a
classification head: `GPT2ForSequenceClassification`, `LlamaForSequenceClassification`, ...) computes the same
hidden states for those t positions whatever follows, and its key/value cache holds them. So one forward over
the B sampled sequences (which also gives the last token's reward) yields every prefix's cache, and each
completion only feeds its own T - t sampled tokens on top of it: about half of the discriminator's positions
and a third less attention than scoring B * N * (T - 1) full sequences.

Exactness needs what the engine cannot see in the code of an arbitrary classifier, so it is established, not
assumed:

* structurally: the discriminator must return a `DynamicCache` of plain key/value layers (encoder classifiers
  return none; sliding-window layers do not keep every prefix position), and share the generator's token ids;
* per row: a completion is shared only if its discriminator input's real tokens form one leading block (padding
  only at the end), hold no pad token and reach past the prefix (a classifier pools the last non-pad token, which
  the suffix forward also holds); other rows get a full forward;
* numerically, once per kind of row: on first use, shared and full forwards of a few completions without padding
  are compared; if they disagree (e.g. a classifier that pools the first token) sharing is switched off with a
  warning, for good. Rows padded at the end are shared only once the same comparison passed on such rows.

With prompts (`seqgan_hf.prompts`) the discriminator reads (prompt, completion) pairs: a completion prefix of t
tokens is then the row's prompt tokens plus t, a different length per row; rows with the same prefix length share
one forward.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import torch
from transformers.cache_utils import DynamicCache

from .discriminator import DiscriminatorAdapter
from .kv_cache import maskable_cache
from .prompts import Prompts

logger = logging.getLogger(__name__)

# Completions compared against full forwards on first use, and the agreement required of their logits
# (relative to the logits' scale): float32 caches agree to ~1e-6; bfloat16/float16 to about their precision.
_CHECK_ROWS = 8
_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-4}
_LOW_PRECISION_TOLERANCE = 3e-2


def _prefix_cache(layers: list[tuple[torch.Tensor, torch.Tensor]], sequence_rows: torch.Tensor,
                  prefix_length: int) -> DynamicCache:
    """A new cache holding, for each row, its sequence's keys/values at positions 0 .. prefix_length - 1."""
    return DynamicCache(
        ddp_cache_data=[
            (keys[sequence_rows, :, :prefix_length], values[sequence_rows, :, :prefix_length])
            for keys, values in layers
        ]
    )


def _chunks(rows: torch.Tensor, size: int) -> tuple[torch.Tensor, ...]:
    """`rows.split(size)`, but nothing at all for no rows (split would give one empty chunk)."""
    return rows.split(size) if rows.numel() else ()


class PrefixSharing:
    """Discriminator probabilities of a batch's rollouts, each sampled sequence's prefix encoded once.

    The fast path of [`~seqgan_hf.rewards.DiscriminatorReward`]: `rollout_probabilities` returns None once sharing
    is known not to apply to the discriminator (the reward source then runs full forwards).

    Args:
        adapter: the [`DiscriminatorAdapter`] (generator ids -> discriminator inputs, logits -> P(real)).
        discriminator: returns the discriminator module to use now (a callable: FSDP2 swaps in replicas).
        autocast: returns the mixed-precision context the discriminator runs under.
    """

    def __init__(
        self,
        adapter: DiscriminatorAdapter,
        discriminator: Callable[[], torch.nn.Module],
        autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    ):
        self.adapter = adapter
        self.discriminator = discriminator
        self.autocast = autocast
        # None: not decided yet; True: checked and in use; False: does not apply to this discriminator.
        self.enabled: bool | None = None if not adapter.retokenize else False
        # The same for rows padded at the end (text after EOS, pairs shorter than the discriminator's width).
        self.padded_enabled: bool | None = None if not adapter.retokenize else False

    @torch.no_grad()
    def rollout_probabilities(
        self,
        rollouts: torch.LongTensor,
        sequences: torch.LongTensor,
        rows_per_forward: Callable[[int], int],
        prompts: Prompts | None = None,
        prefix_lengths: torch.LongTensor | None = None,
        finished: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, int] | None:
        """P(real) of every completion and sequence, flat as `RewardSource.rollout_rewards` lays them out, and
        the number of token positions the discriminator was fed.

        None once sharing is known not to apply to this discriminator (the caller then runs full forwards); the
        call that finds out still scores everything, with full forwards, so no work is thrown away.

        `rollouts` [B, N, P, T] (entry [b, n, i]: sequence b's first `prefix_lengths[i]` tokens, default i + 1,
        then a completion), `sequences` [B, T], `prompts` (one per sequence, or None); `rows_per_forward(length)`
        bounds each forward of `length` tokens per row; `finished` [B, P] (optional): prefixes that already hold
        EOS, whose completions are the sequence itself and take its probability unscored. Returns
        [B * N * P + B]: completions in [B, N, P] order, then sequences.
        """
        if self.enabled is False:
            return None
        if prefix_lengths is None:
            prefix_lengths = torch.arange(1, rollouts.shape[2] + 1)
        discriminator = self.discriminator()
        was_training = discriminator.training
        discriminator.eval()
        try:
            with self.autocast():
                return self._probabilities(discriminator, rollouts, sequences, rows_per_forward, prompts,
                                           prefix_lengths.tolist(), finished)
        finally:
            discriminator.train(was_training)

    def _probabilities(self, discriminator, rollouts, sequences, rows_per_forward, prompts,
                       prefix_lengths: list[int], finished) -> tuple[torch.Tensor, int]:
        batch_size, rollout_num, prefixes, length = rollouts.shape
        device = next(discriminator.parameters()).device
        # The sampled sequences' own forwards: their P(real) (the last token's reward) and every prefix's cache.
        # Should sharing turn out not to apply, this work is kept and every completion gets a full forward.
        share, final_logits, layer_parts, positions = True, [], [], 0
        # The discriminator's input width: the completion, after the prompt room when there are prompts.
        width = length + (0 if prompts is None else self.adapter.prompt_width if self.adapter.prompt_width is not None
                          else prompts.width - 1)
        for rows in torch.arange(batch_size, device=sequences.device).split(rows_per_forward(width)):
            inputs = self.adapter.encode(sequences[rows], device, None if prompts is None else prompts.select(rows))
            positions += inputs["input_ids"].numel()
            output = self._cached_forward(discriminator, inputs) if share else None
            # Plain (non-sliding) KV layers hold every prefix position, as the generator's cached path needs too.
            if output is None or not maskable_cache(getattr(output, "cache", None)):
                if share:
                    self._disable(f"{type(discriminator).__name__} returns no plain key/value cache")
                share = False
                output = output if output is not None else discriminator(**inputs)
            final_logits.append(output.logits)
            if share:
                layer_parts.append([(layer.keys, layer.values) for layer in output.cache.layers])
        full_cache = []
        # Where each sequence's completion starts in its discriminator input (after its prompt's tokens).
        offsets = (self.adapter.prompt_offsets(prompts).to(device) if prompts is not None
                   else torch.zeros(batch_size, dtype=torch.long, device=device))
        row_prompts = prompts.repeat_interleave(rollout_num) if prompts is not None else None  # one per [B, N] row
        if share:
            # Per layer, the chunks' keys and values joined along the batch (one chunk: used as is, no copy).
            full_cache = [
                tuple(parts[0] if len(parts) == 1 else torch.cat(parts) for parts in zip(*layer))
                for layer in zip(*layer_parts)
            ]
            # Not exact for this discriminator (now off for good), or undecided (nothing shareable yet): full
            # forwards.
            # Padding (text after EOS, pairs shorter than the input width) is possible only with an EOS or prompts.
            padding_possible = self.adapter.eos_token_id is not None or prompts is not None
            if self.enabled is None or (self.padded_enabled is None and padding_possible):
                self._decide(discriminator, full_cache, rollouts, row_prompts, offsets, prefix_lengths)
            share = self.enabled is True
        completions = batch_size * rollout_num * prefixes
        scores = torch.empty(completions + batch_size, dtype=torch.float32, device=rollouts.device)
        scores[completions:] = self._probability(torch.cat(final_logits), rollouts)
        # Flat index of completion (b, n, i) is (b * N + n) * P + i; `sequence_of` maps b * N + n -> b.
        sequence_of = torch.arange(batch_size, device=device).repeat_interleave(rollout_num)
        group_index = torch.arange(batch_size * rollout_num, device=rollouts.device) * prefixes
        for slot, prefix_length in enumerate(prefix_lengths):
            inputs = self.adapter.encode(rollouts[:, :, slot].reshape(-1, length), device, row_prompts)
            starts = offsets[sequence_of] + prefix_length  # the first discriminator column after the prefix
            todo = torch.ones_like(starts, dtype=torch.bool)
            if finished is not None:  # a prefix holding EOS: its completions are the sequence, scored already
                done = finished.to(device)[sequence_of, slot]
                todo = ~done
                done_rows = done.nonzero().squeeze(1)
                scores[group_index[done_rows.to(rollouts.device)] + slot] = scores[
                    completions + sequence_of[done_rows].to(rollouts.device)]
            shared = self._shareable(inputs, starts) & share & todo
            # Rows whose prefix (prompt + t tokens) has the same length continue the cache in one forward.
            for start in starts[shared].unique().tolist():
                same = (shared & (starts == start)).nonzero().squeeze(1)
                for rows in _chunks(same, rows_per_forward(width - start)):
                    logits = self._suffix_logits(discriminator, full_cache, inputs, rows, sequence_of[rows], start)
                    scores[group_index[rows.to(rollouts.device)] + slot] = self._probability(logits, rollouts)
                positions += same.numel() * (width - start)
            full_rows = (~shared & todo).nonzero().squeeze(1)
            for rows in _chunks(full_rows, rows_per_forward(width)):
                logits = discriminator(**{key: value[rows] for key, value in inputs.items()}).logits
                scores[group_index[rows.to(rollouts.device)] + slot] = self._probability(logits, rollouts)
            positions += full_rows.numel() * width
        return scores, positions

    def _cached_forward(self, discriminator, inputs: dict):
        """The forward asked for its cache; None for a discriminator whose forward takes no `use_cache`."""
        try:
            return discriminator(**inputs, use_cache=True)
        except TypeError:
            return None

    def _suffix_logits(self, discriminator, full_cache, inputs, rows, sequence_rows, start: int) -> torch.Tensor:
        """Discriminator logits of completions `rows` fed only their columns from `start` on (after the prompt and
        the prefix), over their sequences' cached states."""
        cache = _prefix_cache(full_cache, sequence_rows, start)
        suffix = {
            "input_ids": inputs["input_ids"][rows, start:],
            # Hugging Face convention: the mask spans cached and new positions (padding, if any, at the end).
            "attention_mask": inputs["attention_mask"][rows],
        }
        return discriminator(**suffix, cache=cache, use_cache=True).logits

    def _decide(self, discriminator, full_cache, rollouts, row_prompts, offsets, prefix_lengths) -> None:
        """Compare shared and full forwards on a few completions, once for rows without padding (`enabled`) and once
        for rows padded at the end (`padded_enabled`). A kind stays undecided while no such row comes up."""
        batch_size, rollout_num, prefixes, length = rollouts.shape
        device = next(discriminator.parameters()).device
        flat_prompts = None if row_prompts is None else row_prompts.select(
            torch.arange(batch_size * rollout_num, device=row_prompts.input_ids.device).repeat_interleave(prefixes))
        inputs = self.adapter.encode(rollouts.reshape(-1, length), device, flat_prompts)
        # Flat completion r is sequence r // (N * P) after prefix_lengths[r % P] tokens.
        flat = torch.arange(inputs["input_ids"].shape[0], device=device)
        sequence_rows = flat // (prefixes * rollout_num)
        starts = offsets[sequence_rows] + torch.as_tensor(prefix_lengths, device=device)[flat % prefixes]
        padded = ~inputs["attention_mask"].bool().all(dim=1)
        shareable = self._shareable(inputs, starts, allow_padding=True)
        for kind, candidates in (("enabled", shareable & ~padded), ("padded_enabled", shareable & padded)):
            if getattr(self, kind) is None and bool(candidates.any()) and self.enabled is not False:
                verdict = self._check(discriminator, full_cache, inputs, candidates, sequence_rows, starts,
                                      padded=kind == "padded_enabled")
                setattr(self, kind, verdict)
        if self.enabled is None and self.padded_enabled is True:
            self.enabled = True  # padded rows agree; rows without padding are the simpler case of the same forward

    def _check(self, discriminator, full_cache, inputs, candidates, sequence_rows, starts, padded: bool) -> bool:
        """Shared against full forwards on a spread of `candidates`; False (and a log line) when they disagree."""
        device = inputs["input_ids"].device
        rows = candidates.nonzero().squeeze(1)
        picks = rows[torch.linspace(0, rows.numel() - 1, _CHECK_ROWS, device=device).long().unique()]
        picked = {key: value[picks] for key, value in inputs.items()}
        try:
            full_logits = discriminator(**picked).logits.float()
            shared_logits = torch.cat([
                self._suffix_logits(discriminator, full_cache, picked, torch.tensor([row], device=device),
                                    sequence_rows[picks[row : row + 1]], int(starts[picks[row]]))
                for row in range(picks.numel())
            ]).float()
        except (TypeError, ValueError, RuntimeError) as error:  # a forward that takes no cache this way
            self._disable(f"{type(discriminator).__name__} cannot continue from a cache ({error})")
            return False
        dtype = next(discriminator.parameters()).dtype
        low_precision = dtype not in _TOLERANCE or torch.is_autocast_enabled(device.type)
        tolerance = _LOW_PRECISION_TOLERANCE if low_precision else _TOLERANCE[dtype]
        scale = full_logits.abs().max().clamp(min=1.0)
        error = (shared_logits - full_logits).abs().max()
        if not bool(error <= tolerance * scale):
            reason = (f"{type(discriminator).__name__}'s logits from a cached prefix differ from a full forward by "
                      f"{float(error):.3g}")
            if padded:  # rows without padding may still be shared
                logger.info("Rollouts with padding are scored with full discriminator forwards: %s on padded "
                            "inputs (its pooling does not skip trailing padding).", reason)
                return False
            self._disable(reason + " (its pooling or attention does not continue from a prefix cache)", warn=True)
            return False
        logger.info("Scoring rollouts%s with %s's prefix cache (each prefix encoded once).",
                    " padded at the end" if padded else "", type(discriminator).__name__)
        return True

    def _shareable(self, inputs: dict, starts: torch.Tensor, allow_padding: bool | None = None) -> torch.Tensor:
        """Rows a classifier pools at their last real token whether fed whole or from `starts` on: real tokens
        in one leading block (padding, if any, only at the end; none unless padded rows were checked), no pad
        token among them, and at least one real token from `starts` on."""
        mask = inputs["attention_mask"].bool()
        kept = mask.sum(dim=1)
        width = mask.shape[1]
        if allow_padding is None:
            allow_padding = self.padded_enabled is True
        if allow_padding:
            shareable = (mask == (torch.arange(width, device=mask.device)[None, :] < kept[:, None])).all(dim=1)
        else:
            shareable = kept == width
        shareable &= kept > starts.to(kept.device)
        pad = self.adapter.discriminator_pad_token_id
        if pad is not None:
            shareable &= ~((inputs["input_ids"] == pad) & mask).any(dim=1)
        return shareable

    def _probability(self, logits: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return self.adapter.real_probability(logits).to(like.device)

    def _disable(self, reason: str, warn: bool = False) -> None:
        self.enabled = False
        message = f"Rollouts are scored with full discriminator forwards: {reason}."
        if warn:
            logger.warning(message + " Set discriminator_prefix_cache=False to skip this check.")
        else:
            logger.info(message)
