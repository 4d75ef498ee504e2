"""Real data: loading training files, turning a dataset into fixed-length token tensors, MLE batches."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import datasets
import torch

logger = logging.getLogger(__name__)


def load_train_file(path: str) -> datasets.Dataset:
    """Load a training set from a text file (one example per line), a JSON Lines file with an `input_ids`
    or `text` field, or a directory written by `Dataset.save_to_disk`."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"--train_file {path!r} does not exist.")
    if os.path.isdir(path):
        loaded = datasets.load_from_disk(path)
        if isinstance(loaded, datasets.DatasetDict):
            if "train" not in loaded:
                raise ValueError(f"{path} holds a DatasetDict without a 'train' split (has {list(loaded)}).")
            loaded = loaded["train"]
        return loaded
    if path.endswith((".jsonl", ".json")):
        return datasets.load_dataset("json", data_files=path, split="train")
    dataset = datasets.load_dataset("text", data_files=path, split="train")
    return dataset.filter(lambda row: bool(row["text"].strip()))


@dataclass
class RealSequences:
    """Real sequences as a [N, T] tensor of token ids, right-padded with `pad_token_id` after EOS."""

    input_ids: torch.LongTensor
    lengths: torch.LongTensor

    def __len__(self) -> int:
        return self.input_ids.shape[0]


def encode_dataset(
    dataset: datasets.Dataset,
    sequence_length: int,
    tokenizer=None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    *,
    vocab_size: int | None = None,
    overflow: str = "truncate",
    what: str = "train_dataset",
) -> RealSequences:
    """Turn `dataset` (an `input_ids` column, or a `text` column and a tokenizer) into [N, T] token ids.

    Sequences longer than T are truncated to T (a warning says how many); shorter ones get EOS (if the model
    has one) and then padding. Text is tokenized without special tokens: the trainer adds the start token.
    """
    if dataset is None or len(dataset) == 0:
        raise ValueError("train_dataset is empty: pass a dataset with at least one sequence.")
    columns = dataset.column_names
    if "input_ids" in columns:
        sequences = [list(ids) for ids in dataset["input_ids"]]
    elif "text" in columns:
        if tokenizer is None:
            raise ValueError(
                "train_dataset has a 'text' column but no tokenizer was given: pass processing_class=tokenizer."
            )
        sequences = tokenizer(list(dataset["text"]), add_special_tokens=False)["input_ids"]
    else:
        raise ValueError(f"train_dataset needs an 'input_ids' or a 'text' column; it has {columns}.")

    room = sequence_length - (1 if eos_token_id is not None else 0)
    truncated = sum(len(ids) > room for ids in sequences)
    if truncated and eos_token_id is None:
        logger.warning(
            "%d of %d training sequences are longer than sequence_length=%d and were truncated to it.",
            truncated, len(sequences), sequence_length,
        )
    fill = pad_token_id if pad_token_id is not None else (eos_token_id if eos_token_id is not None else 0)
    padded = torch.full((len(sequences), sequence_length), fill, dtype=torch.long)
    lengths = torch.empty(len(sequences), dtype=torch.long)
    empty = 0
    for row, ids in enumerate(sequences):
        ids = list(ids[:room])
        empty += not ids
        if eos_token_id is not None and len(ids) < sequence_length:
            ids.append(eos_token_id)
        padded[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        lengths[row] = len(ids)
    if empty == len(sequences):
        raise ValueError("every sequence in train_dataset is empty after tokenization.")
    if eos_token_id is None and (lengths < sequence_length).any():
        short = int((lengths < sequence_length).sum())
        if pad_token_id is None:
            raise ValueError(
                f"{short} training sequences are shorter than sequence_length={sequence_length} and the "
                "tokenizer/model has no pad or EOS token. Set tokenizer.pad_token (and an EOS) or use "
                "fixed-length data."
            )
    return RealSequences(padded, lengths)


def mask_after_eos(sequences: torch.LongTensor, eos_token_id: int | None, pad_token_id: int | None):
    """Replace tokens after the first EOS with padding; return (sequences, mask of kept tokens).

    The EOS itself is kept (it is a decision of the policy and earns a reward)."""
    keep = torch.ones_like(sequences, dtype=torch.bool)
    if eos_token_id is None:
        return sequences, keep
    is_eos = sequences == eos_token_id
    # A position is kept while no EOS occurred strictly before it.
    eos_before = (is_eos.cumsum(dim=1) - is_eos.long()) > 0
    keep = ~eos_before
    fill = pad_token_id if pad_token_id is not None else eos_token_id
    return sequences.masked_fill(eos_before, fill), keep


def strip_after_eos(sequences: torch.LongTensor, eos_token_id: int | None, pad_token_id: int | None) -> list[list[int]]:
    """Token lists of `sequences` [R, T], cut after the first EOS, with EOS and padding dropped."""
    _, keep = mask_after_eos(sequences, eos_token_id, pad_token_id)
    rows = sequences.tolist()
    drop = {token for token in (eos_token_id, pad_token_id) if token is not None}
    if not drop:
        return rows
    return [[token for token, kept in zip(row, row_keep) if kept and token not in drop]
            for row, row_keep in zip(rows, keep.tolist())]


class MLECollator:
    """Collate `input_ids` rows into teacher-forcing batches: [BOS] + tokens, loss on real tokens only."""

    def __init__(self, bos_token_id: int, eos_token_id: int | None, pad_token_id: int | None):
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        tokens = torch.stack([torch.as_tensor(feature["input_ids"], dtype=torch.long) for feature in features])
        lengths = torch.as_tensor([feature["length"] for feature in features], dtype=torch.long)
        bos = tokens.new_full((tokens.shape[0], 1), self.bos_token_id)
        input_ids = torch.cat([bos, tokens], dim=1)
        positions = torch.arange(input_ids.shape[1]).unsqueeze(0)
        attention_mask = (positions <= lengths.unsqueeze(1)).long()
        labels = input_ids.masked_fill(attention_mask == 0, -100)
        labels[:, 0] = -100  # the start token is given, never predicted
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
