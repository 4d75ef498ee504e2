"""Prompt-completion data (TRL's formats): prompts as token lists, completions as fixed-length token tensors.

Accepted: a `prompt` and a `completion` column, both text (tokenized without special tokens), both lists of
token ids, or both conversational (lists of `{"role", "content"}` messages, rendered with the tokenizer's chat
template). Other columns are ignored. Completions are encoded exactly as `encode_dataset` encodes a sequence
(EOS, padding, `sequence_overflow`, `append_eos=False`); prompts longer than `max_prompt_length` follow
`prompt_overflow`. Pairs always stay aligned: a pair left out for its prompt or its completion loses both.

Bad data is refused with a `ValueError` naming the argument (`train_dataset` / `eval_dataset`), the row, the
column and the fix, as in `seqgan_hf.data`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import datasets
import torch

from .data import (
    SEQUENCE_OVERFLOW,
    RealSequences,
    _check_id_range,
    _describe,
    _row_problem,
    _warn_unknown,
    encode_dataset,
)
from .prompts import Prompts

logger = logging.getLogger(__name__)

#: What to do with prompts longer than `max_prompt_length`.
PROMPT_OVERFLOW = SEQUENCE_OVERFLOW  # the same three choices as for completions
_COLUMNS = ("prompt", "completion")
_FORMATS_FIX = (
    "Give both columns in one of TRL's prompt-completion formats: strings, lists of int token ids, or lists of "
    '{"role": ..., "content": ...} messages.'
)
_names = {"text": "text", "ids": "token ids", "messages": "chat messages", "empty": "only empty lists"}


@dataclass
class PromptCompletions:
    """Prompt-completion pairs: prompts as token lists (no BOS), completions as `RealSequences` [N, T]."""

    prompts: list[list[int]]
    completions: RealSequences

    def __len__(self) -> int:
        return len(self.prompts)

    def prompt_batch(self, rows: torch.Tensor | Sequence[int], bos_token_id: int, pad_token_id: int | None,
                     device: torch.device | str | None = None) -> Prompts:
        """The left-padded `Prompts` batch (`[pad.., BOS, prompt]`) of the pairs at `rows`."""
        indices = rows.tolist() if isinstance(rows, torch.Tensor) else list(rows)
        return Prompts.from_token_lists([self.prompts[index] for index in indices], bos_token_id, pad_token_id,
                                        device)


def is_prompt_dataset(dataset) -> bool:
    """Whether `dataset` has both a 'prompt' and a 'completion' column (any split, for a DatasetDict)."""
    columns = getattr(dataset, "column_names", None)
    if isinstance(columns, dict):  # a DatasetDict: split -> columns
        columns = [name for names in columns.values() for name in names]
    return columns is not None and all(name in columns for name in _COLUMNS)


# -- reading the two columns ----------------------------------------------------------------------------------------


def _kind(value) -> str:
    """'text', 'ids', 'messages', 'empty' (an empty list: fits ids and messages) or '?' for one cell."""
    if isinstance(value, str):
        return "text"
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):  # rows of a torch / numpy dataset
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return "?"
    if not value:
        return "empty"
    return "messages" if isinstance(value[0], dict) else "ids"


def _column_kind(values: list, column: str, what: str) -> str:
    """The one format of a column ('empty' when every row is an empty list); mixed or unusable rows are refused."""
    kind, first, first_empty = "empty", None, None
    for index, value in enumerate(values):
        row_kind = _kind(value)
        if row_kind == "?":
            raise ValueError(f"{what}: row {index} of {column!r} is {_describe(value)}, not a string, a list of "
                             f"token ids or a list of messages. {_FORMATS_FIX} Drop or fill the missing rows.")
        if row_kind == "empty":
            first_empty = index if first_empty is None else first_empty
        elif kind == "empty":
            kind, first = row_kind, index
        elif row_kind != kind:
            raise ValueError(f"{what}: {column!r} mixes formats: row {first} holds {_names[kind]} but row {index} "
                             f"holds {_names[row_kind]}. {_FORMATS_FIX}")
    if kind == "text" and first_empty is not None:
        raise ValueError(f"{what}: {column!r} mixes formats: row {first} holds a string but row {first_empty} an "
                         "empty list. Give an empty text as the string ''.")
    return kind


def _ids(values: list, column: str, what: str) -> list[list[int]]:
    rows = []
    for index, value in enumerate(values):
        value = value.tolist() if hasattr(value, "tolist") and not isinstance(value, (list, tuple)) else value
        problem = _row_problem(value)
        if problem:
            raise ValueError(f"{what}: row {index} of {column!r} {problem}. Store token ids as flat lists of "
                             f"ints (e.g. tokenizer(text)['input_ids']), or give every row of {column!r} as text.")
        rows.append([int(token) for token in value])
    return rows


def _messages(value, index: int, column: str, what: str) -> list[dict]:
    """The row's messages, with the keys Arrow filled with None (fields other rows have) removed."""
    messages = []
    for position, message in enumerate(value):
        if not isinstance(message, dict):
            raise ValueError(f"{what}: row {index} of {column!r} holds {_describe(message, nested=True)} at "
                             f"position {position}, not a message. {_FORMATS_FIX}")
        message = {key: field for key, field in message.items() if field is not None}
        if not isinstance(message.get("role"), str) or "content" not in message:
            raise ValueError(f"{what}: row {index} of {column!r}: message {position} has no 'role' string or no "
                             f"'content' (it has {sorted(message)}). Give every message a role and a content.")
        messages.append(message)
    return messages


def _chat_texts(prompts: list, completions: list, tokenizer, what: str) -> tuple[list[str], list[str]]:
    """Prompt text (with the generation prompt) and what the full conversation adds after it, per row."""
    prompts = [_messages(prompt, index, "prompt", what) for index, prompt in enumerate(prompts)]
    completions = [_messages(completion, index, "completion", what) for index, completion in enumerate(completions)]
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        have = "no tokenizer was given" if tokenizer is None else "the tokenizer has no chat template"
        raise ValueError(
            f"{what} is conversational (lists of messages) but {have}: pass processing_class=<a chat model's "
            "tokenizer>, set tokenizer.chat_template to a Jinja template, or give 'prompt' and 'completion' as text."
        )
    prompt_texts, completion_texts = [], []
    for index, (prompt, completion) in enumerate(zip(prompts, completions)):
        try:
            prompt_text = tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            full_text = tokenizer.apply_chat_template(prompt + completion, tokenize=False)
        except Exception as err:  # the template is user code: name the row it failed on
            raise ValueError(f"{what}: row {index}: the tokenizer's chat template failed ({type(err).__name__}: "
                             f"{err}). Fix the messages of that row or the template.") from err
        if not full_text.startswith(prompt_text):
            raise ValueError(
                f"{what}: row {index}: the chat template renders the prompt with its generation prompt as "
                f"{prompt_text[-60:]!r} (end), which the full conversation {full_text[:len(prompt_text) + 20]!r} "
                "does not start with, so the completion cannot be split off. Use a chat template whose "
                "add_generation_prompt output is a prefix of the conversation, or give the pairs as text."
            )
        prompt_texts.append(prompt_text)
        completion_texts.append(full_text[len(prompt_text):])
    return prompt_texts, completion_texts


def _token_pairs(dataset: datasets.Dataset, tokenizer, what: str) -> tuple[list[list[int]], list[list[int]]]:
    """(prompt ids, completion ids) of every row, whatever the format."""
    prompts, completions = list(dataset["prompt"]), list(dataset["completion"])
    prompt_kind = _column_kind(prompts, "prompt", what)
    completion_kind = _column_kind(completions, "completion", what)
    kinds = {prompt_kind, completion_kind}
    if len(kinds - {"empty"}) > 1 or kinds == {"text", "empty"}:
        raise ValueError(f"{what}: 'prompt' holds {_names[prompt_kind]} but 'completion' holds "
                         f"{_names[completion_kind]}. Give both columns in the same format: both strings, "
                         "both token ids or both lists of messages.")
    kind = next(iter(kinds - {"empty"}), "ids")
    if kind == "ids":
        return _ids(prompts, "prompt", what), _ids(completions, "completion", what)
    if kind == "messages":
        prompt_texts, completion_texts = _chat_texts(prompts, completions, tokenizer, what)
    else:
        if tokenizer is None:
            raise ValueError(f"{what} has text in 'prompt' and 'completion' but no tokenizer was given: pass "
                             "processing_class=tokenizer, or give the columns as lists of token ids.")
        prompt_texts, completion_texts = prompts, completions
    prompt_ids = tokenizer(prompt_texts, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion_texts, add_special_tokens=False)["input_ids"]
    _warn_unknown([p + c for p, c in zip(prompt_ids, completion_ids)],
                  [f"{p} {c}" for p, c in zip(prompt_texts, completion_texts)], tokenizer, what)
    return [list(ids) for ids in prompt_ids], [list(ids) for ids in completion_ids]


# -- fitting prompts ------------------------------------------------------------------------------------------------


def _fit_prompts(prompts: list[list[int]], max_prompt_length: int | None, prompt_overflow: str,
                 what: str) -> tuple[list[list[int]], list[bool]]:
    """Apply `prompt_overflow` to prompts over `max_prompt_length`: (prompts, which pairs are kept)."""
    if prompt_overflow not in PROMPT_OVERFLOW:
        raise ValueError(f"prompt_overflow={prompt_overflow!r}: choose one of {PROMPT_OVERFLOW}.")
    keep = [True] * len(prompts)
    if max_prompt_length is None:
        return prompts, keep
    if isinstance(max_prompt_length, bool) or not isinstance(max_prompt_length, int) or max_prompt_length < 0:
        raise ValueError(f"max_prompt_length={max_prompt_length!r}: pass a number of tokens >= 0 (the start token "
                         "not counted), or None for no limit.")
    long = [len(ids) for ids in prompts if len(ids) > max_prompt_length]
    if not long:
        return prompts, keep
    counts = (f"{len(long)} of {len(prompts)} prompts are longer than max_prompt_length={max_prompt_length} "
              f"tokens (the longest has {max(long)})")
    if prompt_overflow == "error":
        raise ValueError(
            f"{what}: {counts} and prompt_overflow='error'. Raise max_prompt_length to {max(long)} to keep them "
            f"whole, or set prompt_overflow='truncate' (keep each prompt's last {max_prompt_length} tokens, with "
            "a warning) or 'drop' (leave those pairs out)."
        )
    if prompt_overflow == "truncate":
        logger.warning(
            "%s: %s and were truncated to their last %d tokens (the ones next to the completion). To keep them "
            "whole, raise max_prompt_length to %d; set prompt_overflow='drop' to leave those pairs out, or "
            "'error' to refuse such data.", what, counts, max_prompt_length, max(long),
        )
        # ids[len - m:], not ids[-m:]: max_prompt_length=0 keeps nothing.
        return [ids[max(0, len(ids) - max_prompt_length):] for ids in prompts], keep
    keep = [len(ids) <= max_prompt_length for ids in prompts]
    if not any(keep):
        raise ValueError(
            f"{what}: all {len(prompts)} prompts are longer than max_prompt_length={max_prompt_length} tokens "
            f"(the shortest has {min(long)}), so prompt_overflow='drop' leaves none. Raise max_prompt_length to "
            f"at least {min(long)}, or set prompt_overflow='truncate'."
        )
    logger.warning(
        "%s: %s; prompt_overflow='drop' left those pairs out, %d remain. To keep them, raise max_prompt_length "
        "to %d or set prompt_overflow='truncate'.", what, counts, sum(keep), max(long),
    )
    return prompts, keep


# -- encoding -------------------------------------------------------------------------------------------------------


def encode_prompt_dataset(
    dataset: datasets.Dataset,
    sequence_length: int,
    tokenizer=None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
    *,
    vocab_size: int | None = None,
    max_prompt_length: int | None = None,
    prompt_overflow: str = "truncate",
    overflow: str = "truncate",
    what: str = "train_dataset",
    fixed_length: bool = False,
) -> PromptCompletions:
    """Turn a prompt-completion `dataset` (TRL's standard or conversational format) into `PromptCompletions`.

    Completions become [N, sequence_length] token ids exactly as `encode_dataset` encodes sequences (EOS unless
    `fixed_length`, padding, `overflow` for long ones). Prompts are token lists without BOS; those longer than
    `max_prompt_length` tokens (None: no limit) are cut to their last tokens ("truncate", warned), left out with
    their completion ("drop", warned) or refused ("error"), as `prompt_overflow` says. Empty prompts are allowed.
    Conversational rows need a tokenizer with a chat template: the prompt is rendered with the generation prompt,
    the completion is what the full conversation adds after it; both are tokenized without special tokens.

    Refused with a `ValueError` naming `what`, the row, the column and the fix: a DatasetDict, an empty dataset,
    missing columns, mixed formats, cells that are not text / token ids / messages, ids outside [0, vocab_size).
    """
    if isinstance(dataset, datasets.DatasetDict):
        raise ValueError(f"{what} is a DatasetDict (splits {list(dataset)}): pass one split, e.g. dataset['train'].")
    if dataset is None or len(dataset) == 0:
        raise ValueError(f"{what} is empty: pass a dataset with at least one prompt-completion pair.")
    missing = [name for name in _COLUMNS if name not in dataset.column_names]
    if missing:
        raise ValueError(f"{what} needs 'prompt' and 'completion' columns; it lacks {missing} (it has "
                         f"{dataset.column_names}). Rename the columns holding them, e.g. "
                         "dataset.rename_column(name, 'completion').")
    prompts, completions = _token_pairs(dataset, tokenizer, what)
    _check_id_range(prompts, vocab_size, f"{what} ('prompt' column)")
    _check_id_range(completions, vocab_size, f"{what} ('completion' column)")

    prompts, keep = _fit_prompts(prompts, max_prompt_length, prompt_overflow, what)
    prompts = [ids for ids, kept in zip(prompts, keep) if kept]
    completions = [ids for ids, kept in zip(completions, keep) if kept]
    if not any(completions):
        raise ValueError(f"every completion in {what} is empty after tokenization: give rows with at least one "
                         "completion token.")
    encoded = encode_dataset(datasets.Dataset.from_dict({"input_ids": completions}), sequence_length,
                             eos_token_id=eos_token_id, pad_token_id=pad_token_id, overflow=overflow, what=what,
                             fixed_length=fixed_length)
    if overflow == "drop":  # encode_dataset left out the completions over its room: leave out their prompts too
        room = sequence_length - (eos_token_id is not None and not fixed_length)
        prompts = [ids for ids, completion in zip(prompts, completions) if len(completion) <= room]
    if len(prompts) != len(encoded):
        raise RuntimeError(f"{what}: {len(prompts)} prompts but {len(encoded)} completions after fitting (a bug).")
    return PromptCompletions(prompts, encoded)


# -- MLE batches ----------------------------------------------------------------------------------------------------


def prompt_mle_dataset(data: PromptCompletions) -> datasets.Dataset:
    """The rows `PromptMLECollator` reads: 'prompt_ids', 'input_ids' (the completion [T]) and 'length'."""
    features = datasets.Features({
        "prompt_ids": datasets.List(datasets.Value("int64")),
        "input_ids": datasets.List(datasets.Value("int64")),
        "length": datasets.Value("int64"),
    })
    return datasets.Dataset.from_dict({
        "prompt_ids": data.prompts,
        "input_ids": data.completions.input_ids.tolist(),
        "length": data.completions.lengths.tolist(),
    }, features=features)


class PromptMLECollator:
    """Teacher-forcing batches of prompt-completion pairs: rows `[BOS, prompt, completion]`, loss on the completion.

    `features`: dicts with 'prompt_ids' (list[int]), 'input_ids' (the completion [T]) and 'length' (completion
    tokens kept, EOS included). Rows are left-aligned and right-padded to the batch's longest row with the pad
    token (else EOS, else 0); labels are -100 on BOS, on every prompt token and on padding.
    """

    def __init__(self, bos_token_id: int, eos_token_id: int | None, pad_token_id: int | None):
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        rows, starts = [], []
        for feature in features:
            prompt = torch.as_tensor(feature["prompt_ids"], dtype=torch.long).reshape(-1)
            completion = torch.as_tensor(feature["input_ids"], dtype=torch.long)[: int(feature["length"])]
            rows.append(torch.cat([prompt.new_full((1,), self.bos_token_id), prompt, completion]))
            starts.append(1 + len(prompt))  # the first completion column
        fill = next((token for token in (self.pad_token_id, self.eos_token_id) if token is not None), 0)
        width = max(len(row) for row in rows)
        input_ids = torch.full((len(rows), width), fill, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        for index, (row, start) in enumerate(zip(rows, starts)):
            input_ids[index, : len(row)] = row
            attention_mask[index, : len(row)] = 1
            labels[index, start : len(row)] = row[start:]
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
