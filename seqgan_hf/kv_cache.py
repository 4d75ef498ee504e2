"""Key/value caches for rollouts: which caches can be continued from a prefix, and the rollout rows' own layer.

Shared by the generator's cached rollouts (`seqgan_hf.rollout`) and the discriminator's prefix sharing
(`seqgan_hf.prefix_sharing`): both continue many rows from the cached states of a shorter prefix.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


def maskable_cache(cache) -> bool:
    """True for a cache whose positions can be hidden by the attention mask: plain (non-sliding) KV layers."""
    layers = getattr(cache, "layers", None)
    return (
        isinstance(cache, DynamicCache)
        and bool(layers)
        and all(type(layer) is DynamicLayer and not getattr(layer, "is_sliding", False) for layer in layers)
    )


class RolloutLayer(DynamicLayer):
    """A `DynamicLayer` for rollout rows: fixed length T, each row writing its new tokens at its own positions.

    Row r holds its sequence's prefix keys/values in a [heads, T, d] buffer; the positions after its prefix are
    hidden by the attention mask until the row's own token for that position overwrites them (`write_positions`,
    set by the engine before each forward). So the cache never grows: no `torch.cat` copy of the whole cache per
    token (the stock `DynamicLayer.update`, which was most of a rollout's time). Attention always reads all T
    columns: a row's layout, hence its numerics, never depends on the other rows of its chunk (and a trimmed,
    strided view of the buffer measured 2x slower in CPU `scaled_dot_product_attention` than the full one).
    `get_seq_length` reports T - 1, so that the model's mask covers all T columns. It keeps the layer interface
    (`update`, `get_seq_length`, `batch_select_indices`): model code is untouched.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.keys, self.values = keys, values
        self.write_positions: torch.Tensor | None = None
        self.is_initialized = True
        self.device = keys.device

    def update(self, key_states, value_states, *args, **kwargs):
        # Seen as [rows * heads * T, d], the new entries are rows (r * heads + h) * T + position[r]: one
        # index_copy_ of contiguous d-vectors (index_put with two index tensors was 10% of a T=80 rollout).
        rows, heads, length, _ = self.keys.shape
        starts = torch.arange(rows * heads, device=self.keys.device).view(rows, heads) * length
        index = (starts + self.write_positions[:, None]).view(-1)
        self.keys.view(-1, self.keys.shape[-1]).index_copy_(0, index, key_states.reshape(index.numel(), -1))
        self.values.view(-1, self.values.shape[-1]).index_copy_(0, index, value_states.reshape(index.numel(), -1))
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.keys.shape[-2] - 1

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        # The engine only ever keeps a leading slice of rows: then a view, no copy.
        count = indices.numel()
        if count and torch.equal(indices, torch.arange(count, device=indices.device)):
            self.keys, self.values = self.keys[:count], self.values[:count]
        else:
            self.keys, self.values = self.keys[indices], self.values[indices]

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("rollout cache layers have a fixed length")


def prefix_buffer(full: torch.Tensor, rows: torch.Tensor, prefix_columns: int) -> torch.Tensor:
    """Per-row copy of `full[rows]` [R, heads, T, d] holding only the first `prefix_columns` positions.

    The later positions are zeros: each row overwrites them with its own tokens before the mask shows them, and
    until then they only need to be finite (a masked column gets probability exactly 0).
    """
    buffer = full.new_empty(rows.numel(), *full.shape[1:])
    buffer[:, :, :prefix_columns] = full[rows, :, :prefix_columns]
    buffer[:, :, prefix_columns:] = 0
    return buffer
