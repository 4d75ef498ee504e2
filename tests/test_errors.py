"""Bad input fails before any training, with a message that names the argument and the fix."""

from __future__ import annotations

import datasets
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from seqgan_hf import SeqGANConfig, SeqGANTrainer
from tests.builders import quick_config, tiny_cnn, tiny_lstm, train_tokenizer


def ids_dataset(rows):
    return datasets.Dataset.from_dict({"input_ids": rows})


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"rollout_num": 0}, "rollout_num"),
        ({"temperature": 0.0}, "temperature"),
        ({"rollout_policy": "copy"}, "rollout_policy"),
        ({"reward_baseline": "critic"}, "reward_baseline"),
        ({"rollout_update_rate": 1.5}, "rollout_update_rate"),
        ({"mle_epochs": -1}, "mle_epochs"),
        ({"d_steps": 2, "d_epochs": 0}, "d_epochs"),
        ({"g_steps": 0, "d_steps": 0}, "g_steps"),
        ({"num_negatives": 0}, "num_negatives"),
        ({"top_k": -1}, "top_k"),
        ({"sequence_length": 0}, "sequence_length"),
        ({"score_batch_size": 0}, "score_batch_size"),
    ],
)
def test_invalid_config_names_the_field(tmp_path, overrides, field):
    with pytest.raises(ValueError, match=rf"SeqGANConfig\.{field}:"):
        SeqGANConfig(output_dir=str(tmp_path), **overrides)


def test_empty_dataset(tmp_path):
    with pytest.raises(ValueError, match="train_dataset is empty"):
        SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), args=quick_config(tmp_path),
                      train_dataset=ids_dataset([]))


def test_dataset_without_usable_column(tmp_path):
    with pytest.raises(ValueError, match="'input_ids' or a 'text' column"):
        SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), args=quick_config(tmp_path),
                      train_dataset=datasets.Dataset.from_dict({"tokens": [[1, 2]]}))


def test_text_without_tokenizer(tmp_path):
    with pytest.raises(ValueError, match="processing_class"):
        SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), args=quick_config(tmp_path),
                      train_dataset=datasets.Dataset.from_dict({"text": ["a b c"]}))


def test_long_sequences_are_truncated_with_a_warning(tmp_path, caplog):
    rows = [[1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 5, 6]]
    with caplog.at_level("WARNING"):
        trainer = SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), args=quick_config(tmp_path),
                                train_dataset=ids_dataset(rows))
    assert trainer.real.input_ids.shape == (2, 6)
    assert trainer.real.input_ids[0].tolist() == [1, 2, 3, 4, 5, 6]
    assert "1 of 2 training sequences are longer than sequence_length=6" in caplog.text


def test_short_sequences_without_pad_or_eos(tmp_path):
    with pytest.raises(ValueError, match="shorter than sequence_length"):
        SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), args=quick_config(tmp_path),
                      train_dataset=ids_dataset([[1, 2, 3]]))


def test_tokenizer_without_pad_token(tmp_path, text_dataset):
    tokenizer = train_tokenizer()
    tokenizer.pad_token = None
    with pytest.raises(ValueError, match="no pad token.*tokenizer.pad_token = tokenizer.eos_token"):
        SeqGANTrainer(model=tiny_lstm(vocab_size=len(tokenizer)), discriminator=tiny_cnn(vocab_size=len(tokenizer)),
                      args=quick_config(tmp_path), train_dataset=text_dataset, processing_class=tokenizer)


def test_discriminator_with_three_labels(tmp_path):
    with pytest.raises(ValueError, match="num_labels is 3.*num_labels=2"):
        SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(num_labels=3), args=quick_config(tmp_path),
                      train_dataset=ids_dataset([[1] * 6]))


def test_shared_ids_with_different_vocab_sizes(tmp_path):
    with pytest.raises(ValueError, match="40 token ids but the discriminator 30.*vocab_size=40"):
        SeqGANTrainer(model=tiny_lstm(vocab_size=40), discriminator=tiny_cnn(vocab_size=30),
                      args=quick_config(tmp_path), train_dataset=ids_dataset([[1] * 6]))


def test_generator_that_is_not_a_causal_lm(tmp_path):
    classifier = BertForSequenceClassification(
        BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8, vocab_size=40)
    )
    with pytest.raises(TypeError, match="not a causal LM.*AutoModelForCausalLM"):
        SeqGANTrainer(model=classifier, discriminator=tiny_cnn(), args=quick_config(tmp_path),
                      train_dataset=ids_dataset([[1] * 6]))


def test_args_must_be_a_seqgan_config(tmp_path):
    from transformers import TrainingArguments

    with pytest.raises(TypeError, match="SeqGANConfig"):
        SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), args=TrainingArguments(str(tmp_path)),
                      train_dataset=ids_dataset([[1] * 6]))


def test_errors_come_before_any_training(tmp_path):
    """A bad discriminator is refused in __init__, before the (long) MLE phase would start."""
    generator = tiny_lstm()
    before = [p.detach().clone() for p in generator.parameters()]
    with pytest.raises(ValueError):
        SeqGANTrainer(model=generator, discriminator=tiny_cnn(num_labels=5), args=quick_config(tmp_path),
                      train_dataset=ids_dataset([[1] * 6]))
    assert all(torch.equal(a, b) for a, b in zip(before, generator.parameters()))
