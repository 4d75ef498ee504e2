"""The `seqgan-hf` command line: recipes, flags over YAML, training files, sampling."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import datasets
import pytest
import torch
import yaml

from seqgan_hf.cli import QUICK_DEFAULTS, _parse_train_args
from seqgan_hf.cli_checks import CLIError
from tests.builders import CORPUS, train_tokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "--vocab_size", "60", "--num_train", "64", "--num_test", "64", "--eval_samples", "64",
    "--sequence_length", "8", "--mle_epochs", "1", "--discriminator_pretrain_rounds", "1",
    "--num_negatives", "32", "--adversarial_iterations", "2", "--rollout_num", "2",
    "--discriminator_filter_sizes", "1", "2", "--discriminator_num_filters", "4", "4",
    "--discriminator_embedding_dim", "8", "--disable_tqdm", "true",
]


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "seqgan_hf.cli", *args], capture_output=True, text=True, timeout=600, env=env,
        cwd=cwd or REPO,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def test_quick_recipe_is_the_embedded_default():
    with open(os.path.join(REPO, "recipes", "oracle_quick.yaml")) as handle:
        assert yaml.safe_load(handle) == QUICK_DEFAULTS


def test_paper_recipe_is_the_paper_protocol():
    script_args, config = _parse_train_args(["--config", os.path.join(REPO, "recipes", "oracle_paper.yaml")])
    assert (config.mle_epochs, config.discriminator_pretrain_rounds, config.discriminator_pretrain_epochs) == (120, 50, 3)
    assert (config.adversarial_iterations, config.g_steps, config.d_steps, config.d_epochs) == (200, 1, 5, 3)
    assert (config.rollout_num, config.per_device_train_batch_size, config.sequence_length) == (16, 64, 20)
    assert (config.learning_rate, config.discriminator_learning_rate, config.max_grad_norm) == (0.01, 1e-4, 5.0)
    assert config.num_negatives == 10_000 and script_args.num_train == 10_000 and script_args.vocab_size == 5000
    assert script_args.discriminator_filter_sizes == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20]


def test_flags_override_the_yaml(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("mle_epochs: 7\nrollout_num: 3\n")
    script_args, config = _parse_train_args(["--config", str(recipe), "--rollout_num", "5"])
    assert config.mle_epochs == 7 and config.rollout_num == 5


def test_unknown_yaml_field_is_refused(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("rollout_number: 3\n")
    with pytest.raises(CLIError, match="rollout_number.*did you mean rollout_num"):
        _parse_train_args(["--config", str(recipe)])


@pytest.mark.slow
def test_train_oracle_then_sample_and_evaluate(tmp_path):
    output_dir = tmp_path / "run"
    result = run_cli("train", "--config", "recipes/oracle_quick.yaml", *TINY, "--output_dir", str(output_dir))
    assert "after adversarial training" in result.stdout and "after MLE pretraining" in result.stdout
    summary = json.loads((output_dir / "seqgan_results.json").read_text())
    assert summary["adversarial"]["eval_nll_oracle"] > 0 and summary["mle"]["eval_nll_test"] > 0
    assert (output_dir / "discriminator" / "config.json").exists()

    samples = tmp_path / "samples.txt"
    run_cli("sample", str(output_dir), "--num", "5", "--output", str(samples))
    lines = samples.read_text().splitlines()
    assert len(lines) == 5 and all(len(line.split()) == 8 for line in lines)
    assert all(0 <= int(token) < 60 for line in lines for token in line.split())

    evaluated = run_cli("evaluate", str(output_dir), "--vocab_size", "60", "--num_test", "64",
                        "--num_samples", "64", "--sequence_length", "8")
    metrics = json.loads(evaluated.stdout[evaluated.stdout.index("{"):])
    assert set(metrics) >= {"nll_oracle", "nll_test"}


# One oracle-vocabulary sequence (a repeated token: the next token depends on more than the last one).
FILE_SEQUENCE = [7, 3, 41, 3, 19, 52, 8, 30]


def _single_sequence_files(tmp_path):
    """FILE_SEQUENCE 64 times, as JSON Lines and as a `save_to_disk` folder."""
    rows = [FILE_SEQUENCE] * 64
    jsonl = tmp_path / "ids.jsonl"
    jsonl.write_text("".join(json.dumps({"input_ids": row}) + "\n" for row in rows))
    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"input_ids": rows}).save_to_disk(str(saved))
    return {"jsonl": jsonl, "save_to_disk": saved}


def _teacher_forced(output_dir, sequence: list[int]) -> tuple[float, list[int]]:
    """The saved generator on `sequence` after its start token: (per-token NLL, most likely token per step)."""
    from transformers import AutoModelForCausalLM

    import seqgan_hf  # noqa: F401  (registers the LSTM with the Auto classes)

    generator = AutoModelForCausalLM.from_pretrained(output_dir).eval()
    targets = torch.tensor([sequence])
    inputs = torch.cat([torch.full((1, 1), generator.config.bos_token_id), targets[:, :-1]], dim=1)
    with torch.no_grad():
        log_probs = torch.log_softmax(generator(input_ids=inputs).logits, dim=-1)
    nll = -log_probs.gather(-1, targets[..., None]).mean().item()
    return nll, log_probs.argmax(-1)[0].tolist()


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["jsonl", "save_to_disk"])
def test_oracle_train_file_replaces_oracle_data(tmp_path, variant):
    """MLE on a file holding a single sequence: the saved generator has learnt that sequence, which the sampled
    oracle data (the training set if the file were ignored) cannot teach it (uniform: log 60 = 4.1 nats)."""
    path = _single_sequence_files(tmp_path)[variant]
    output_dir = tmp_path / "run"
    # 20 epochs of one batch: NLL ~0.02 here, ~4.0 with the oracle's data instead (measured).
    run_cli("train", *TINY, "--mle_epochs", "20", "--mle_learning_rate", "0.05", "--adversarial_iterations", "0",
            "--discriminator_pretrain_rounds", "0", "--train_file", str(path), "--output_dir", str(output_dir))
    nll, most_likely = _teacher_forced(output_dir, FILE_SEQUENCE)
    assert most_likely == FILE_SEQUENCE
    assert nll < 0.5, nll


@pytest.mark.slow
def test_text_task_from_a_text_file_and_text_samples(tmp_path):
    tokenizer_dir = tmp_path / "tok"
    train_tokenizer().save_pretrained(tokenizer_dir)
    text_file = tmp_path / "corpus.txt"
    text_file.write_text("\n".join(CORPUS) + "\n")
    output_dir = tmp_path / "run"
    run_cli("train", "--task", "text", "--train_file", str(text_file), "--tokenizer", str(tokenizer_dir), *TINY,
            "--output_dir", str(output_dir))
    samples = tmp_path / "samples.txt"
    run_cli("sample", str(output_dir), "--num", "3", "--output", str(samples), "--text")
    lines = samples.read_text().splitlines()
    assert len(lines) == 3
    vocabulary = set(" ".join(CORPUS).split())
    assert all(word in vocabulary for line in lines for word in line.split())
