"""Prompt-completion datasets (TRL's standard and conversational formats) -> prompts + completion tensors."""

from __future__ import annotations

import logging

import datasets
import pytest
import torch

from seqgan_hf.data import encode_dataset
from seqgan_hf.prompt_data import (
    PromptCompletions,
    PromptMLECollator,
    encode_prompt_dataset,
    is_prompt_dataset,
    prompt_mle_dataset,
)
from seqgan_hf.prompts import Prompts
from tests.builders import train_tokenizer

# The word-level tokenizer's ids: [PAD] 0, [BOS] 1, [EOS] 2, [UNK] 3, and these words.
THE, CAT, DOG, SAT, ON, MAT, RAN, IN, PARK, A, MY, BY = 4, 6, 7, 9, 23, 21, 26, 18, 8, 5, 22, 15
TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
            "{% if add_generation_prompt %}<assistant> {% endif %}")


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer("wordlevel")


def pairs(prompts, completions, **other) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"prompt": prompts, "completion": completions, **other})


def messages(content: str, role: str = "user") -> list[dict]:
    return [{"role": role, "content": content}]


def messages_of(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


# -- formats --------------------------------------------------------------------------------------------------------


def test_standard_text_tokenizes_both_columns_without_special_tokens(tokenizer):
    data = pairs(["the cat", "", "a dog ran"], ["sat on the mat", "ran", "in the park"], score=[1, 2, 3])
    assert is_prompt_dataset(data) and not is_prompt_dataset(data.remove_columns("completion"))
    encoded = encode_prompt_dataset(data, 6, tokenizer, eos_token_id=2, pad_token_id=0)
    assert isinstance(encoded, PromptCompletions) and len(encoded) == 3
    assert encoded.prompts == [[THE, CAT], [], [A, DOG, RAN]]
    assert encoded.completions.input_ids.tolist() == [
        [SAT, ON, THE, MAT, 2, 0], [RAN, 2, 0, 0, 0, 0], [IN, THE, PARK, 2, 0, 0]]
    assert encoded.completions.lengths.tolist() == [5, 2, 4]


def test_standard_token_ids_need_no_tokenizer():
    data = pairs([[5, 6], [], [7]], [[8, 9, 10], [11], [12, 13]])
    encoded = encode_prompt_dataset(data, 4, eos_token_id=2, pad_token_id=0, vocab_size=14)
    assert encoded.prompts == [[5, 6], [], [7]]
    assert encoded.completions.input_ids.tolist() == [[8, 9, 10, 2], [11, 2, 0, 0], [12, 13, 2, 0]]
    torch_rows = encode_prompt_dataset(data.with_format("torch"), 4, eos_token_id=2, pad_token_id=0)
    assert torch_rows.prompts == encoded.prompts
    assert torch.equal(torch_rows.completions.input_ids, encoded.completions.input_ids)


def test_conversational_uses_the_chat_template_and_splits_off_the_completion():
    tokenizer = train_tokenizer("wordlevel")  # a fresh one: tokens are added below
    tokenizer.add_tokens(["<user>", "<assistant>", "<system>"])
    user, assistant, system = tokenizer.convert_tokens_to_ids(["<user>", "<assistant>", "<system>"])
    # Only row 1 names its user: Arrow gives row 0's messages name=None, which must count as no name.
    tokenizer.chat_template = TEMPLATE.replace("{% endfor %}", "{% if 'name' in m %}by {{ m['name'] }} "
                                               "{% endif %}{% endfor %}")
    data = pairs([[{"role": "system", "content": "a"}, {"role": "user", "content": "the cat"}],
                  [{"role": "user", "content": "dog", "name": "my"}]],
                 [messages("sat on the mat", "assistant"), messages("ran", "assistant")])
    encoded = encode_prompt_dataset(data, 6, tokenizer, eos_token_id=2, pad_token_id=0)
    # "<system> a <user> the cat <assistant> " / "sat on the mat " (what the full conversation adds).
    assert encoded.prompts == [[system, A, user, THE, CAT, assistant], [user, DOG, BY, MY, assistant]]
    assert encoded.completions.input_ids.tolist() == [[SAT, ON, THE, MAT, 2, 0], [RAN, 2, 0, 0, 0, 0]]


def test_conversational_needs_a_chat_template_whose_prompt_is_a_prefix():
    data = pairs([messages("the cat")], [messages("sat", "assistant")])
    with pytest.raises(ValueError, match=r"^train_dataset is conversational .* no tokenizer was given: pass "
                       r"processing_class="):
        encode_prompt_dataset(data, 4, None, eos_token_id=2)
    tokenizer = train_tokenizer("wordlevel")
    with pytest.raises(ValueError, match=r"the tokenizer has no chat template: .*set tokenizer.chat_template"):
        encode_prompt_dataset(data, 4, tokenizer, eos_token_id=2)
    # A generation prompt the conversation does not continue: the completion cannot be split off.
    tokenizer.chat_template = TEMPLATE.replace("<assistant> {% endif %}", "<bot> {% endif %}")
    with pytest.raises(ValueError, match=r"^train_dataset: row 0: the chat template renders the prompt .* does "
                       r"not start with"):
        encode_prompt_dataset(data, 4, tokenizer, eos_token_id=2)


def test_prompt_less_datasets_are_not_prompt_datasets(tokenizer):
    plain = datasets.Dataset.from_dict({"text": ["the cat sat", "a dog"]})
    assert not is_prompt_dataset(plain)
    assert not is_prompt_dataset(datasets.Dataset.from_dict({"prompt": ["the cat"]}))
    assert is_prompt_dataset(datasets.DatasetDict(train=pairs(["a"], ["b"])))
    real = encode_dataset(plain, 4, tokenizer, eos_token_id=2, pad_token_id=0)
    assert real.input_ids.tolist() == [[THE, CAT, SAT, 2], [A, DOG, 2, 0]]
    with pytest.raises(ValueError, match=r"^train_dataset needs 'prompt' and 'completion' columns; it lacks "
                       r"\['prompt', 'completion'\]"):
        encode_prompt_dataset(plain, 4, tokenizer, eos_token_id=2)


# -- max_prompt_length / prompt_overflow ----------------------------------------------------------------------------


def test_prompt_truncation_keeps_the_end_and_warns_once(caplog):
    data = pairs([[10, 11, 12, 13, 14], [15], [16, 17, 18, 19]], [[20], [21], [22]])
    with caplog.at_level(logging.WARNING):
        encoded = encode_prompt_dataset(data, 3, eos_token_id=2, pad_token_id=0, max_prompt_length=2)
    assert encoded.prompts == [[13, 14], [15], [18, 19]]
    assert messages_of(caplog) == [
        "train_dataset: 2 of 3 prompts are longer than max_prompt_length=2 tokens (the longest has 5) and were "
        "truncated to their last 2 tokens (the ones next to the completion). To keep them whole, raise "
        "max_prompt_length to 5; set prompt_overflow='drop' to leave those pairs out, or 'error' to refuse such "
        "data."
    ]
    zero = encode_prompt_dataset(data, 3, eos_token_id=2, pad_token_id=0, max_prompt_length=0)
    assert zero.prompts == [[], [], []]  # not ids[-0:], the whole prompt


def test_dropping_keeps_prompts_and_completions_aligned(caplog):
    # Row 1's prompt and row 3's completion are too long: rows 0, 2 and 4 remain, each with its own partner.
    data = pairs([[10], [11, 11, 11, 11], [12, 12], [13], []], [[20], [21], [22, 22], [23, 23, 23, 23], [24]])
    with caplog.at_level(logging.WARNING):
        encoded = encode_prompt_dataset(data, 3, eos_token_id=2, pad_token_id=0, max_prompt_length=3,
                                        prompt_overflow="drop", overflow="drop")
    assert encoded.prompts == [[10], [12, 12], []]
    assert encoded.completions.input_ids.tolist() == [[20, 2, 0], [22, 22, 2], [24, 2, 0]]
    assert encoded.completions.lengths.tolist() == [2, 3, 2]
    assert messages_of(caplog) == [
        "train_dataset: 1 of 5 prompts are longer than max_prompt_length=3 tokens (the longest has 4); "
        "prompt_overflow='drop' left those pairs out, 4 remain. To keep them, raise max_prompt_length to 4 or "
        "set prompt_overflow='truncate'.",
        "train_dataset: 1 of 4 training sequences are longer than the 2 tokens that sequence_length=3 leaves "
        "before EOS (the longest has 4 tokens); sequence_overflow='drop' left them out, 3 remain. To keep them, "
        "raise sequence_length to 5 or set sequence_overflow='truncate'.",
    ]
    only_completions = encode_prompt_dataset(data, 3, eos_token_id=2, pad_token_id=0, overflow="drop")
    assert only_completions.prompts == [[10], [11, 11, 11, 11], [12, 12], []]
    with pytest.raises(ValueError, match=r"^eval_dataset: all 5 prompts are longer than max_prompt_length=0 "
                       r"tokens .*leaves none"):
        encode_prompt_dataset(pairs([[1]] * 5, [[2]] * 5), 3, eos_token_id=2, max_prompt_length=0,
                              prompt_overflow="drop", what="eval_dataset")


def test_prompt_overflow_error_names_both_arguments_and_the_longest():
    data = pairs([[10, 11, 12], [13, 14, 15, 16, 17]], [[20], [21]])
    with pytest.raises(ValueError, match=r"^eval_dataset: 2 of 2 prompts are longer than max_prompt_length=1 "
                       r"tokens \(the longest has 5\) and prompt_overflow='error'\. Raise max_prompt_length to 5"):
        encode_prompt_dataset(data, 3, eos_token_id=2, max_prompt_length=1, prompt_overflow="error",
                              what="eval_dataset")
    with pytest.raises(ValueError, match=r"^prompt_overflow='cut': choose one of \('truncate', 'drop', 'error'\)"):
        encode_prompt_dataset(data, 3, eos_token_id=2, max_prompt_length=1, prompt_overflow="cut")
    with pytest.raises(ValueError, match=r"^max_prompt_length=-1: pass a number of tokens >= 0"):
        encode_prompt_dataset(data, 3, eos_token_id=2, max_prompt_length=-1)


# -- completions: as encode_dataset -----------------------------------------------------------------------------


def test_completion_overflow_truncates_with_a_warning_or_refuses(caplog):
    data = pairs([[10], [11]], [[20, 21, 22, 23, 24], [25]])
    with caplog.at_level(logging.WARNING):
        encoded = encode_prompt_dataset(data, 3, eos_token_id=2, pad_token_id=0)
    assert encoded.completions.input_ids.tolist() == [[20, 21, 2], [25, 2, 0]]
    assert messages_of(caplog) == [
        "train_dataset: 1 of 2 training sequences are longer than the 2 tokens that sequence_length=3 leaves "
        "before EOS (the longest has 5 tokens) and were truncated to 2 tokens + EOS. To keep them whole, raise "
        "sequence_length to 6; set sequence_overflow='drop' to leave them out, or 'error' to refuse such data."
    ]
    with pytest.raises(ValueError, match=r"^train_dataset: 1 of 2 training sequences .* and "
                       r"sequence_overflow='error'\. Raise sequence_length to 6"):
        encode_prompt_dataset(data, 3, eos_token_id=2, pad_token_id=0, overflow="error")


def test_fixed_length_completions_get_no_eos_and_must_fill_the_length():
    data = pairs([[10], []], [[20, 21, 22], [23, 24, 25, 26]])
    encoded = encode_prompt_dataset(data, 3, eos_token_id=2, pad_token_id=0, fixed_length=True)
    assert encoded.completions.input_ids.tolist() == [[20, 21, 22], [23, 24, 25]]
    assert encoded.completions.lengths.tolist() == [3, 3]
    short = pairs([[10]], [[20, 21]])
    with pytest.raises(ValueError, match=r"^train_dataset: 1 of 1 training sequences are shorter than "
                       r"sequence_length=3 .* append_eos=False"):
        encode_prompt_dataset(short, 3, eos_token_id=2, pad_token_id=0, fixed_length=True)


def test_ids_outside_the_vocabulary_are_refused_naming_the_column():
    with pytest.raises(ValueError, match=r"^train_dataset \('prompt' column\): row 1 holds the token id 40, "
                       r"outside \[0, 30\)"):
        encode_prompt_dataset(pairs([[10], [40]], [[20], [21]]), 3, eos_token_id=2, vocab_size=30)
    with pytest.raises(ValueError, match=r"^train_dataset \('completion' column\): row 0 holds the token id -1"):
        encode_prompt_dataset(pairs([[10], [11]], [[-1], [21]]), 3, eos_token_id=2, vocab_size=30)
    assert len(encode_prompt_dataset(pairs([[29]], [[29]]), 3, eos_token_id=2, vocab_size=30)) == 1


class MixedColumns:
    """Columns Arrow could not hold (mixed types), as a dataset-like object hands them over from Python."""

    def __init__(self, columns: dict):
        self.columns, self.column_names = columns, list(columns)

    def __len__(self) -> int:
        return len(self.columns["prompt"])

    def __getitem__(self, name: str) -> list:
        return self.columns[name]


@pytest.mark.parametrize("prompts, completions, expected", [
    ([[1], None], [[2], [3]], r"^train_dataset: row 1 of 'prompt' is missing \(null\), not a string"),
    (["a", "b"], [[2], [3]], r"^train_dataset: 'prompt' holds text but 'completion' holds token ids"),
    ([[1], [1.5]], [[2], [3]], r"^train_dataset: row 1 of 'prompt' holds the float 1.5 at position 0, not an int"),
    ([[1], [True]], [[2], [3]], r"^train_dataset: row 1 of 'prompt' holds the boolean True at position 0"),
    ([[1], [2]], [[2], 7], r"^train_dataset: row 1 of 'completion' is the integer 7, not a string"),
    ([[{"role": "user", "content": "a"}]], [[{"content": "b"}]],
     r"^train_dataset: row 0 of 'completion': message 0 has no 'role' string"),
])
def test_bad_cells_are_refused_naming_row_and_column(prompts, completions, expected):
    with pytest.raises(ValueError, match=expected):
        encode_prompt_dataset(MixedColumns({"prompt": prompts, "completion": completions}), 3, eos_token_id=2)
    if expected.startswith(r"^train_dataset: row 1 of 'prompt' is missing"):  # Arrow holds this one too
        with pytest.raises(ValueError, match=expected):
            encode_prompt_dataset(pairs(prompts, completions), 3, eos_token_id=2)


def test_mixed_rows_text_without_tokenizer_empty_and_dataset_dict_are_refused():
    mixed = {"prompt": [[1], "a"], "completion": [[2], [3]]}
    with pytest.raises(ValueError, match=r"^train_dataset: 'prompt' mixes formats: row 0 holds token ids but "
                       r"row 1 holds text"):
        encode_prompt_dataset(MixedColumns(mixed), 3, eos_token_id=2)
    # Arrow fills the fields a message lacks with None: a missing content is still missing.
    no_content = pairs([messages("a"), messages("b")], [messages("c", "assistant"), [{"role": "assistant"}]])
    with pytest.raises(ValueError, match=r"^train_dataset: row 1 of 'completion': message 0 has no 'role' string "
                       r"or no 'content' \(it has \['role'\]\)"):
        encode_prompt_dataset(no_content, 3, eos_token_id=2)
    with pytest.raises(ValueError, match=r"^train_dataset has text in 'prompt' and 'completion' but no tokenizer"):
        encode_prompt_dataset(pairs(["a"], ["b"]), 3, eos_token_id=2)
    with pytest.raises(ValueError, match=r"^eval_dataset is empty"):
        encode_prompt_dataset(pairs([], []), 3, eos_token_id=2, what="eval_dataset")
    with pytest.raises(ValueError, match=r"^train_dataset is a DatasetDict \(splits \['train'\]\): pass one split"):
        encode_prompt_dataset(datasets.DatasetDict(train=pairs([[1]], [[2]])), 3, eos_token_id=2)


# -- batches --------------------------------------------------------------------------------------------------------


def test_collator_masks_exactly_bos_prompt_and_padding():
    features = [
        {"prompt_ids": [10, 11], "input_ids": [20, 21, 2, 0], "length": 3},
        {"prompt_ids": [], "input_ids": [22, 2, 0, 0], "length": 2},
        {"prompt_ids": [12, 13, 14], "input_ids": [23, 24, 25, 2], "length": 4},
    ]
    batch = PromptMLECollator(bos_token_id=1, eos_token_id=2, pad_token_id=2)(features)  # pad == EOS
    assert batch["input_ids"].tolist() == [
        [1, 10, 11, 20, 21, 2, 2, 2], [1, 22, 2, 2, 2, 2, 2, 2], [1, 12, 13, 14, 23, 24, 25, 2]]
    assert batch["attention_mask"].tolist() == [
        [1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]]
    m = -100
    assert batch["labels"].tolist() == [
        [m, m, m, 20, 21, 2, m, m], [m, 22, 2, m, m, m, m, m], [m, m, m, m, 23, 24, 25, 2]]


def test_mle_dataset_feeds_the_collator_and_prompt_batches_round_trip():
    data = encode_prompt_dataset(pairs([[10, 11], [], [12]], [[20], [21, 22], [23]]), 4, eos_token_id=2,
                                 pad_token_id=0)
    rows = prompt_mle_dataset(data)
    assert rows.column_names == ["prompt_ids", "input_ids", "length"]
    batch = PromptMLECollator(1, 2, 0)([rows[index] for index in range(3)])
    assert batch["input_ids"].tolist() == [[1, 10, 11, 20, 2], [1, 21, 22, 2, 0], [1, 12, 23, 2, 0]]
    assert batch["labels"].tolist() == [[-100, -100, -100, 20, 2], [-100, 21, 22, 2, -100],
                                        [-100, -100, 23, 2, -100]]
    prompts = data.prompt_batch(torch.tensor([2, 0, 1]), bos_token_id=1, pad_token_id=0)
    assert isinstance(prompts, Prompts)
    assert prompts.input_ids.tolist() == [[0, 1, 12], [1, 10, 11], [0, 0, 1]]
    assert prompts.token_lists() == [[12], [10, 11], []]
    assert data.prompt_batch([1], 1, 0).token_lists() == [[]]
