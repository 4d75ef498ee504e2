"""Prompts for prompt-conditioned SeqGAN: a batch of prompts as the generator sees them.

A batch of B prompts is left-padded, as decoder-only generation expects: row b is
`[pad, ..., pad, BOS, prompt_b]` ([B, L], L = 1 + the longest prompt), with an attention mask that hides the pads.
Every completion then starts at the same column L, so completion position t is column L - 1 + t in every row;
only the positions differ per row (`position_ids`: a row's BOS is position 0 whatever its padding). With no
prompts (the paper's setting) the batch is the start token alone, L = 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class Prompts:
    """A left-padded batch of prompts: `input_ids` [B, L] (`[pad.., BOS, prompt]`) and `attention_mask` [B, L]."""

    input_ids: torch.LongTensor
    attention_mask: torch.LongTensor

    @classmethod
    def from_token_lists(cls, prompts: Sequence[Sequence[int]], bos_token_id: int, pad_token_id: int | None,
                         device: torch.device | str | None = None) -> Prompts:
        """The batch for prompt token lists (without BOS); pads use `pad_token_id` (BOS when None: masked anyway)."""
        width = 1 + max((len(prompt) for prompt in prompts), default=0)
        fill = pad_token_id if pad_token_id is not None else bos_token_id
        input_ids = torch.full((len(prompts), width), fill, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            start = width - 1 - len(prompt)
            input_ids[row, start] = bos_token_id
            if len(prompt):
                input_ids[row, start + 1 :] = torch.as_tensor(list(prompt), dtype=torch.long)
            attention_mask[row, start:] = 1
        return cls(input_ids.to(device), attention_mask.to(device))

    @classmethod
    def start_only(cls, batch_size: int, bos_token_id: int, device: torch.device | str | None = None) -> Prompts:
        """No prompts: every row is the start token alone (the paper's unconditioned setting)."""
        input_ids = torch.full((batch_size, 1), bos_token_id, dtype=torch.long, device=device)
        return cls(input_ids, torch.ones_like(input_ids))

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @property
    def width(self) -> int:
        """L: columns of the batch (1 + the longest prompt)."""
        return self.input_ids.shape[1]

    @property
    def padded(self) -> bool:
        """Whether any row is padded (all rows the same length: no mask or positions needed)."""
        return not bool(self.attention_mask.all())

    @property
    def lengths(self) -> torch.LongTensor:
        """Prompt tokens per row, the start token not counted."""
        return self.attention_mask.sum(dim=1) - 1

    def token_lists(self) -> list[list[int]]:
        """Each row's prompt tokens (no BOS, no padding)."""
        return [row[mask.bool()][1:].tolist() for row, mask in zip(self.input_ids.cpu(), self.attention_mask.cpu())]

    def to(self, device: torch.device | str) -> Prompts:
        return Prompts(self.input_ids.to(device), self.attention_mask.to(device))

    def select(self, rows: torch.Tensor | slice) -> Prompts:
        """The prompts of `rows` (still padded to this batch's width)."""
        return Prompts(self.input_ids[rows], self.attention_mask[rows])

    def repeat_interleave(self, repeats: int) -> Prompts:
        return Prompts(self.input_ids.repeat_interleave(repeats, dim=0),
                       self.attention_mask.repeat_interleave(repeats, dim=0))

    def context(self, tokens: torch.LongTensor) -> tuple[torch.LongTensor, torch.LongTensor, torch.LongTensor]:
        """(input_ids, attention_mask, position_ids) of the prompts followed by `tokens` [B, K] (no padding there)."""
        input_ids = torch.cat([self.input_ids, tokens], dim=1)
        attention_mask = torch.cat([self.attention_mask, self.attention_mask.new_ones(tokens.shape)], dim=1)
        return input_ids, attention_mask, position_ids(attention_mask)


def position_ids(attention_mask: torch.Tensor) -> torch.LongTensor:
    """Positions of left-padded rows: 0 at each row's first unmasked column (pads get 0; they are never attended)."""
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)
