"""The command line with pretrained models: the LoRA recipe (run with tiny local models in place of its Hub ids),
LoRA flags, and the sampling distribution `sample` / `evaluate` use and say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seqgan_hf.cli import main
from tests.builders import CORPUS, lm_token_ids, tiny_llama, tiny_llama_classifier, train_tokenizer
from tests.launch import CAPTURE_TRAINER
from tests.test_cli import REPO, TINY, run_cli

REPO_PATH = Path(REPO)


@pytest.fixture(scope="module")
def local_models(tmp_path_factory):
    """A Llama-style generator (bf16 on disk) with a tokenizer that has no pad token, as many Hub LMs ship, and a
    Llama classifier over the same tokens without a pad id in its config."""
    root = tmp_path_factory.mktemp("hub_copies")
    tokenizer = train_tokenizer()
    ids = lm_token_ids(tokenizer)
    tiny_llama(**ids).to(torch.bfloat16).save_pretrained(root / "lm")
    tokenizer.pad_token = None
    tokenizer.save_pretrained(root / "lm")
    tiny_llama_classifier(vocab_size=ids["vocab_size"], num_labels=2).save_pretrained(root / "classifier")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    return root


@pytest.mark.slow
def test_the_lora_recipe_trains_an_adapter_that_samples(tmp_path, local_models):
    out = tmp_path / "run"
    result = run_cli(
        "train", "--config", "recipes/text_pretrained_lora.yaml", "--generator", str(local_models / "lm"),
        "--tokenizer", str(local_models / "lm"), "--discriminator", str(local_models / "classifier"),
        "--train_file", str(local_models / "corpus.txt"), "--output_dir", str(out), "--sequence_length", "8",
        "--mle_epochs", "1", "--discriminator_pretrain_rounds", "1", "--num_negatives", "16",
        "--adversarial_iterations", "2", "--rollout_num", "2", "--per_device_train_batch_size", "4",
        "--gradient_accumulation_steps", "2", "--gradient_checkpointing", "true", "--save_steps", "2",
        "--logging_steps", "1",
        "--disable_tqdm", "true", cwd=REPO)
    assert "has no pad token: padding with its EOS token" in result.stderr
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    assert (out / "discriminator" / "model.safetensors").is_file()
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["r"] == 16 and set(adapter["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    checkpoints = sorted(out.glob("checkpoint-*"), key=lambda path: int(path.name.split("-")[1]))
    assert checkpoints and all((c / "adapter_model.safetensors").is_file() for c in checkpoints)
    logged = json.loads((checkpoints[-1] / "trainer_state.json").read_text())["log_history"]
    assert any("adversarial/kl" in entry for entry in logged)  # the recipe's beta is on

    samples = tmp_path / "samples.txt"
    sampled = run_cli("sample", str(out), "--num", "3", "--text", "--output", str(samples))
    assert "Sampling from: temperature 1, top_k 0, top_p 1" in sampled.stderr
    assert "training_generation_config.json" in sampled.stderr
    assert len(samples.read_text().splitlines()) == 3


def test_lora_flags_without_use_peft_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--lora_r", "8"])
    assert "lora_r is set but --use_peft is not (--lora_r)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--use_peft", "true"])
    assert "--use_peft needs a pretrained generator" in capsys.readouterr().err


@pytest.mark.slow
def test_sample_and_evaluate_use_and_say_the_training_distribution(tmp_path):
    out = tmp_path / "greedy"
    run_cli("train", *TINY, "--top_k", "1", "--output_dir", str(out))  # top_k=1: training samples greedily
    samples = tmp_path / "samples.txt"
    sampled = run_cli("sample", str(out), "--num", "4", "--output", str(samples))
    assert "Sampling from: temperature 1, top_k 1, top_p 1" in sampled.stderr
    assert len(set(samples.read_text().splitlines())) == 1  # greedy: every sample the same
    sampled = run_cli("sample", str(out), "--num", "8", "--top_k", "0", "--output", str(samples))
    assert "--top_k over" in sampled.stderr
    assert len(set(samples.read_text().splitlines())) > 1

    evaluated = run_cli("evaluate", str(out), "--num_samples", "16", "--num_test", "16")
    assert json.loads(evaluated.stdout)["sampling"] == {"temperature": 1.0, "top_k": 1, "top_p": 1.0}
    assert "Sampling from: temperature 1, top_k 1, top_p 1" in evaluated.stderr

    # A model saved without training settings samples its own, untruncated distribution (not generate()'s
    # default top_k=50), and says so.
    from transformers import AutoModelForCausalLM

    bare = tmp_path / "bare"
    AutoModelForCausalLM.from_pretrained(out).save_pretrained(bare)
    sampled = run_cli("sample", str(bare), "--num", "2", "--output", str(samples))
    assert "Sampling from: temperature 1, top_k 0, top_p 1 (no training settings found" in sampled.stderr


# Every rank runs the CLI, then saves the adapter it ended with: DDP must keep them identical.
_RANK_SCRIPT = CAPTURE_TRAINER + r"""
import os, sys
from safetensors.torch import save_file
import seqgan_hf.cli as cli

cli.main(["train", *sys.argv[2:]])
model = seen["trainer"].model
adapter = {name: p.detach().contiguous() for name, p in model.named_parameters() if p.requires_grad}
save_file(adapter, os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.safetensors"))
"""


@pytest.mark.slow
def test_the_lora_recipe_under_accelerate_launch_with_two_processes(tmp_path, local_models):
    from peft import AutoPeftModelForCausalLM
    from safetensors.torch import load_file

    from tests.launch import accelerate_launch

    script = tmp_path / "rank.py"
    script.write_text(_RANK_SCRIPT)
    out = tmp_path / "run"
    log = accelerate_launch(REPO_PATH / "recipes" / "accelerate" / "cpu_2proc.yaml", [
        str(script), str(tmp_path), "--config", "text_pretrained_lora", "--generator", str(local_models / "lm"),
        "--tokenizer", str(local_models / "lm"), "--discriminator", str(local_models / "classifier"),
        "--train_file", str(local_models / "corpus.txt"), "--output_dir", str(out), "--sequence_length", "8",
        "--mle_epochs", "1", "--discriminator_pretrain_rounds", "1", "--num_negatives", "16",
        "--adversarial_iterations", "2", "--rollout_num", "2", "--per_device_train_batch_size", "4",
        "--gradient_accumulation_steps", "2", "--save_strategy", "no", "--logging_steps", "1",
        "--disable_tqdm", "true"], tmp_path)
    # 2 micro-batches of 4 sequences on each of 2 processes per g-step (gradients synchronised once, at the end)
    assert "adversarial/global_batch_size': '16'" in log
    ranks = [load_file(tmp_path / f"rank{rank}.safetensors") for rank in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys() and all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
    reloaded = AutoPeftModelForCausalLM.from_pretrained(out)
    trained = {name: p for name, p in reloaded.named_parameters() if "lora_" in name}
    assert trained.keys() == ranks[0].keys() and all(torch.equal(trained[k], ranks[0][k]) for k in trained)
