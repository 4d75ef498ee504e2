"""Real text: a tokenizer built from the training file, held-out evaluation (BLEU, Self-BLEU, NLL) during training
and in the end-of-training table, and the text task's flags."""

from __future__ import annotations

import json

import datasets
import pytest
import torch

from seqgan_hf.cli import main
from seqgan_hf.data import load_train_file
from seqgan_hf.likelihood import teacher_forced_nll
from seqgan_hf.text import TextEvaluator, build_tokenizer, held_out_split, texts_of
from tests.builders import CORPUS, lm_token_ids, tiny_gpt2
from tests.test_cli import REPO, run_cli

SMALL = ["--sequence_length", "8", "--mle_epochs", "2", "--discriminator_pretrain_rounds", "1", "--num_negatives",
         "16", "--adversarial_iterations", "1", "--rollout_num", "2", "--eval_samples", "32",
         "--discriminator_filter_sizes", "1", "2", "--discriminator_num_filters", "4", "4",
         "--discriminator_embedding_dim", "8", "--disable_tqdm", "true"]


def test_word_and_bpe_tokenizers_are_built_from_the_texts():
    word = build_tokenizer(CORPUS, "word")
    assert word.tokenize("the cat sat") == ["the", "cat", "sat"]
    assert word.convert_tokens_to_ids("[UNK]") == word.unk_token_id
    assert word.decode(word("a dog ran")["input_ids"]) == "a dog ran"
    assert {word.pad_token, word.bos_token, word.eos_token, word.unk_token} == {"[PAD]", "[BOS]", "[EOS]", "[UNK]"}
    assert len(word) == 4 + len(set(" ".join(CORPUS).split()))
    frequent = build_tokenizer(CORPUS + ["zebra zebra"], "word", min_frequency=2)
    assert frequent("zebra")["input_ids"] != [frequent.unk_token_id]  # seen twice: kept
    rare = build_tokenizer(CORPUS + ["okapi"], "word", min_frequency=2)
    assert rare("okapi")["input_ids"] == [rare.unk_token_id]  # seen once: below min_frequency
    capped = build_tokenizer(CORPUS, "word", vocab_size=10)
    assert len(capped) == 10
    bpe = build_tokenizer(CORPUS, "bpe", vocab_size=300)
    assert bpe.decode(bpe("the cat sat on a dog")["input_ids"]) == "the cat sat on a dog"
    with pytest.raises(ValueError, match="tokenizer kind 'char'"):
        build_tokenizer(CORPUS, "char")


def test_the_text_evaluator_scores_samples_and_held_out_likelihood():
    tokenizer = build_tokenizer(CORPUS, "word")
    generator = tiny_gpt2(**lm_token_ids(tokenizer)).eval()
    references = ["the cat sat on the mat", "a dog ran"]
    evaluator = TextEvaluator(references, tokenizer, sequence_length=8, num_samples=16, max_order=4)
    # Scored tokens: the words and each reference's EOS, never the padding after it.
    assert evaluator.held_out_mask.sum(1).tolist() == [6 + 1, 3 + 1]
    metrics = evaluator(generator)
    assert set(metrics) == {"bleu2", "bleu3", "bleu4", "self_bleu", "nll", "perplexity"}
    assert all(0.0 <= metrics[name] <= 1.0 for name in ("bleu2", "bleu3", "bleu4", "self_bleu"))
    expected = teacher_forced_nll(generator, evaluator.held_out, tokenizer.bos_token_id,
                                  mask=evaluator.held_out_mask).nll
    assert metrics["nll"] == pytest.approx(expected) and metrics["perplexity"] == pytest.approx(
        torch.tensor(expected).exp().item(), rel=1e-5)
    assert evaluator(generator) == metrics  # seeded: evaluations at different times are comparable


def test_held_out_split_and_texts():
    dataset = datasets.Dataset.from_dict({"text": CORPUS})
    train, held_out = held_out_split(dataset, 10, seed=0)
    assert len(held_out) == round(len(CORPUS) * 0.1) and len(train) + len(held_out) == len(CORPUS)
    again = held_out_split(dataset, 10, seed=0)[1]
    assert held_out["text"] == again["text"]
    tokenizer = build_tokenizer(CORPUS, "word")
    ids = datasets.Dataset.from_dict({"input_ids": [tokenizer("a dog ran")["input_ids"]]})
    assert texts_of(ids, tokenizer) == ["a dog ran"]
    with pytest.raises(ValueError, match="too few to hold some out"):
        held_out_split(datasets.Dataset.from_dict({"text": ["one"]}), 10, seed=0)


@pytest.mark.slow
def test_a_text_file_is_enough_and_held_out_metrics_are_reported(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("the cat sat on the mat\na dog ran in the park\n")
    out = tmp_path / "run"
    result = run_cli("train", "--task", "text", "--train_file", str(corpus), "--eval_file", str(held_out),
                     "--output_dir", str(out), *SMALL, cwd=REPO)
    assert "Built a word-level tokenizer" in result.stderr
    assert "| stage | BLEU-2 | BLEU-3 | BLEU-4 | Self-BLEU | held-out NLL | perplexity |" in result.stdout
    summary = json.loads((out / "seqgan_results.json").read_text())
    assert set(summary) == {"untrained", "mle", "adversarial"}
    assert {"eval_bleu2", "eval_self_bleu", "eval_nll"} <= set(summary["adversarial"])
    assert summary["mle"]["eval_nll"] < summary["untrained"]["nll"]  # MLE learned the corpus
    assert (out / "tokenizer.json").is_file()  # saved with the generator: sample --text finds it
    samples = tmp_path / "samples.txt"
    run_cli("sample", str(out), "--num", "3", "--text", "--output", str(samples))
    vocabulary = set(" ".join(CORPUS).split())
    assert all(word in vocabulary for line in samples.read_text().splitlines() for word in line.split())


@pytest.mark.parametrize("argv, message", [
    (["--task", "text", "--tokenizer_type", "bpe", "--tokenizer", "x"], "tokenizer_type is set, but no tokenizer"),
    (["--task", "text", "--tokenizer_type", "char"], "tokenizer_type 'char' is not known (--tokenizer_type)"),
    (["--eval_file", "held_out.txt"], "--eval_file is for --task text"),
    (["--task", "text", "--validation_split_percentage", "100"], "validation_split_percentage is 100"),
])
def test_text_flags_are_checked(tmp_path, capsys, argv, message):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    with pytest.raises(SystemExit):
        main(["train", "--train_file", str(corpus), "--output_dir", str(tmp_path / "out"), *argv])
    assert message in capsys.readouterr().err


def test_a_bad_eval_file_is_named_as_such(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="--eval_file"):
        load_train_file(str(empty), "--eval_file")


def test_token_ids_without_a_tokenizer_are_refused(tmp_path, capsys):
    ids = tmp_path / "ids.jsonl"
    ids.write_text('{"input_ids": [1, 2, 3]}\n{"input_ids": [3, 2, 1]}\n')
    with pytest.raises(SystemExit):
        main(["train", "--task", "text", "--train_file", str(ids), "--output_dir", str(tmp_path / "out")])
    assert "holds token ids, and no tokenizer is given to read them with (--tokenizer)" in capsys.readouterr().err


def test_bleu_compares_references_and_samples_split_alike():
    """A word-level tokenizer decodes "o'er," as "o ' er ,": references are put through it too, so a sample that
    reproduces a reference scores BLEU 1."""
    from seqgan_hf.metrics import corpus_bleu

    line = "O, it came o'er my ear like the sweet sound,"
    tokenizer = build_tokenizer([line], "word")
    evaluator = TextEvaluator([line], tokenizer, sequence_length=16, num_samples=2)
    sample = tokenizer.decode(tokenizer(line)["input_ids"], skip_special_tokens=True)
    assert sample != line  # split differently from the raw text ...
    assert corpus_bleu([sample], evaluator.references[4], 4) == pytest.approx(1.0)  # ... yet compared alike


def test_fixed_length_sequences_without_eos(tmp_path):
    """append_eos=False (the paper's music setting): no EOS in the data, the MLE targets, the samples or the
    held-out NLL; every position is learned and scored; shorter sequences are refused, naming the setting."""
    from seqgan_hf import SeqGANTrainer
    from tests.builders import quick_config, tiny_lstm

    notes = ["60 62 64 65 67 69", "67 67 65 65 64 r", "60 60 67 67 69 69", "r 64 62 60 62 64"] * 4
    tokenizer = build_tokenizer(notes, "word")
    args = quick_config(tmp_path, sequence_length=6, append_eos=False, adversarial_iterations=1,
                        discriminator_pretrain_rounds=0, d_steps=0)
    trainer = SeqGANTrainer(model=tiny_lstm(sequence_length=6, **lm_token_ids(tokenizer)), args=args,
                            train_dataset=datasets.Dataset.from_dict({"text": notes}), processing_class=tokenizer,
                            discriminator=None, reward_funcs=[lambda completion_ids, **kwargs: [0.5] * len(completion_ids)],
                            evaluator=TextEvaluator(notes[:4], tokenizer, 6, num_samples=8, append_eos=False))
    assert trainer.eos_token_id is None and trainer.real.lengths.tolist() == [6] * 16
    assert tokenizer.eos_token_id not in trainer.real.input_ids
    batch = trainer.data_collator([trainer.train_dataset[0]])
    assert (batch["labels"][0, 1:] != -100).all()  # all 6 tokens are targets: none is an EOS or padding
    assert trainer.evaluator.held_out_mask.all()  # every held-out token scored
    trainer.train()
    assert set(trainer.phase_metrics["adversarial"]) >= {"eval_bleu2", "eval_nll"}

    with pytest.raises(ValueError, match=r"1 of 17 training sequences are shorter than sequence_length=6 .*"
                                         r"append_eos=False"):
        SeqGANTrainer(model=tiny_lstm(sequence_length=6, **lm_token_ids(tokenizer)), args=args,
                      train_dataset=datasets.Dataset.from_dict({"text": notes + ["60 62"]}),
                      processing_class=tokenizer, discriminator=None,
                      reward_funcs=[lambda completion_ids, **kwargs: [0.5] * len(completion_ids)])
    with pytest.raises(ValueError, match="held-out text: 1 of 2 .* shorter than sequence_length=6"):
        TextEvaluator(["60 62 64 65 67 69", "60 62"], tokenizer, 6, append_eos=False)


@pytest.mark.slow
def test_fixed_length_text_from_the_command_line(tmp_path):
    """--append_eos false end to end: the saved generator has no EOS, so `sample` writes whole T-token samples."""
    notes = ["60 62 64 65 67 69", "67 67 65 65 64 r", "60 60 67 67 69 69", "r 64 62 60 62 64"] * 8
    corpus = tmp_path / "notes.txt"
    corpus.write_text("\n".join(notes) + "\n")
    out = tmp_path / "run"
    run_cli("train", "--task", "text", "--train_file", str(corpus), "--eval_file", str(corpus), "--output_dir",
            str(out), *SMALL[:SMALL.index("--sequence_length")], "--sequence_length", "6", "--append_eos", "false",
            "--sequence_overflow", "error", *SMALL[SMALL.index("--sequence_length") + 2:], cwd=REPO)
    assert json.loads((out / "config.json").read_text())["eos_token_id"] is None
    samples = tmp_path / "samples.txt"
    run_cli("sample", str(out), "--num", "16", "--output", str(samples))  # token ids: nothing skipped in decoding
    lines = samples.read_text().splitlines()
    assert len(lines) == 16 and all(len(line.split()) == 6 for line in lines)
