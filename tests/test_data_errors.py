"""Bad data is refused (or warned about) before any training, naming the argument, the row and the fix.

Tables of bad inputs for `load_train_file` (the CLI's `--train_file`) and `encode_dataset` (the trainer's
`train_dataset` / `eval_dataset`); every file is written inside the test. Then the warnings (with their
counts), `sequence_overflow="drop"` and the same checks through `SeqGANTrainer(...)`.
"""

from __future__ import annotations

import gzip
import json
import logging
import re

import datasets
import pytest
import torch

from seqgan_hf import SeqGANTrainer
from seqgan_hf.data import UNK_WARNING_FRACTION, encode_dataset, load_train_file
from tests.builders import CORPUS, quick_config, tiny_cnn, tiny_lstm, train_tokenizer

JSON_FIX = "one JSON object per line"
IDS_FIX = "flat list of integer token ids"


def jsonl(*rows) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def save_to_disk(path, dataset) -> None:
    dataset.save_to_disk(str(path))


# name, what the file holds (str, bytes, or a function writing it), what the message says, the fix it gives
FILE_CASES = [
    ("empty.txt", "", "is empty", "one training example per line"),
    ("blank.txt", "\n   \n\t\n", r"only blank lines \(3\)", "one training example per line"),
    ("binary.txt", bytes(range(256)) * 4, "looks binary", "Pass a text file"),
    ("image.txt", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", r"looks binary \(a NUL byte at byte offset 8\)", "Pass a text file"),
    ("latin1.txt", "the cat\ncaf\xe9 au lait\n".encode("latin-1"),
     r"not UTF-8: byte 0xe9 on line 2 \(byte offset 11\)", "Re-encode it as UTF-8"),
    ("utf16.txt", "the cat\n".encode("utf-16"), "UTF-16", "Re-encode it as UTF-8"),
    ("malformed.jsonl", jsonl({"input_ids": [1, 2]}) + '{"input_ids": [3, 4\n',
     "line 2 is not valid JSON", JSON_FIX),
    ("strings.jsonl", jsonl({"input_ids": [1, 2]}, {"input_ids": ["3", "4"]}),
     "line 2: 'input_ids' holds the string '3' at position 0", IDS_FIX),
    ("floats.jsonl", jsonl({"input_ids": [1, 2.5]}), "line 1: 'input_ids' holds the float 2.5 at position 1", IDS_FIX),
    ("whole_floats.jsonl", jsonl({"input_ids": [1.0, 2.0]}), "holds the float 1.0", IDS_FIX),
    ("mixed.jsonl", jsonl({"input_ids": [1, 2]}, {"input_ids": [3]}, {"input_ids": [4, "five"]}),
     "line 3: 'input_ids' holds the string 'five' at position 1", IDS_FIX),
    ("nested.jsonl", jsonl({"input_ids": [[1, 2], [3]]}), r"holds a nested list \[1, 2\]", IDS_FIX),
    ("booleans.jsonl", jsonl({"input_ids": [True, False]}), "holds the boolean True", IDS_FIX),
    ("string_row.jsonl", jsonl({"input_ids": "1 2 3"}), "'input_ids' is the string '1 2 3', not a list", IDS_FIX),
    ("null_row.jsonl", jsonl({"input_ids": [1]}, {"input_ids": None}), r"line 2: 'input_ids' is missing \(null\)",
     IDS_FIX),
    ("no_field.jsonl", jsonl({"tokens": [1, 2]}), r"no 'input_ids', 'text' or 'prompt' and 'completion' fields \(it has \['tokens'\]\)",
     "Name the field holding token ids 'input_ids'"),
    ("switching.jsonl", jsonl({"input_ids": [1]}, {"text": "a b"}), "line 2 has no 'input_ids' field",
     "Give every row the 'input_ids' field"),
    ("text_number.jsonl", jsonl({"text": 5}), "'text' is the integer 5, not a string", "as a JSON string"),
    ("arrays.jsonl", "[1, 2]\n[3]\n", r"line 1 is a list \[1, 2\], not a JSON object", JSON_FIX),
    ("blank.jsonl", "\n\n", "is empty", JSON_FIX),
    ("broken_document.json", '[\n{"input_ids": [1]},\n{"input_ids": [2]\n]\n',
     "is not valid JSON: .* on line 4, column 1", JSON_FIX),
    ("truncated.txt.gz", gzip.compress(b"the cat\nthe dog\n")[:15], "could not be read", "valid gzip"),
    ("not_a_dataset", lambda path: (path.mkdir(), (path / "notes.txt").write_text("x")),
     r"directory but not a saved dataset \(it holds notes.txt", "save_to_disk"),
    ("no_train_split", lambda path: save_to_disk(path, datasets.DatasetDict(
        {"test": datasets.Dataset.from_dict({"input_ids": [[1]]})})),
     r"DatasetDict without a 'train' split \(it has \['test'\]\)", "as the 'train' split"),
    ("saved_empty", lambda path: save_to_disk(path, datasets.Dataset.from_dict({"input_ids": []})),
     "holds no rows", "at least one example"),
    ("saved_other_column", lambda path: save_to_disk(path, datasets.Dataset.from_dict({"tokens": [[1]]})),
     r"no 'input_ids', 'text' or 'prompt' and 'completion' columns \(it has \['tokens'\]\)", "Rename the column"),
]


@pytest.mark.parametrize("name, content, problem, fix", FILE_CASES, ids=[case[0] for case in FILE_CASES])
def test_bad_train_file_is_refused_naming_the_flag_the_path_and_the_fix(tmp_path, name, content, problem, fix):
    path = tmp_path / name
    if callable(content):
        content(path)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError) as caught:
        load_train_file(str(path))
    message = str(caught.value)
    assert message.startswith(f"--train_file {str(path)!r}: "), message
    assert re.search(problem, message), message
    assert fix in message, message


def test_missing_train_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--train_file '.*nowhere.txt' does not exist. Check the path."):
        load_train_file(str(tmp_path / "nowhere.txt"))


def test_a_bad_byte_far_into_the_file_is_still_found(tmp_path):
    """The scan reads to the end: 10k good lines, then one latin-1 byte."""
    path = tmp_path / "late.txt"
    path.write_bytes(b"the cat sat\n" * 10_000 + b"caf\xe9\n")
    with pytest.raises(ValueError, match=r"byte 0xe9 on line 10001 \(byte offset 120003\)"):
        load_train_file(str(path))


def test_a_nul_byte_past_the_first_block_is_still_found(tmp_path):
    """Past the 8 KiB sniffed up front, a NUL byte is caught on its line (it is valid UTF-8, so it would load)."""
    path = tmp_path / "late_nul.txt"
    path.write_bytes(b"the cat\n" * 2000 + b"x\0y\n")
    with pytest.raises(ValueError, match=r"looks binary \(a NUL byte on line 2001, byte offset 16001\)"):
        load_train_file(str(path))


def test_datasets_errors_never_reach_the_user(tmp_path, monkeypatch):
    """Whatever the scan misses and `datasets` then fails on comes back as a ValueError naming --train_file."""
    path = tmp_path / "corpus.txt"
    path.write_text("the cat\n")

    def failing_load(*args, **kwargs):
        raise datasets.exceptions.DatasetGenerationError("An error occurred while generating the dataset")

    monkeypatch.setattr(datasets, "load_dataset", failing_load)
    with pytest.raises(ValueError, match=r"--train_file '.*corpus.txt': `datasets` could not read it "
                                         r"\(DatasetGenerationError: An error occurred.*\)\. Pass a text file"):
        load_train_file(str(path))


# What loads today keeps loading: text (blank lines skipped), JSON Lines (BOM, blank lines), a pretty-printed
# JSON list, gzip files, save_to_disk directories, a DatasetDict's train split.
GOOD_FILES = [
    ("corpus.txt", "the cat\n\n  \nthe dog\n", {"text": ["the cat", "the dog"]}),
    ("rows.jsonl", "\ufeff" + jsonl({"input_ids": [1, 2]}) + "\n" + jsonl({"input_ids": []}),
     {"input_ids": [[1, 2], []]}),
    ("texts.jsonl", jsonl({"text": "a b", "id": 1}, {"text": "c", "id": 2}), {"text": ["a b", "c"], "id": [1, 2]}),
    ("pretty.json", json.dumps([{"input_ids": [1, 2]}, {"input_ids": [3]}], indent=2), {"input_ids": [[1, 2], [3]]}),
    ("rows.jsonl.gz", gzip.compress(jsonl({"input_ids": [4, 5]}).encode()), {"input_ids": [[4, 5]]}),
    ("corpus.txt.gz", gzip.compress(b"a b\nc\n"), {"text": ["a b", "c"]}),
    ("saved", lambda path: save_to_disk(path, datasets.Dataset.from_dict({"input_ids": [[1, 2]]})),
     {"input_ids": [[1, 2]]}),
    ("saved_dict", lambda path: save_to_disk(path, datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"text": ["x y"]}), "test": datasets.Dataset.from_dict({"text": ["z"]})})),
     {"text": ["x y"]}),
]


@pytest.mark.parametrize("name, content, expected", GOOD_FILES, ids=[case[0] for case in GOOD_FILES])
def test_good_train_files_still_load(tmp_path, name, content, expected):
    path = tmp_path / name
    if callable(content):
        content(path)
    else:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert load_train_file(str(path))[:] == expected


# -- encode_dataset -----------------------------------------------------------------------------------------------


def ids(rows, **features) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"input_ids": rows}, **features)


TOKENIZER = train_tokenizer()
LONG = [[5] * 3, [5] * 9, [5] * 7]

# dataset, encode_dataset keywords, exception, argument named, what is wrong, the fix
ENCODE_CASES = [
    ("strings", ids([["1", "2"]]), {}, ValueError, "train_dataset",
     "row 0 of 'input_ids' holds the string '1' at position 0", IDS_FIX),
    ("floats", ids([[1, 2], [3.5]]), {}, ValueError, "train_dataset", "row 0 of 'input_ids' holds the float 1.0",
     IDS_FIX),
    ("booleans", ids([[True, False]]), {"what": "eval_dataset"}, ValueError, "eval_dataset", "holds the boolean True", IDS_FIX),
    ("nested", ids([[[1, 2]], [[3]]]), {}, ValueError, "train_dataset", r"holds a nested list \[1, 2\]", IDS_FIX),
    ("null row", ids([[1, 2], [3], None]), {"what": "eval_dataset"}, ValueError, "eval_dataset", r"row 2 of 'input_ids' is missing \(null\)",
     IDS_FIX),
    ("null token", ids([[1, 2], [3, None]]), {}, ValueError, "train_dataset",
     r"row 1 of 'input_ids' holds missing \(null\) at position 1", IDS_FIX),
    ("float tensor rows", ids([[1, 2]]).with_format("torch", dtype=torch.float32), {}, ValueError, "train_dataset",
     "holds the float 1.0", IDS_FIX),
    ("id past vocab", ids([[1, 2], [3, 45], [50]]), {"vocab_size": 40}, ValueError, "train_dataset",
     r"row 1 holds the token id 45, outside \[0, 40\).*vocab_size=40 rows \(2 of 3 rows hold such ids; the largest is "
     r"50\)", "Build the generator with vocab_size >= 51, or re-tokenize"),
    ("id == vocab", ids([[1, 40]]), {"vocab_size": 40, "what": "eval_dataset"}, ValueError, "eval_dataset",
     r"row 0 holds the token id 40, outside \[0, 40\)", "vocab_size >= 41"),
    ("negative id", ids([[1, 2], [-100, 3]]), {"vocab_size": 40}, ValueError, "train_dataset",
     r"row 1 holds the token id -100; token ids are in \[0, vocab_size\)", "Remove negative ids"),
    ("overflow error", ids(LONG), {"overflow": "error"}, ValueError, "sequence_overflow",
     r"train_dataset: 2 of 3 training sequences are longer than the 5 tokens that sequence_length=6 leaves before "
     r"EOS \(the longest has 9 tokens\) and sequence_overflow='error'", "Raise sequence_length to 10"),
    ("overflow error (eval)", ids(LONG), {"overflow": "error", "what": "eval_dataset"}, ValueError, "sequence_length",
     "eval_dataset: 2 of 3 evaluation sequences are longer", "sequence_overflow='truncate'"),
    ("drop leaves none", ids(LONG[1:]), {"overflow": "drop"}, ValueError, "sequence_overflow",
     r"all 2 training sequences are longer .* \(the shortest has 7 tokens\), so sequence_overflow='drop' leaves none",
     "Raise sequence_length to at least 8"),
    ("unknown overflow", ids(LONG), {"overflow": "wrap"}, ValueError, "sequence_overflow", "'wrap'",
     "choose one of"),
    ("empty", ids([]), {}, ValueError, "train_dataset", "train_dataset is empty", "at least one sequence"),
    ("empty eval", ids([]), {"what": "eval_dataset"}, ValueError, "eval_dataset", "eval_dataset is empty",
     "at least one sequence"),
    ("none", None, {}, ValueError, "train_dataset", "train_dataset is empty", "at least one sequence"),
    ("dataset dict", datasets.DatasetDict({"train": ids([[1]])}), {}, ValueError, "train_dataset",
     r"is a DatasetDict \(splits \['train'\]\)", "pass one split"),
    ("no usable column", datasets.Dataset.from_dict({"tokens": [[1]]}), {"what": "eval_dataset"}, ValueError,
     "eval_dataset", r"needs an 'input_ids' or a 'text' column; it has \['tokens'\]", "rename_column"),
    ("text, no tokenizer", datasets.Dataset.from_dict({"text": ["a b"]}), {"tokenizer": None}, ValueError,
     "train_dataset", "has a 'text' column but no tokenizer", "processing_class=tokenizer"),
    ("text row missing", datasets.Dataset.from_dict({"text": ["the cat", None]}), {}, ValueError, "train_dataset",
     r"row 1 of 'text' is missing \(null\), not a string", "as a string"),
    ("all empty", ids([[], []]), {"what": "eval_dataset"}, ValueError, "eval_dataset", "every sequence in eval_dataset is empty",
     "at least one token"),
    ("short, no pad or EOS", ids([[1, 2, 3, 4, 5, 6], [1, 2]]), {"eos_token_id": None, "pad_token_id": None},
     ValueError, "train_dataset", "train_dataset: 1 training sequences are shorter than sequence_length=6",
     "Set tokenizer.pad_token"),
]


@pytest.mark.parametrize("dataset, keywords, error, argument, problem, fix", [case[1:] for case in ENCODE_CASES],
                         ids=[case[0] for case in ENCODE_CASES])
def test_bad_dataset_is_refused_naming_the_argument_the_row_and_the_fix(dataset, keywords, error, argument,
                                                                        problem, fix):
    arguments = dict(sequence_length=6, tokenizer=TOKENIZER, eos_token_id=2, pad_token_id=0) | keywords
    with pytest.raises(error) as caught:
        encode_dataset(dataset, **arguments)
    message = str(caught.value)
    assert argument in message, message
    assert re.search(problem, message), message
    assert fix in message, message


def test_tables_hold_at_least_twenty_cases_each():
    assert len(FILE_CASES) >= 20 and len(ENCODE_CASES) >= 20


# -- warnings and sequence_overflow ---------------------------------------------------------------------------------


def warnings_of(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "seqgan_hf.data"]


@pytest.mark.parametrize("eos_token_id, room, expected", [
    (2, 5, "2 of 3 training sequences are longer than the 5 tokens that sequence_length=6 leaves before EOS "
           "(the longest has 9 tokens) and were truncated to 5 tokens + EOS. To keep them whole, raise "
           "sequence_length to 10; set sequence_overflow='drop' to leave them out, or 'error' to refuse such data."),
    (None, 6, "2 of 3 training sequences are longer than sequence_length=6 (the longest has 9 tokens) and were "
              "truncated to 6 tokens. To keep them whole, raise sequence_length to 9; set sequence_overflow='drop' "
              "to leave them out, or 'error' to refuse such data."),
])
def test_truncation_always_warns_with_counts(caplog, eos_token_id, room, expected):
    """With an EOS too (it used to be silent then)."""
    with caplog.at_level(logging.WARNING, logger="seqgan_hf.data"):
        real = encode_dataset(ids(LONG), 6, eos_token_id=eos_token_id, pad_token_id=0)
    assert warnings_of(caplog) == ["train_dataset: " + expected]
    assert real.input_ids.shape == (3, 6)
    assert real.lengths.tolist() == [3 + (eos_token_id is not None), 6, 6]
    assert real.input_ids[1, :room].tolist() == [5] * room


def test_drop_keeps_exactly_the_short_rows_with_consistent_lengths(caplog):
    rows = [[7, 8, 9], [5] * 9, [10, 11, 12, 13, 14], [5] * 6, [15]]
    with caplog.at_level(logging.WARNING, logger="seqgan_hf.data"):
        real = encode_dataset(ids(rows), 6, eos_token_id=2, pad_token_id=0, overflow="drop", what="eval_dataset")
    assert warnings_of(caplog) == [
        "eval_dataset: 2 of 5 evaluation sequences are longer than the 5 tokens that sequence_length=6 leaves "
        "before EOS (the longest has 9 tokens); sequence_overflow='drop' left them out, 3 remain. To keep them, "
        "raise sequence_length to 10 or set sequence_overflow='truncate'."
    ]
    assert real.input_ids.tolist() == [[7, 8, 9, 2, 0, 0], [10, 11, 12, 13, 14, 2], [15, 2, 0, 0, 0, 0]]
    assert real.lengths.tolist() == [4, 6, 2]
    kept_only = encode_dataset(ids([rows[0], rows[2], rows[4]]), 6, eos_token_id=2, pad_token_id=0)
    assert torch.equal(real.input_ids, kept_only.input_ids) and torch.equal(real.lengths, kept_only.lengths)


def test_valid_data_encodes_as_before_and_silently(caplog):
    """The exact tensors the demo's numbers rest on; no warning for data that fits."""
    with caplog.at_level(logging.WARNING, logger="seqgan_hf.data"):
        with_eos = encode_dataset(ids([[5, 6], [7, 8, 9], []]), 4, eos_token_id=2, pad_token_id=0, vocab_size=10)
        fixed = encode_dataset(ids([[1, 2, 3], [4, 5, 6]]), 3, vocab_size=7)
        text = encode_dataset(datasets.Dataset.from_dict({"text": CORPUS[:2]}), 8, TOKENIZER,
                              TOKENIZER.eos_token_id, TOKENIZER.pad_token_id, vocab_size=len(TOKENIZER))
    assert with_eos.input_ids.tolist() == [[5, 6, 2, 0], [7, 8, 9, 2], [2, 0, 0, 0]]
    assert with_eos.lengths.tolist() == [3, 4, 1]
    assert fixed.input_ids.tolist() == [[1, 2, 3], [4, 5, 6]] and fixed.lengths.tolist() == [3, 3]
    expected = [TOKENIZER(line, add_special_tokens=False)["input_ids"] + [TOKENIZER.eos_token_id] for line in CORPUS[:2]]
    assert [row[: len(want)] for row, want in zip(text.input_ids.tolist(), expected)] == expected
    assert warnings_of(caplog) == []


def test_text_mostly_unknown_to_the_tokenizer_warns_with_the_fraction(caplog):
    texts = ["zebra quantum xylophone the", "violin cat"]  # 4 of 6 words are not in the tokenizer's vocabulary
    with caplog.at_level(logging.WARNING, logger="seqgan_hf.data"):
        encode_dataset(datasets.Dataset.from_dict({"text": texts}), 8, TOKENIZER, TOKENIZER.eos_token_id,
                       TOKENIZER.pad_token_id, what="eval_dataset")
    [message] = warnings_of(caplog)
    assert message.startswith(
        "eval_dataset: 67% of its 6 tokens (4) are the tokenizer's unknown token '[UNK]' (id 3), above the 50% "
        "threshold; e.g. row 0, 'zebra quantum xylophone the'."
    ), message
    assert "train a tokenizer on this data" in message and "processing_class" in message
    assert UNK_WARNING_FRACTION == 0.5


def test_text_with_a_few_unknown_words_does_not_warn(caplog):
    with caplog.at_level(logging.WARNING, logger="seqgan_hf.data"):
        encode_dataset(datasets.Dataset.from_dict({"text": ["zebra the cat", "the dog"]}), 8, TOKENIZER,
                       TOKENIZER.eos_token_id, TOKENIZER.pad_token_id)
    assert warnings_of(caplog) == []


# -- through SeqGANTrainer ------------------------------------------------------------------------------------------


def test_trainer_refuses_an_out_of_range_id_before_any_training(tmp_path):
    generator = tiny_lstm(vocab_size=40)
    before = [parameter.detach().clone() for parameter in generator.parameters()]
    rows = [[1, 2, 3, 4, 5, 6], [7, 8, 9, 40, 11, 12]]
    with pytest.raises(ValueError, match=r"train_dataset: row 1 holds the token id 40, outside \[0, 40\).*"
                                         r"vocab_size >= 41"):
        SeqGANTrainer(model=generator, discriminator=tiny_cnn(vocab_size=40), args=quick_config(tmp_path),
                      train_dataset=ids(rows))
    assert all(torch.equal(a, b) for a, b in zip(before, generator.parameters()))


def test_trainer_checks_the_eval_dataset_too(tmp_path):
    with pytest.raises(ValueError, match=r"eval_dataset: row 0 holds the token id 99"):
        SeqGANTrainer(model=tiny_lstm(vocab_size=40), discriminator=tiny_cnn(vocab_size=40),
                      args=quick_config(tmp_path), train_dataset=ids([[1] * 6]), eval_dataset=ids([[99] * 6]))


def test_trainer_passes_sequence_overflow(tmp_path, caplog):
    rows = [[1, 2, 3, 4, 5, 6], [1] * 9, [7, 8, 9, 10, 11, 12]]
    with pytest.raises(ValueError, match="1 of 3 training sequences .* sequence_overflow='error'"):
        SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), args=quick_config(tmp_path, sequence_overflow="error"),
                      train_dataset=ids(rows))
    with caplog.at_level(logging.WARNING, logger="seqgan_hf.data"):
        trainer = SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(),
                                args=quick_config(tmp_path, sequence_overflow="drop"), train_dataset=ids(rows))
    assert trainer.real.input_ids.tolist() == [rows[0], rows[2]]
    assert len(trainer.train_dataset) == 2
    assert "sequence_overflow='drop' left them out, 2 remain" in caplog.text
