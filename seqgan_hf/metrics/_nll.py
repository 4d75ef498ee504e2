"""NLL_oracle: the mean per-token negative log-likelihood that an oracle LM assigns to generated samples."""

from __future__ import annotations

import numbers
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def load_oracle_model(
    oracle: str | os.PathLike | torch.nn.Module,
    device: str | torch.device | None = None,
    *,
    sequence_length: int | None = None,
) -> torch.nn.Module:
    """The package's one oracle loader (`seqgan_hf.oracle.load_oracle` is a name for it): `oracle` itself if
    it is a model, else the model saved at that path.

    A directory is loaded with `AutoModelForCausalLM.from_pretrained` (any causal LM; the seqgan_hf models are
    registered), a `.npz` in the SeqGAN paper's layout (docs/PROTOCOL.md) with
    `LSTMForCausalLM.from_oracle_npz`, whose `sequence_length` it sets (default 20; a directory keeps its saved
    config). A loaded model is frozen, in eval mode and on `device` when given; a model object is returned as
    it is (on its own device).

    Raises:
        ValueError: `oracle` is neither a model, a directory nor an existing `.npz` file.
    """
    import torch

    if isinstance(oracle, torch.nn.Module):
        return oracle
    if not isinstance(oracle, str | os.PathLike):
        raise ValueError(
            f"oracle must be a model or the path of a saved model directory, got {type(oracle).__name__}."
        )
    path = os.fspath(oracle)
    # The model code is imported here, not at the top: BLEU users of `seqgan_hf.metrics` should not pay for it.
    if os.path.isdir(path):
        from transformers import AutoModelForCausalLM

        from .. import models  # noqa: F401  (registers the seqgan_hf model types with the Auto classes)

        model = AutoModelForCausalLM.from_pretrained(path)
    elif path.endswith(".npz") and os.path.isfile(path):
        from ..models import LSTMForCausalLM

        extra = {} if sequence_length is None else {"sequence_length": sequence_length}
        model = LSTMForCausalLM.from_oracle_npz(path, **extra)
    else:
        raise ValueError(
            f"oracle {path!r} is neither a save_pretrained directory nor an existing .npz file in the paper's layout."
        )
    model.eval().requires_grad_(False)
    if device is not None:
        model.to(device)
    return model


def _as_int_sequences(sequences: Iterable[Sequence[int]]) -> list[list[int]]:
    if hasattr(sequences, "tolist"):
        sequences = sequences.tolist()
    if isinstance(sequences, str) or not isinstance(sequences, Iterable):
        raise ValueError("predictions must be a list of token-id sequences (lists of ints).")
    result = []
    for index, sequence in enumerate(sequences):
        if hasattr(sequence, "tolist"):
            sequence = sequence.tolist()
        if isinstance(sequence, str) or not isinstance(sequence, Iterable):
            raise ValueError(
                f"predictions[{index}] is a {type(sequence).__name__}; NLL_oracle needs token ids (lists of ints)."
            )
        sequence = list(sequence)
        for token in sequence:
            if isinstance(token, bool) or not isinstance(token, numbers.Integral):
                raise ValueError(
                    f"predictions[{index}] contains a {type(token).__name__} token; NLL_oracle needs int token ids."
                )
        result.append([int(token) for token in sequence])
    return result


def nll_oracle(
    sequences: Iterable[Sequence[int]],
    oracle: str | os.PathLike | torch.nn.Module,
    bos_token_id: int | None = None,
    batch_size: int = 1024,
    device: str | None = None,
) -> float:
    """Mean per-token NLL (nats) of `sequences` under `oracle` (lower = more oracle-like samples).

    Each sequence is scored by feeding `[bos_token_id] + sequence` and averaging `-log p(token)` over the
    sequence's tokens; the average is over all tokens of all sequences. Sequences of different lengths are
    allowed (scored in groups of equal length). Scoring is done by
    `seqgan_hf.likelihood.teacher_forced_nll`.

    Args:
        sequences: generated samples as token ids: a list of int lists, or an int array/tensor [N, T].
        oracle: a model object, or the path of a `save_pretrained` directory / paper-layout `.npz`.
        bos_token_id: the start token; default: the oracle's own (its generation config's, else its config's
            `bos_token_id`, else 0).
        batch_size: sequences per forward pass.
        device: where to put an oracle loaded from a path (a model object stays where it is).

    Raises:
        ValueError: no tokens to score, non-int tokens, or token ids outside the oracle's vocabulary.
    """
    import torch

    from ..likelihood import teacher_forced_nll

    token_lists = _as_int_sequences(sequences)
    by_length: dict[int, list[list[int]]] = defaultdict(list)
    for tokens in token_lists:
        if tokens:
            by_length[len(tokens)].append(tokens)
    num_tokens = sum(length * len(group) for length, group in by_length.items())
    if num_tokens == 0:
        raise ValueError("predictions is empty (no tokens to score); NLL_oracle needs at least one token.")
    model = load_oracle_model(oracle, device)
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    low = min(min(tokens) for group in by_length.values() for tokens in group)
    high = max(max(tokens) for group in by_length.values() for tokens in group)
    if low < 0 or (vocab_size is not None and high >= vocab_size):
        raise ValueError(
            f"predictions contain token ids in [{low}, {high}], outside the oracle's vocabulary "
            f"[0, {vocab_size})."
        )
    total = 0.0
    for length, group in sorted(by_length.items()):
        batch = torch.tensor(group, dtype=torch.long)
        score = teacher_forced_nll(model, batch, bos_token_id, batch_size=batch_size)
        total += score.nll * length * len(group)
    return total / num_tokens
