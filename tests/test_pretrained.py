"""Pretrained models given as paths: loading options and dtype; evaluation and prediction on raw held-out data."""

from __future__ import annotations

import math

import datasets
import pytest
import torch

from seqgan_hf import SeqGANConfig, SeqGANTrainer
from tests.builders import (
    classifier_token_ids,
    lm_token_ids,
    quick_config,
    tiny_gpt2,
    tiny_gpt2_classifier,
    train_tokenizer,
)


@pytest.fixture(scope="module")
def bf16_checkpoints(tmp_path_factory):
    """A tiny GPT-2 generator and classifier saved in bfloat16, as pretrained checkpoints often are."""
    root = tmp_path_factory.mktemp("bf16")
    tokenizer = train_tokenizer()
    tiny_gpt2(**lm_token_ids(tokenizer)).to(torch.bfloat16).save_pretrained(root / "generator")
    tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(tokenizer)).to(torch.bfloat16).save_pretrained(
        root / "discriminator")
    tokenizer.save_pretrained(root / "generator")
    return root, tokenizer


def _dtypes(trainer) -> set[torch.dtype]:
    return {p.dtype for p in trainer.model.parameters()} | {p.dtype for p in trainer.discriminator.parameters()}


def test_checkpoints_given_as_paths_load_in_float32(tmp_path, bf16_checkpoints, text_dataset):
    root, tokenizer = bf16_checkpoints
    trainer = SeqGANTrainer(model=str(root / "generator"), discriminator=str(root / "discriminator"),
                            args=quick_config(tmp_path, sequence_length=8), train_dataset=text_dataset,
                            processing_class=tokenizer)
    assert _dtypes(trainer) == {torch.float32}


def test_init_kwargs_choose_the_dtype_and_reach_from_pretrained(tmp_path, bf16_checkpoints, text_dataset):
    root, tokenizer = bf16_checkpoints
    args = quick_config(tmp_path, sequence_length=8, model_init_kwargs={"dtype": "bfloat16"},
                        discriminator_init_kwargs='{"dtype": "bfloat16"}')  # a JSON string, as from the CLI
    trainer = SeqGANTrainer(model=str(root / "generator"), discriminator=str(root / "discriminator"), args=args,
                            train_dataset=text_dataset, processing_class=tokenizer)
    assert _dtypes(trainer) == {torch.bfloat16}
    with pytest.raises(TypeError, match="no_such_option"):
        SeqGANTrainer(model=str(root / "generator"), discriminator=str(root / "discriminator"),
                      args=quick_config(tmp_path, sequence_length=8, model_init_kwargs={"no_such_option": 1}),
                      train_dataset=text_dataset, processing_class=tokenizer)


@pytest.mark.parametrize("overrides, message", [
    ({"model_init_kwargs": "{not json"}, "model_init_kwargs: '{not json' is not JSON"),
    ({"discriminator_init_kwargs": "[1, 2]"}, "discriminator_init_kwargs: got '\\[1, 2\\]'"),
    ({"model_init_kwargs": {"torch_dtype": "bfloat16"}}, "use 'dtype'"),
])
def test_bad_init_kwargs_are_refused(tmp_path, bf16_checkpoints, text_dataset, overrides, message):
    root, tokenizer = bf16_checkpoints
    with pytest.raises(ValueError, match=message):
        SeqGANTrainer(model=str(root / "generator"), discriminator=str(root / "discriminator"),
                      args=quick_config(tmp_path, sequence_length=8, **overrides), train_dataset=text_dataset,
                      processing_class=tokenizer)


def test_init_kwargs_with_a_model_object_are_refused(tmp_path, text_dataset):
    tokenizer = train_tokenizer()
    with pytest.raises(ValueError, match="model_init_kwargs only apply when model is a path"):
        SeqGANTrainer(model=tiny_gpt2(**lm_token_ids(tokenizer)),
                      discriminator=tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(tokenizer)),
                      args=quick_config(tmp_path, model_init_kwargs={"dtype": "bfloat16"}),
                      train_dataset=text_dataset, processing_class=tokenizer)


def test_evaluate_and_predict_take_raw_held_out_data(tmp_path, text_dataset):
    """Raw `text` datasets are encoded as training data is; the loss is the generator's per-token NLL."""
    tokenizer = train_tokenizer()
    trainer = SeqGANTrainer(model=tiny_gpt2(**lm_token_ids(tokenizer)),
                            discriminator=tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(tokenizer)),
                            args=quick_config(tmp_path, sequence_length=8), train_dataset=text_dataset,
                            processing_class=tokenizer)
    held_out = datasets.Dataset.from_dict({"text": ["the cat sat on the mat", "a dog ran in the park"]})
    metrics = trainer.evaluate(eval_dataset=held_out)
    prediction = trainer.predict(held_out)
    # Untrained, the generator is near uniform over its vocabulary.
    assert abs(metrics["eval_loss"] - math.log(len(tokenizer))) < 1.0
    assert prediction.metrics["test_loss"] == pytest.approx(metrics["eval_loss"])
    with pytest.raises(ValueError, match="eval_dataset"):
        trainer.evaluate(eval_dataset=datasets.Dataset.from_dict({"tokens": [[1, 2]]}))


def test_config_keeps_init_kwargs_as_dicts(tmp_path):
    args = SeqGANConfig(output_dir=str(tmp_path), model_init_kwargs='{"revision": "main"}')
    assert args.model_init_kwargs == {"revision": "main"} and args.discriminator_init_kwargs is None


@pytest.mark.parametrize("init_kwargs, dtype", [(None, torch.float32), ('{"dtype": "bfloat16"}', torch.bfloat16)])
def test_cli_loads_paths_with_init_kwargs(tmp_path, bf16_checkpoints, init_kwargs, dtype):
    from safetensors.torch import load_file

    from seqgan_hf.cli import main
    from tests.builders import CORPUS

    root, _ = bf16_checkpoints
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    flags = ["train", "--task", "text", "--train_file", str(corpus), "--tokenizer", str(root / "generator"),
             "--generator", str(root / "generator"), "--discriminator", str(root / "discriminator"),
             "--output_dir", str(tmp_path / "out"), "--sequence_length", "8", "--mle_epochs", "0",
             "--discriminator_pretrain_rounds", "0", "--adversarial_iterations", "0", "--disable_tqdm", "true"]
    main(flags + (["--model_init_kwargs", init_kwargs, "--discriminator_init_kwargs", init_kwargs]
                  if init_kwargs else []))
    for folder in (tmp_path / "out", tmp_path / "out" / "discriminator"):
        assert {tensor.dtype for tensor in load_file(folder / "model.safetensors").values()} == {dtype}


def test_cli_refuses_init_kwargs_for_the_built_in_models(tmp_path, capsys):
    from seqgan_hf.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", "recipes/oracle_smoke.yaml", "--output_dir", str(tmp_path / "out"),
              "--model_init_kwargs", '{"dtype": "bfloat16"}'])
    assert exit_info.value.code == 2
    assert "model_init_kwargs is set but --generator is the built-in lstm (--model_init_kwargs)" in \
        capsys.readouterr().err


def test_kl_reference_is_checkpointed_and_a_resume_ends_identical(tmp_path):
    """beta > 0: the reference policy taken as adversarial training starts is part of a checkpoint."""
    from tests.builders import stop_at, tiny_cnn, tiny_lstm

    data = datasets.Dataset.from_dict({"input_ids": [[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]] * 8})

    def run(folder, callbacks=(), **overrides):
        trainer = SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), train_dataset=data,
                                callbacks=list(callbacks), args=quick_config(
                                    folder, beta=0.5, adversarial_iterations=3, save_strategy="steps",
                                    save_steps=1, logging_steps=1, **overrides))
        trainer.train()
        return trainer

    whole = run(tmp_path / "whole")
    assert any("adversarial/kl" in entry for entry in whole.state.log_history)
    run(tmp_path / "split", [stop_at(4)])  # after the first adversarial iteration
    state = torch.load(tmp_path / "split" / "out" / "checkpoint-4" / "seqgan_state.pt", weights_only=True)
    assert state["reference_model"] is not None
    resumed = run(tmp_path / "split", resume_from_checkpoint="latest")
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), name
