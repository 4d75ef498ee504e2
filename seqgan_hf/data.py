"""Real data: loading training files, turning a dataset into fixed-length token tensors, MLE batches.

Bad data is refused (or, where training can go on, warned about) here, before any training: every message
names the argument (`--train_file`, `train_dataset` / `eval_dataset`, `sequence_length`, `sequence_overflow`,
`vocab_size`), what is wrong with which row, and the fix.
"""

from __future__ import annotations

import bz2
import gzip
import json
import logging
import lzma
import numbers
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import datasets
import pyarrow
import torch

logger = logging.getLogger(__name__)

#: What to do with training sequences longer than sequence_length (`SeqGANConfig.sequence_overflow`).
SEQUENCE_OVERFLOW = ("truncate", "drop", "error")

# Warn when more than this fraction of a text dataset's tokens are the tokenizer's unknown token.
UNK_WARNING_FRACTION = 0.5
# Compressed files `datasets` reads directly; the pre-scan reads them with the same codec.
_OPENERS: dict[str, Callable] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_FILE_KINDS = "a text file (one example per line), a .jsonl file or a directory written by Dataset.save_to_disk"
_JSON_FIX = 'Write one JSON object per line, e.g. {"input_ids": [5, 8, 2]} or {"text": "a sentence"}.'
_PAIR = ("prompt", "completion")
_PAIR_FIX = ('Give every row a "prompt" and a "completion", both strings (e.g. {"prompt": "Who goes there?", '
             '"completion": "A friend."}), both lists of token ids, or both lists of {"role", "content"} messages.')
_FORMATS = {"text": "a string", "ids": "token ids", "messages": "chat messages", "empty": "an empty list"}
_IDS_FIX = (
    "Store each row as a flat list of integer token ids (e.g. tokenizer(text)['input_ids']), not strings, "
    "floats, booleans or nested lists."
)


# -- training files -----------------------------------------------------------------------------------------------


def load_train_file(path: str, argument: str = "--train_file") -> datasets.Dataset:
    """Load a training set from a text file (one example per line), a JSON Lines file with an `input_ids` or
    `text` field, or `prompt` and `completion` fields (pairs), or a directory written by `Dataset.save_to_disk`
    (a DatasetDict needs a 'train' split). Text and JSON files may be gzip, bz2 or xz compressed.

    The file is scanned first, so empty, binary, non-UTF-8 or malformed files, `input_ids` that are not lists of
    ints and pairs missing a field or mixing formats raise a `ValueError` naming `argument` (the flag that gave the
    file, e.g. `--eval_file`), the line and the fix (never a raw `datasets` error).
    """
    try:
        return _load_file(path)
    except (ValueError, FileNotFoundError) as error:
        if argument == "--train_file":
            raise
        # Every message of the checks starts with the flag; name the one that gave this file.
        raise type(error)(str(error).replace("--train_file", argument, 1)) from error


def _load_file(path: str) -> datasets.Dataset:
    if not os.path.exists(path):
        raise FileNotFoundError(f"--train_file {path!r} does not exist. Check the path.")
    if os.path.isdir(path):
        return _checked(_load_saved_dataset(path), path)
    stem, extension = os.path.splitext(path)
    opener = _OPENERS.get(extension)
    is_json = (stem if opener else path).endswith((".jsonl", ".json"))
    if is_json:
        _check_json_file(path, opener or open)
    else:
        _check_text_file(path, opener or open)
    try:
        dataset = datasets.load_dataset("json" if is_json else "text", data_files=path, split="train")
    except (datasets.exceptions.DatasetsError, pyarrow.ArrowException) as err:
        # The scan should have caught every problem; this is the safety net for the ones it does not know.
        raise _file_error(path, f"`datasets` could not read it ({type(err).__name__}: {err})",
                          f"Pass {_FILE_KINDS}.") from err
    if not is_json:
        dataset = dataset.filter(lambda row: bool(row["text"].strip()))
    return _checked(dataset, path)


def _file_error(path: str, problem: str, fix: str) -> ValueError:
    return ValueError(f"--train_file {path!r}: {problem}. {fix}")


def _load_saved_dataset(path: str) -> datasets.Dataset:
    try:
        loaded = datasets.load_from_disk(path)
    except IndexError as err:
        # `datasets` cannot load a saved dataset without rows (it has no data files); anything else is re-raised.
        if _saved_without_rows(path):
            raise _file_error(path, "holds no rows (a saved dataset without data files)",
                              "Pass a dataset with at least one example.") from err
        raise
    except FileNotFoundError as err:
        entries = sorted(os.listdir(path))
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "") if entries else "nothing"
        raise _file_error(
            path, f"is a directory but not a saved dataset (it holds {shown}; a saved one has state.json and "
            "dataset_info.json, or dataset_dict.json)", f"Pass {_FILE_KINDS}.",
        ) from err
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise _file_error(path, f"holds a DatasetDict without a 'train' split (it has {list(loaded)})",
                              "Save the training rows as the 'train' split, or save that split alone.")
        loaded = loaded["train"]
    return loaded


def _saved_without_rows(path: str) -> bool:
    """Whether a saved Dataset (or any split of a saved DatasetDict) lists no data files."""
    states = [os.path.join(path, "state.json")]
    states += [os.path.join(path, split, "state.json") for split in sorted(os.listdir(path))]
    for state in filter(os.path.isfile, states):
        with open(state, encoding="utf-8") as handle:
            if not json.load(handle).get("_data_files", True):
                return True
    return False


def _checked(dataset: datasets.Dataset, path: str) -> datasets.Dataset:
    if len(dataset) == 0:
        raise _file_error(path, "holds no rows", "Pass a file with at least one example.")
    columns = dataset.column_names
    if "input_ids" not in columns and "text" not in columns and not set(_PAIR) <= set(columns):
        raise _file_error(path, f"has no 'input_ids', 'text' or 'prompt' and 'completion' columns (it has {columns})",
                          "Rename the column holding the data to 'input_ids' (token ids) or 'text', or the columns "
                          "of prompt-completion pairs to 'prompt' and 'completion'.")
    return dataset


def _lines(path: str, opener: Callable) -> Iterator[tuple[int, str]]:
    """(line number, decoded line) of the file; binary or non-UTF-8 content is refused where it is found."""
    try:
        with opener(path, "rb") as handle:
            head = handle.read(8192)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise _file_error(path, "is UTF-16 encoded text",
                              "Re-encode it as UTF-8, e.g. `iconv -f UTF-16 -t UTF-8 in.txt > out.txt`.")
        # Text never holds NUL bytes; binary files almost always do, early on (before any line break).
        nul = head.find(b"\0")
        if nul >= 0:
            raise _file_error(path, f"looks binary (a NUL byte at byte offset {nul})",
                              f"Pass {_FILE_KINDS}; unpack archives first (gzip, bz2 and xz are read as is).")
        offset = 0
        with opener(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                yield number, _decode(path, raw, number, offset)
                offset += len(raw)
    except (OSError, EOFError, lzma.LZMAError) as err:
        raise _file_error(path, f"could not be read ({type(err).__name__}: {err})",
                          f"Pass {_FILE_KINDS}, uncompressed or a valid gzip / bz2 / xz file.") from err


def _decode(path: str, raw: bytes, number: int, offset: int) -> str:
    nul = raw.find(b"\0")
    if nul >= 0:
        raise _file_error(path, f"looks binary (a NUL byte on line {number}, byte offset {offset + nul})",
                          f"Pass {_FILE_KINDS}.")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _file_error(
            path, f"is not UTF-8: byte 0x{raw[err.start]:02x} on line {number} (byte offset {offset + err.start}) "
            "cannot be decoded", "Re-encode it as UTF-8, e.g. `iconv -f latin1 -t UTF-8 in.txt > out.txt` "
            "(use the file's real encoding in place of latin1).",
        ) from err


def _check_text_file(path: str, opener: Callable) -> None:
    """Refuse a text file without text; reading it to the end also refuses binary and non-UTF-8 content."""
    has_text, count = False, 0
    for _, line in _lines(path, opener):  # to the end, no early exit: a bad byte may come late
        has_text, count = has_text or bool(line.strip()), count + 1
    if not has_text:
        problem = "is empty" if count == 0 else f"holds only blank lines ({count})"
        raise _file_error(path, problem, "Pass a file with one training example per line.")


def _check_json_file(path: str, opener: Callable) -> None:
    """Check a JSON Lines file (or one JSON document: a list of objects or one object) row by row."""
    column, rows, first = None, 0, True
    for number, line in _lines(path, opener):
        line = line.removeprefix("\ufeff") if number == 1 else line
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            if first:  # not JSON Lines: maybe one document over several lines, which `datasets` also reads
                _check_json_document(path, opener)
                return
            raise _file_error(path, f"line {number} is not valid JSON ({err.msg} at column {err.colno})",
                              _JSON_FIX) from err
        column = _check_record(path, record, f"line {number}", column)
        rows, first = rows + 1, False
    if rows == 0:
        raise _file_error(path, "is empty (no JSON rows)", _JSON_FIX)


def _check_json_document(path: str, opener: Callable) -> None:
    text = "".join(line for _, line in _lines(path, opener)).removeprefix("\ufeff")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise _file_error(path, f"is not valid JSON: {err.msg} on line {err.lineno}, column {err.colno}",
                          _JSON_FIX) from err
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise _file_error(path, f"holds {_describe(document)}, not rows", _JSON_FIX)
    if not document:
        raise _file_error(path, "holds an empty JSON list (no rows)", _JSON_FIX)
    column = None
    for index, record in enumerate(document):
        column = _check_record(path, record, f"record {index}", column)


def _check_record(path: str, record, where: str, column: str | None) -> str:
    """Check one JSON row; return the column the file uses (fixed by its first row): 'input_ids', 'text', or for
    prompt-completion pairs 'pairs:<format>' (the format the cells so far share, see `_cell_format`; '' before
    the first)."""
    if not isinstance(record, dict):
        raise _file_error(path, f"{where} is {_describe(record)}, not a JSON object", _JSON_FIX)
    if column is None:
        halves = [name for name in _PAIR if name in record]
        column = ("pairs:" if len(halves) == 2 else "input_ids" if "input_ids" in record
                  else "text" if "text" in record else None)
        if column is None and halves:
            missing = next(name for name in _PAIR if name not in halves)
            raise _file_error(path, f"{where} has a {halves[0]!r} field but no {missing!r} field", _PAIR_FIX)
        if column is None:
            raise _file_error(path, f"{where} has no 'input_ids', 'text' or 'prompt' and 'completion' fields (it "
                              f"has {sorted(record)})", "Name the field holding token ids 'input_ids', or the field "
                              "holding text 'text'; for prompt-completion pairs give 'prompt' and 'completion'.")
    if column.startswith("pairs:"):
        return _check_pair(path, record, where, column)
    if column not in record:
        raise _file_error(path, f"{where} has no {column!r} field, which the first row has",
                          f"Give every row the {column!r} field.")
    value = record[column]
    if column == "input_ids":
        problem = _row_problem(value)
        if problem:
            raise _file_error(path, f"{where}: 'input_ids' {problem}", _IDS_FIX)
    elif not isinstance(value, str):
        raise _file_error(path, f"{where}: 'text' is {_describe(value)}, not a string",
                          "Store each row's text as a JSON string.")
    return column


def _check_pair(path: str, record: dict, where: str, column: str) -> str:
    """A prompt-completion row: both fields, each a string, a list of int ids or a list of messages, in the one
    format of the file (an empty list fits ids and messages)."""
    kind = column.removeprefix("pairs:")
    for name in _PAIR:
        if name not in record:
            raise _file_error(path, f"{where} has no {name!r} field, which the first row has", _PAIR_FIX)
        cell = _cell_format(record[name])
        if cell.startswith("?"):
            raise _file_error(path, f"{where}: {name!r} {cell[1:]}", _PAIR_FIX)
        if not kind or {kind, cell} in ({"empty", "ids"}, {"empty", "messages"}):
            kind = cell if kind in ("", "empty") else kind
        elif cell != kind:
            raise _file_error(path, f"{where}: {name!r} holds {_FORMATS[cell]}, but the values before it hold "
                              f"{_FORMATS[kind]}", "Give 'prompt' and 'completion' in one format in every row.")
    return f"pairs:{kind}"


def _cell_format(value) -> str:
    """'text', 'ids', 'messages' or 'empty' (an empty list) for a prompt or completion; '?<problem>' otherwise."""
    if isinstance(value, str):
        return "text"
    if not isinstance(value, list):
        return f"?is {_describe(value)}, not a string, a list of token ids or a list of messages"
    if not value:
        return "empty"
    if isinstance(value[0], dict):
        for position, message in enumerate(value):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str) or "content" not in message:
                return (f"?holds {_describe(message, nested=True)} at position {position}, not a message with a "
                        "'role' string and a 'content'")
        return "messages"
    problem = _row_problem(value)
    return f"?{problem}" if problem else "ids"


# -- token id rows ------------------------------------------------------------------------------------------------


def _describe(value, nested: bool = False) -> str:
    """A short, readable name for a value that should have been something else (`nested`: inside a row)."""
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    if value is None:
        return "missing (null)"
    if isinstance(value, bool):
        return f"the boolean {shown}"
    if isinstance(value, (list, tuple)):
        return f"{'a nested list' if nested else 'a list'} {shown}"
    names = {str: "the string", float: "the float", int: "the integer", dict: "the object"}
    return f"{names.get(type(value), 'a ' + type(value).__name__)} {shown}"


def _row_problem(row) -> str | None:
    """What is wrong with an `input_ids` row that should be a flat list of ints, or None when it is one."""
    if row is None:
        return "is missing (null)"
    if not isinstance(row, (list, tuple)):
        return f"is {_describe(row)}, not a list of token ids"
    if set(map(type, row)) <= {int}:  # the common case, in C
        return None
    for position, token in enumerate(row):
        # numpy integers are ints too; booleans (an int subclass) are not token ids.
        if not isinstance(token, numbers.Integral) or isinstance(token, bool):
            return f"holds {_describe(token, nested=True)} at position {position}, not an int"
    return None


def _id_rows(column, what: str) -> list[list[int]]:
    rows = []
    for index, row in enumerate(column):
        # Rows of a dataset formatted as torch / numpy arrive as tensors or arrays.
        row = row.tolist() if hasattr(row, "tolist") and not isinstance(row, (list, tuple)) else row
        problem = _row_problem(row)
        if problem:
            raise ValueError(f"{what}: row {index} of 'input_ids' {problem}. {_IDS_FIX}")
        rows.append(list(row))
    return rows


def _check_id_range(sequences: list[list[int]], vocab_size: int | None, what: str) -> None:
    """Every id in [0, vocab_size): an id past the embedding would stop MLE training with an IndexError."""
    limit = vocab_size if vocab_size is not None else float("inf")
    for index, ids in enumerate(sequences):
        if not ids or (min(ids) >= 0 and max(ids) < limit):
            continue
        bad = min(ids) if min(ids) < 0 else max(ids)
        if bad < 0:
            raise ValueError(
                f"{what}: row {index} holds the token id {bad}; token ids are in [0, vocab_size). Remove negative "
                "ids (-100 marks ignored labels, never inputs), or re-tokenize the data."
            )
        count = sum(bool(row) and max(row) >= vocab_size for row in sequences)
        largest = max(max(row) for row in sequences if row)
        raise ValueError(
            f"{what}: row {index} holds the token id {bad}, outside [0, {vocab_size}): the generator's embedding "
            f"has vocab_size={vocab_size} rows ({count} of {len(sequences)} rows hold such ids; the largest is "
            f"{largest}). Build the generator with vocab_size >= {largest + 1}, or re-tokenize the data with "
            "the generator's tokenizer."
        )


def _warn_unknown(sequences: list[list[int]], texts: list[str], tokenizer, what: str) -> None:
    """Warn when the tokenizer maps most of the text to its unknown token: training would learn that token."""
    unk = getattr(tokenizer, "unk_token_id", None)
    total = sum(map(len, sequences))
    if unk is None or total == 0:
        return
    unknown = sum(ids.count(unk) for ids in sequences)
    if unknown / total <= UNK_WARNING_FRACTION:
        return
    worst = max(range(len(sequences)), key=lambda row: sequences[row].count(unk))
    logger.warning(
        "%s: %.0f%% of its %d tokens (%d) are the tokenizer's unknown token %r (id %d), above the %.0f%% "
        "threshold; e.g. row %d, %r. The tokenizer does not cover this text, so training would mostly learn "
        "the unknown token: train a tokenizer on this data, or pass the tokenizer it was written for as "
        "processing_class.",
        what, 100 * unknown / total, total, unknown, getattr(tokenizer, "unk_token", None), unk,
        100 * UNK_WARNING_FRACTION, worst, texts[worst][:60],
    )


def _fit(sequences: list[list[int]], sequence_length: int, room: int, eos: bool, overflow: str, what: str,
         noun: str) -> list[list[int]]:
    """Apply `sequence_overflow` to the sequences longer than `room`: all kept (truncated later), or dropped."""
    if overflow not in SEQUENCE_OVERFLOW:
        raise ValueError(f"sequence_overflow={overflow!r}: choose one of {SEQUENCE_OVERFLOW}.")
    long = [len(ids) for ids in sequences if len(ids) > room]
    if not long:
        return sequences
    limit = (f"the {room} tokens that sequence_length={sequence_length} leaves before EOS" if eos
             else f"sequence_length={sequence_length}")
    needed = max(long) + eos
    counts = (f"{len(long)} of {len(sequences)} {noun} sequences are longer than {limit} (the longest has "
              f"{max(long)} tokens)")
    if overflow == "error":
        raise ValueError(
            f"{what}: {counts} and sequence_overflow='error'. Raise sequence_length to {needed} to keep them "
            "whole, or set sequence_overflow='truncate' (cut them, with a warning) or 'drop' (leave them out)."
        )
    if overflow == "truncate":
        logger.warning(
            "%s: %s and were truncated to %d tokens%s. To keep them whole, raise sequence_length to %d; set "
            "sequence_overflow='drop' to leave them out, or 'error' to refuse such data.",
            what, counts, room, " + EOS" if eos else "", needed,
        )
        return sequences
    kept = [ids for ids in sequences if len(ids) <= room]
    if not kept:
        raise ValueError(
            f"{what}: all {len(sequences)} {noun} sequences are longer than {limit} (the shortest has "
            f"{min(long)} tokens), so sequence_overflow='drop' leaves none. Raise sequence_length to at least "
            f"{min(long) + eos}, or set sequence_overflow='truncate'."
        )
    logger.warning(
        "%s: %s; sequence_overflow='drop' left them out, %d remain. To keep them, raise sequence_length to %d "
        "or set sequence_overflow='truncate'.", what, counts, len(kept), needed,
    )
    return kept


# -- encoding -----------------------------------------------------------------------------------------------------


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
    fixed_length: bool = False,
) -> RealSequences:
    """Turn `dataset` (an `input_ids` column, or a `text` column and a tokenizer) into [N, T] token ids.

    Shorter sequences get EOS (if the model has one) and then padding. Longer ones (than T, or T - 1 before an
    EOS) are handled as `overflow` says: "truncate" (with a warning that counts them), "drop" (with a warning)
    or "error". Text is tokenized without special tokens: the trainer adds the start token.

    `fixed_length=True` (`SeqGANConfig.append_eos=False`, the paper's setting) appends no EOS and refuses any
    sequence shorter than T (longer ones follow `overflow`).

    Refused with a `ValueError` naming `what` (the argument: "train_dataset" or "eval_dataset"), the row and the
    fix: `input_ids` rows that are not lists of ints, ids outside [0, vocab_size) (when `vocab_size` is given),
    an empty dataset, no usable column. Text mostly mapped to the tokenizer's unknown token is warned about.
    """
    if isinstance(dataset, datasets.DatasetDict):
        raise ValueError(f"{what} is a DatasetDict (splits {list(dataset)}): pass one split, e.g. dataset['train'].")
    if dataset is None or len(dataset) == 0:
        raise ValueError(f"{what} is empty: pass a dataset with at least one sequence.")
    noun = {"train_dataset": "training", "eval_dataset": "evaluation"}.get(what, what)
    columns = dataset.column_names
    texts = None
    if "input_ids" in columns:
        sequences = _id_rows(dataset["input_ids"], what)
    elif "text" in columns:
        if tokenizer is None:
            raise ValueError(
                f"{what} has a 'text' column but no tokenizer was given: pass processing_class=tokenizer."
            )
        texts = list(dataset["text"])
        if not set(map(type, texts)) <= {str}:
            index = next(row for row, text in enumerate(texts) if not isinstance(text, str))
            raise ValueError(f"{what}: row {index} of 'text' is {_describe(texts[index])}, not a string. Give "
                             "every row its text as a string (drop or fill the missing ones).")
        sequences = tokenizer(texts, add_special_tokens=False)["input_ids"]
    else:
        raise ValueError(
            f"{what} needs an 'input_ids' or a 'text' column; it has {columns}. Rename the column holding the "
            "data, e.g. dataset.rename_column(name, 'text')."
        )
    _check_id_range(sequences, vocab_size, what)
    if texts is not None:
        _warn_unknown(sequences, texts, tokenizer, what)

    if fixed_length:
        eos_token_id = None
    room = sequence_length - (1 if eos_token_id is not None else 0)
    sequences = _fit(sequences, sequence_length, room, eos_token_id is not None, overflow, what, noun)
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
        raise ValueError(f"every sequence in {what} is empty after tokenization: give it rows with at least one "
                         "token (non-empty 'input_ids', or 'text' the tokenizer encodes).")
    if eos_token_id is None and (lengths < sequence_length).any():
        short = int((lengths < sequence_length).sum())
        if fixed_length:
            raise ValueError(
                f"{what}: {short} of {len(sequences)} {noun} sequences are shorter than sequence_length="
                f"{sequence_length} (the shortest has {int(lengths.min())} tokens), and append_eos=False asks for "
                "fixed-length sequences. Set append_eos=True (variable-length text ending with EOS), or give "
                f"sequences of exactly {sequence_length} tokens."
            )
        if pad_token_id is None:
            raise ValueError(
                f"{what}: {short} {noun} sequences are shorter than sequence_length={sequence_length} and the "
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
