"""Teacher-forced likelihood: the one scoring pass behind NLL_oracle, NLL_test and the temperature sweep.

A sequence `x_1..x_T` is scored by feeding `[BOS] x_1..x_{T-1}` and reading `log p(x_t | BOS, x_<t)` off the
(optionally tempered) next-token distribution. Only torch is needed, so any module may import this one.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class TeacherForcedScore(NamedTuple):
    """Per-token means (nats) over the scored positions; `entropy` is None unless it was asked for."""

    nll: float
    entropy: float | None = None


def default_bos_token_id(model: torch.nn.Module) -> int:
    """The start token `model` generates from: its generation config's, else its config's, else 0."""
    for source in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        value = getattr(source, "bos_token_id", None)
        if value is not None:
            return value
    return 0


@torch.no_grad()
def teacher_forced_nll(
    model: torch.nn.Module,
    sequences: torch.Tensor,
    bos_token_id: int | None = None,
    *,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
    batch_size: int = 1024,
    entropy: bool = False,
) -> TeacherForcedScore:
    """Mean per-token NLL of `sequences` [N, T] under `model` fed `[BOS] + sequence`, logits divided by
    `temperature`; with `entropy=True` also the mean entropy of the next-token distribution.

    Args:
        model: a causal LM returning `.logits` [B, T, vocab]; it is put in eval mode for the pass and
            restored afterwards. Inputs go to the device of its first parameter.
        sequences: token ids [N, T] (no BOS).
        bos_token_id: the start token; default [`default_bos_token_id`].
        temperature: logits are divided by it before the softmax (1.0: the model itself).
        mask: bool [N, T]; only the positions where it is true are averaged (default: all).
        batch_size: sequences per forward pass. Scores are summed in float32 per batch and in Python
            floats across batches, so the last bits of the result depend on it.
        entropy: also average `-sum_v p(v) log p(v)` over the same positions (costs two more
            [batch_size, T, vocab] tensors).

    Returns:
        [`TeacherForcedScore`] `(nll, entropy)`; both NaN when no position is scored.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    if bos_token_id is None:
        bos_token_id = default_bos_token_id(model)
    sequences = torch.as_tensor(sequences, dtype=torch.long)
    if mask is not None:
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.shape != sequences.shape:
            raise ValueError(f"mask has shape {tuple(mask.shape)}, sequences {tuple(sequences.shape)}.")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    nll_total = entropy_total = 0.0
    count = 0
    for start in range(0, sequences.shape[0], batch_size):
        chunk = sequences[start:start + batch_size].to(device)
        inputs = torch.cat([chunk.new_full((chunk.shape[0], 1), bos_token_id), chunk[:, :-1]], dim=1)
        logits = model(input_ids=inputs).logits.float()
        if temperature != 1.0:  # skipped at 1.0 only to save a copy: x / 1.0 == x exactly
            logits = logits / temperature
        log_probs = torch.log_softmax(logits, dim=-1)
        token_nll = -log_probs.gather(-1, chunk.unsqueeze(-1)).squeeze(-1)
        token_entropy = -(log_probs.exp() * log_probs).sum(-1) if entropy else None
        if mask is None:
            nll_total += token_nll.sum().item()
            entropy_total += token_entropy.sum().item() if entropy else 0.0
            count += token_nll.numel()
        else:
            chunk_mask = mask[start:start + batch_size].to(device)
            nll_total += token_nll[chunk_mask].sum().item()
            entropy_total += token_entropy[chunk_mask].sum().item() if entropy else 0.0
            count += int(chunk_mask.sum())
    model.train(was_training)
    if count == 0:
        return TeacherForcedScore(float("nan"), float("nan") if entropy else None)
    return TeacherForcedScore(nll_total / count, entropy_total / count if entropy else None)
