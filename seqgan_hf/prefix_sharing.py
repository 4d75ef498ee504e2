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
* per row: a completion is shared only if its discriminator input has no padding and no pad token (a classifier
  pools the last non-pad token; for such rows that is the last position, which the suffix forward also ends
  on); other rows get a full forward;
* numerically, once: on first use, shared and full forwards of a few completions are compared; if they disagree
  (e.g. a classifier that pools the first token) sharing is switched off with a warning, for good.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import torch
from transformers.cache_utils import DynamicCache

from .discriminator import DiscriminatorAdapter
from .kv_cache import maskable_cache

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

    @torch.no_grad()
    def rollout_probabilities(
        self,
        rollouts: torch.LongTensor,
        sequences: torch.LongTensor,
        rows_per_forward: Callable[[int], int],
    ) -> tuple[torch.Tensor, int] | None:
        """P(real) of every completion and sequence, flat as `RewardSource.rollout_rewards` lays them out, and
        the number of token positions the discriminator was fed.

        None once sharing is known not to apply to this discriminator (the caller then runs full forwards); the
        call that finds out still scores everything, with full forwards, so no work is thrown away.

        `rollouts` [B, N, T-1, T], `sequences` [B, T]; `rows_per_forward(length)` bounds each forward of
        `length` tokens per row. Returns [B * N * (T-1) + B]: completions in [B, N, T-1] order, then sequences.
        """
        if self.enabled is False:
            return None
        discriminator = self.discriminator()
        was_training = discriminator.training
        discriminator.eval()
        try:
            with self.autocast():
                return self._probabilities(discriminator, rollouts, sequences, rows_per_forward)
        finally:
            discriminator.train(was_training)

    def _probabilities(self, discriminator, rollouts, sequences, rows_per_forward) -> tuple[torch.Tensor, int]:
        batch_size, rollout_num, prefixes, length = rollouts.shape
        device = next(discriminator.parameters()).device
        # The sampled sequences' own forwards: their P(real) (the last token's reward) and every prefix's cache.
        # Should sharing turn out not to apply, this work is kept and every completion gets a full forward.
        share, final_logits, layer_parts = True, [], []
        for chunk in sequences.split(rows_per_forward(length)):
            inputs = self.adapter.encode(chunk, device)
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
        if share:
            # Per layer, the chunks' keys and values joined along the batch (one chunk: used as is, no copy).
            full_cache = [
                tuple(parts[0] if len(parts) == 1 else torch.cat(parts) for parts in zip(*layer))
                for layer in zip(*layer_parts)
            ]
            # Not exact for this discriminator (now off for good), or undecided (nothing shareable yet): full
            # forwards.
            share = self.enabled is True or bool(self._check(discriminator, full_cache, rollouts))
        completions = batch_size * rollout_num * prefixes
        scores = torch.empty(completions + batch_size, dtype=torch.float32, device=rollouts.device)
        scores[completions:] = self._probability(torch.cat(final_logits), rollouts)
        positions = sequences.numel()
        # Flat index of completion (b, n, t) is (b * N + n) * (T - 1) + t - 1; `sequence_of` maps b * N + n -> b.
        sequence_of = torch.arange(batch_size, device=device).repeat_interleave(rollout_num)
        group_index = torch.arange(batch_size * rollout_num, device=rollouts.device) * prefixes
        for prefix_length in range(1, length):
            inputs = self.adapter.encode(rollouts[:, :, prefix_length - 1].reshape(-1, length), device)
            shared = self._shareable(inputs) & share
            shared_rows = shared.nonzero().squeeze(1)
            for rows in _chunks(shared_rows, rows_per_forward(length - prefix_length)):
                logits = self._suffix_logits(
                    discriminator, full_cache, inputs, rows, sequence_of[rows], prefix_length
                )
                scores[group_index[rows.to(rollouts.device)] + prefix_length - 1] = self._probability(logits, rollouts)
            positions += shared_rows.numel() * (length - prefix_length)
            full_rows = (~shared).nonzero().squeeze(1)
            for rows in _chunks(full_rows, rows_per_forward(length)):
                logits = discriminator(**{key: value[rows] for key, value in inputs.items()}).logits
                scores[group_index[rows.to(rollouts.device)] + prefix_length - 1] = self._probability(logits, rollouts)
            positions += full_rows.numel() * length
        return scores, positions

    def _cached_forward(self, discriminator, inputs: dict):
        """The forward asked for its cache; None for a discriminator whose forward takes no `use_cache`."""
        try:
            return discriminator(**inputs, use_cache=True)
        except TypeError:
            return None

    def _suffix_logits(
        self, discriminator, full_cache, inputs, rows, sequence_rows, prefix_length: int
    ) -> torch.Tensor:
        """Discriminator logits of completions `rows` fed only their tokens after the prefix, over its cached states."""
        cache = _prefix_cache(full_cache, sequence_rows, prefix_length)
        suffix = {
            "input_ids": inputs["input_ids"][rows, prefix_length:],
            # Hugging Face convention: the mask spans cached and new positions (all ones for shared rows).
            "attention_mask": inputs["attention_mask"][rows],
        }
        return discriminator(**suffix, cache=cache, use_cache=True).logits

    def _check(self, discriminator, full_cache, rollouts) -> bool | None:
        """Compare shared and full forwards on a few completions; decide once whether sharing is exact here.

        None (undecided, no sharing this time) when the sampled completions offer no row that could be shared.
        """
        batch_size, rollout_num, prefixes, length = rollouts.shape
        device = next(discriminator.parameters()).device
        flat = rollouts.reshape(-1, length)
        inputs = self.adapter.encode(flat, device)
        shareable = self._shareable(inputs)
        if not bool(shareable.any()):
            return None
        # A spread of prefix lengths and sequences among the shareable completions.
        candidates = shareable.nonzero().squeeze(1)
        picks = candidates[torch.linspace(0, candidates.numel() - 1, _CHECK_ROWS, device=device).long().unique()]
        inputs = {key: value[picks] for key, value in inputs.items()}
        try:
            full_logits = discriminator(**inputs).logits.float()
            # Completion row r: sequence r // ((T-1) * N), prefix length r % (T-1) + 1 (flat [B, N, T-1] order).
            shared_logits = torch.cat([
                self._suffix_logits(discriminator, full_cache, inputs, torch.tensor([row], device=device),
                                    picks[row : row + 1] // (prefixes * rollout_num), int(picks[row]) % prefixes + 1)
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
            self._disable(
                f"{type(discriminator).__name__}'s logits from a cached prefix differ from a full forward by "
                f"{float(error):.3g} (its pooling or attention does not continue from a prefix cache)",
                warn=True,
            )
            return False
        self.enabled = True
        logger.info("Scoring rollouts with %s's prefix cache (each prefix encoded once).",
                    type(discriminator).__name__)
        return True

    def _shareable(self, inputs: dict) -> torch.Tensor:
        """Rows whose discriminator input has no padding and no pad token: pooled at their last position."""
        shareable = inputs["attention_mask"].bool().all(dim=1)
        pad = self.adapter.discriminator_pad_token_id
        if pad is not None:
            shareable &= (inputs["input_ids"] != pad).all(dim=1)
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
