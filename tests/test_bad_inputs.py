"""Bad inputs and real faults through the Python API: each is refused with a message naming the argument (and the
fix), before any work, or survived without losing or mixing results.

The CLI's side is `tests/test_cli_errors.py`, bad data files and datasets `tests/test_data_errors.py`.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import pytest
import torch

from seqgan_hf import SeqGANConfig, SeqGANTrainer
from seqgan_hf.run_dir import LOCK_FILE, RUN_FILE, OutputDirError
from tests.builders import quick_config, tiny_cnn, tiny_gpt2, tiny_lstm, train_tokenizer

DATA = datasets.Dataset.from_dict({"input_ids": [[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]] * 8})


def _trainer(tmp_path, model=None, discriminator="cnn", **overrides) -> SeqGANTrainer:
    return SeqGANTrainer(model=model if model is not None else tiny_lstm(),
                         discriminator=tiny_cnn() if discriminator == "cnn" else discriminator,
                         args=quick_config(tmp_path, **overrides), train_dataset=DATA)


# ---- configuration: every field the loop cannot honour, every value it cannot use -----------------------------

CONFIG_CASES = [
    # (overrides, the field the message must name, a word of the fix)
    ({"per_device_train_batch_size": 0}, "per_device_train_batch_size", "positive"),
    ({"rollout_batch_size": 0}, "rollout_batch_size", "positive"),
    ({"discriminator_batch_size": 0}, "discriminator_batch_size", "positive"),
    ({"adversarial_iterations": -1}, "adversarial_iterations", "0 to skip"),
    ({"discriminator_pretrain_rounds": 2, "discriminator_pretrain_epochs": 0}, "discriminator_pretrain_epochs",
     "discriminator_pretrain_epochs >= 1"),
    ({"baseline_decay": 1.0}, "baseline_decay", "[0, 1)"),
    ({"learning_rate": -0.1}, "learning_rate", "positive"),
    ({"discriminator_learning_rate": 0.0}, "learning_rate", "positive"),
    ({"sequence_overflow": "wrap"}, "sequence_overflow", "truncate"),
    ({"beta": -0.1}, "beta", "positive weight"),
    ({"reward_weights": [-1.0, 2.0]}, "reward_weights", "non-negative"),
    ({"reward_weights": [0.0, 0.0]}, "reward_weights", "positive sum"),
    ({"num_train_epochs": 5}, "num_train_epochs", "mle_epochs"),
    ({"max_steps": 100}, "max_steps", "adversarial_iterations"),
    ({"logging_strategy": "epoch"}, "logging_strategy", "steps"),
    ({"eval_strategy": "epoch"}, "eval_strategy", "steps"),
    ({"save_strategy": "epoch"}, "save_strategy", "steps"),
    ({"save_only_model": True}, "save_only_model", "save_model()"),
    ({"save_on_each_node": True}, "save_on_each_node", "main process"),
    ({"enable_jit_checkpoint": True}, "enable_jit_checkpoint", "save_steps"),
    ({"metric_for_best_model": "eval_nll_test"}, "metric_for_best_model", "not implemented"),
    ({"restore_callback_states_from_checkpoint": True}, "restore_callback_states_from_checkpoint", "False"),
    ({"ignore_data_skip": True}, "ignore_data_skip", "bitwise"),
    ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps", "micro-batches"),
    ({"top_p": 1.5}, "top_p", "(0, 1]"),
    ({"torch_compile": True}, "torch_compile", "outside forward"),
    ({"torch_compile_backend": "inductor"}, "torch_compile", "outside forward"),
    ({"neftune_noise_alpha": 5.0}, "neftune_noise_alpha", "unset"),
    ({"torch_empty_cache_steps": 10}, "torch_empty_cache_steps", "unset"),
    ({"auto_find_batch_size": True}, "auto_find_batch_size", "per_device_train_batch_size"),
    ({"include_num_input_tokens_seen": True}, "include_num_input_tokens_seen", "unset"),
    ({"optim_target_modules": ["attn"]}, "optim_target_modules", "peft"),
    ({"debug": "underflow_overflow"}, "debug", "unset"),
    ({"remove_unused_columns": True}, "remove_unused_columns", "length"),
]


@pytest.mark.parametrize("overrides, field, fix", CONFIG_CASES, ids=[case[1] + str(i) for i, case in
                                                                      enumerate(CONFIG_CASES)])
def test_config_refuses_with_the_field_and_the_fix(tmp_path, overrides, field, fix):
    with pytest.raises(ValueError, match=rf"SeqGANConfig\.{field}:") as error:
        SeqGANConfig(output_dir=str(tmp_path), **overrides)
    assert fix in str(error.value)


def test_fields_the_loop_honours_are_accepted(tmp_path):
    """The other side of the refusals: settings that work are not refused (lr_scheduler_kwargs, eval_on_start)."""
    args = SeqGANConfig(output_dir=str(tmp_path), lr_scheduler_type="cosine_with_min_lr",
                        lr_scheduler_kwargs={"min_lr": 1e-4}, eval_on_start=True, logging_first_step=True)
    assert args.lr_scheduler_kwargs == {"min_lr": 1e-4}


# ---- models and tokenizers --------------------------------------------------------------------------------------


def _bert_lm(is_decoder: bool):
    from transformers import BertConfig, BertLMHeadModel

    torch.manual_seed(0)
    return BertLMHeadModel(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=16, is_decoder=is_decoder))


def _t5():
    from transformers import T5Config, T5ForConditionalGeneration

    return T5ForConditionalGeneration(T5Config(vocab_size=40, d_model=16, d_kv=8, d_ff=16, num_layers=1,
                                               num_heads=2, decoder_start_token_id=0))


MODEL_CASES = [
    # (generator builder, discriminator builder, exception, what the message must say)
    (lambda: _bert_lm(is_decoder=False), tiny_cnn, TypeError, r"model \(BertLMHeadModel\) is not causal"),
    (_t5, tiny_cnn, TypeError, "encoder-decoder.*decoder-only causal LM"),
    (tiny_lstm, lambda: tiny_gpt2(40), TypeError, r"discriminator \(GPT2LMHeadModel\) returns logits of shape"),
    (tiny_lstm, lambda: tiny_cnn(num_labels=3), ValueError, "num_labels is 3"),
    (lambda: tiny_cnn(), tiny_cnn, TypeError, "not a causal LM"),
]


@pytest.mark.parametrize("make_model, make_discriminator, error, message", MODEL_CASES)
def test_models_that_cannot_work_are_refused_at_construction(tmp_path, make_model, make_discriminator, error,
                                                             message):
    with pytest.raises(error, match=message):
        _trainer(tmp_path, model=make_model(), discriminator=make_discriminator())


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(model="./no/such/generator"), FileNotFoundError, r"model='./no/such/generator' does not exist"),
    (dict(discriminator="/no/such/discriminator"), FileNotFoundError, "discriminator='/no/such/discriminator' does"),
    (dict(model=42), TypeError, "model must be a PreTrainedModel or a path"),
    (dict(discriminator_processing_class="tokenizer"), ValueError, "processing_class is not"),
    (dict(discriminator=None, discriminator_processing_class="tokenizer"), ValueError, "there is no discriminator"),
])
def test_trainer_arguments_are_refused_naming_the_argument(tmp_path, kwargs, error, message):
    values = dict(model=tiny_lstm(), discriminator=tiny_cnn(), args=quick_config(tmp_path), train_dataset=DATA)
    if kwargs.get("discriminator_processing_class") == "tokenizer":
        kwargs["discriminator_processing_class"] = train_tokenizer()
    with pytest.raises(error, match=message):
        SeqGANTrainer(**{**values, **kwargs})


def test_a_bert_built_as_a_decoder_passes_the_causality_probe(tmp_path):
    trainer = _trainer(tmp_path, model=_bert_lm(is_decoder=True), bos_token_id=1)
    assert trainer.model.config.is_decoder


def test_a_tokenizer_larger_than_the_embedding_is_refused(tmp_path, text_dataset):
    tokenizer = train_tokenizer()
    with pytest.raises(ValueError, match="resize_token_embeddings"):
        SeqGANTrainer(model=tiny_lstm(len(tokenizer) - 5), discriminator=tiny_cnn(len(tokenizer) - 5),
                      args=quick_config(tmp_path), train_dataset=text_dataset, processing_class=tokenizer)


def test_probes_draw_no_random_numbers(tmp_path):
    """The construction-time probes must not move the global RNG: results stay those of earlier versions."""
    torch.manual_seed(3)
    expected = torch.rand(3)
    model, discriminator = tiny_lstm(), tiny_cnn()
    torch.manual_seed(3)
    SeqGANTrainer(model=model, discriminator=discriminator, args=quick_config(tmp_path), train_dataset=DATA)
    # Trainer.__init__ re-seeds with args.seed (0); what matters is that nothing was drawn after it.
    torch.manual_seed(0)
    reseeded = torch.rand(3)
    torch.manual_seed(0)
    SeqGANTrainer(model=model, discriminator=discriminator, args=quick_config(tmp_path / "b"), train_dataset=DATA)
    assert torch.equal(torch.rand(3), reseeded) and not torch.equal(expected, reseeded)


# ---- output_dir: one run, one process, nothing lost -------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A short run with a checkpoint at every training unit and its final save (copied by each test)."""
    root = tmp_path_factory.mktemp("finished")
    trainer = SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), train_dataset=DATA,
                            args=quick_config(root, save_strategy="steps", save_steps=1))
    trainer.train()
    trainer.save_model()
    return root / "out"


def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "out"
    shutil.copytree(run, target)
    return target


def test_a_fresh_run_refuses_a_folder_holding_another_runs_checkpoints(tmp_path, finished_run):
    out = _copy(finished_run, tmp_path)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(OutputDirError, match="holds checkpoints of an earlier run.*resume_from_checkpoint=True.*"
                                             "overwrite_output_dir=True"):
        _trainer(tmp_path).train()
    assert sorted(p.name for p in out.iterdir()) == before  # nothing deleted, nothing written


def test_overwrite_output_dir_starts_over_and_latest_is_then_this_run(tmp_path, finished_run):
    import json

    out = _copy(finished_run, tmp_path)
    old_run = json.loads((out / RUN_FILE).read_text())["run_id"]
    trainer = _trainer(tmp_path, overwrite_output_dir=True, save_strategy="steps", save_steps=3)
    trainer.train()
    assert trainer.run_id != old_run and json.loads((out / RUN_FILE).read_text())["run_id"] == trainer.run_id
    # The earlier run's five checkpoints are gone; this run's (every 3 units, and the last) all carry its id.
    checkpoints = sorted(p.name for p in out.glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-3", "checkpoint-5"]
    for name in checkpoints:
        assert torch.load(out / name / "seqgan_state.pt", weights_only=True)["run_id"] == trainer.run_id


def test_a_second_process_is_kept_out_and_its_checkpoint_in_progress_survives(tmp_path, finished_run):
    out = _copy(finished_run, tmp_path)
    in_progress = out / "tmp-checkpoint-99"
    in_progress.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from seqgan_hf.run_dir import RunLock
        lock = RunLock({str(out)!r})
        lock.acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputDirError, match=rf"in use by process {holder.pid} on .*{LOCK_FILE}"):
            _trainer(tmp_path, resume_from_checkpoint="latest").train()
        assert in_progress.is_dir()  # the running process's half-written checkpoint was not cleaned away
    finally:
        holder.kill()
        holder.wait()
    _trainer(tmp_path, resume_from_checkpoint="latest", adversarial_iterations=3).train()  # free again


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder no write reaches: chmod for a normal user, a read-only tmpfs for root (chmod does not stop root)."""
    path = tmp_path / "read-only"
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"root without mount rights cannot make a read-only folder here: {mounted.stderr.strip()}")
    yield path
    subprocess.run(["umount", str(path)], check=False)


def test_a_read_only_output_dir_is_refused_before_any_work(tmp_path, read_only_dir):
    generator = tiny_lstm()
    before = [p.detach().clone() for p in generator.parameters()]
    with pytest.raises(OutputDirError, match="is not writable.*output_dir"):
        SeqGANTrainer(model=generator, discriminator=tiny_cnn(), train_dataset=DATA,
                      args=quick_config(tmp_path, output_dir=str(read_only_dir / "out")))
    assert all(torch.equal(a, b) for a, b in zip(before, generator.parameters()))


def test_a_failing_final_save_leaves_the_previous_model_whole(tmp_path, finished_run, monkeypatch):
    """A disk that fills up during save_model(): nothing of the new save replaces the old model."""
    from transformers import AutoModelForCausalLM, modeling_utils

    import seqgan_hf  # noqa: F401  (registers the LSTM)

    out = _copy(finished_run, tmp_path)
    old = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith("_")}
    # A wider generator: its config.json differs too, so a half-done save would show as a mix of the two.
    trainer = _trainer(tmp_path, model=tiny_lstm(hidden_dim=16), overwrite_output_dir=True)
    trainer.train()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(modeling_utils, "safe_save_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        trainer.save_model()
    now = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and not p.name.startswith("_")}
    assert now == old  # every file of the previous save, byte for byte; none of the new one
    AutoModelForCausalLM.from_pretrained(out)  # and it loads
    monkeypatch.undo()
    trainer.save_model()  # the next save works and replaces it
    assert (out / "model.safetensors").read_bytes() != old["model.safetensors"]


# ---- resume: damaged checkpoints, changed settings ---------------------------------------------------------------


@pytest.mark.parametrize("damaged_file, problem", [
    ("model.safetensors", "is truncated"),
    ("seqgan_state.pt", "cannot be read"),
    ("discriminator/model.safetensors", "is truncated"),
    ("trainer_state.json", "cannot be read"),
])
def test_latest_passes_over_a_damaged_checkpoint_and_a_named_path_is_refused(tmp_path, finished_run, caplog,
                                                                              damaged_file, problem):
    out = _copy(finished_run, tmp_path)
    newest = max(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    target = newest / damaged_file
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2])
    trainer = _trainer(tmp_path, resume_from_checkpoint=str(newest))
    with pytest.raises(ValueError, match=f"{newest.name}.* is damaged: .*{Path(damaged_file).name} {problem}"):
        trainer.train()
    with caplog.at_level("WARNING", logger="seqgan_hf.trainer"):
        resumed = _trainer(tmp_path, resume_from_checkpoint="latest", adversarial_iterations=3)
        resumed.train()
    previous = f"checkpoint-{int(newest.name.split('-')[1]) - 1}"
    assert f"Resuming from {out / previous}" in caplog.text and problem in caplog.text


@pytest.mark.parametrize("changed, message", [
    ({"learning_rate": 0.02}, "learning_rate: 0.01 -> 0.02"),
    ({"rollout_num": 3}, "rollout_num: 2 -> 3"),
    ({"rollout_policy": "delayed"}, "rollout_policy: 'generator' -> 'delayed'"),
    ({"reward_baseline": "batch_mean"}, "reward_baseline: 'none' -> 'batch_mean'"),
    ({"discriminator_learning_rate": 0.5}, "discriminator_learning_rate: 0.01 -> 0.5"),
])
def test_resume_with_changed_settings_is_refused_old_vs_new(tmp_path, finished_run, changed, message):
    _copy(finished_run, tmp_path)
    trainer = _trainer(tmp_path, resume_from_checkpoint="latest", **changed)
    with pytest.raises(ValueError, match=rf"other settings than this run's \({message}.*Safe to change on resume"):
        trainer.train()


def test_resume_with_a_changed_sequence_length_is_refused(tmp_path, finished_run):
    _copy(finished_run, tmp_path)
    data = datasets.Dataset.from_dict({"input_ids": [[1, 2, 3, 4, 5, 6, 7]] * 16})
    trainer = SeqGANTrainer(model=tiny_lstm(), discriminator=tiny_cnn(), train_dataset=data,
                            args=quick_config(tmp_path, sequence_length=7, resume_from_checkpoint="latest"))
    with pytest.raises(ValueError, match="sequence_length: 6 -> 7"):
        trainer.train()


def test_resume_with_another_model_shape_is_refused_naming_the_tensor(tmp_path, finished_run):
    _copy(finished_run, tmp_path)
    trainer = _trainer(tmp_path, model=tiny_lstm(hidden_dim=16), resume_from_checkpoint="latest")
    with pytest.raises(ValueError, match=r"generator shape of \S+: \[\d+(, \d+)*\] -> \[\d+(, \d+)*\]"):
        trainer.train()


def test_train_twice_is_refused(tmp_path):
    trainer = _trainer(tmp_path, adversarial_iterations=1)
    trainer.train()
    with pytest.raises(RuntimeError, match="train\\(\\) already ran.*resume_from_checkpoint=True"):
        trainer.train()
