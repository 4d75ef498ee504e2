"""Hub round trip of a SeqGAN run against the loopback Hub server (tests/hub_server.py), all offline.

Three subprocesses (huggingface_hub reads HF_ENDPOINT at import, so pushes and pulls run in children):

* PUSH trains a tiny oracle run with `push_to_hub=True, hub_strategy="every_save"`, then calls `push_to_hub()` and
  `save_model()` twice each; a second trainer with `hub_strategy="end"` checks that checkpoints do not push.
* PULL runs in an interpreter that cannot import `seqgan_hf` (`python -I -S`, site-packages added by hand, so the
  editable install's finder is never installed) and loads generator and discriminator with `trust_remote_code`.
* FAIL pushes while the server answers every commit with HTTP 500.
* CHECKPOINT trains with `hub_strategy="checkpoint"` (the repo gets `last-checkpoint/`).
* ASYNC_FAIL trains with `hub_strategy="every_save"` and then pushes with `blocking=False`, while every commit fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.hub_server import HubServer

CHILD_TIMEOUT_S = 240
REPO_ID = "user/seqgan-tiny"
END_REPO_ID = "user/seqgan-end"

_COMMON = r"""
import json, sys
from pathlib import Path
import torch
from safetensors.torch import save_file

out = Path(sys.argv[1])

def state(model):
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}

def sample(model):
    torch.manual_seed(123)
    prompt = torch.zeros((4, 1), dtype=torch.long)
    with torch.no_grad():
        return model.generate(prompt, attention_mask=torch.ones_like(prompt)).tolist()
"""

# A tiny oracle run that pushes (`build(output_dir, **SeqGANConfig overrides)`), shared by the children that train.
_BUILD = _COMMON + r"""
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast, set_seed
from seqgan_hf import (CNNDiscriminatorConfig, CNNForSequenceClassification, LSTMConfig, LSTMForCausalLM,
                       OracleEvaluator, OracleTask, SeqGANConfig, SeqGANTrainer)

vocab = {f"t{i}": i for i in range(24)} | {"[PAD]": 24}
backend = Tokenizer(models.WordLevel(vocab, unk_token="[PAD]"))
backend.pre_tokenizer = pre_tokenizers.Whitespace()
tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]")

def build(output_dir, **overrides):
    set_seed(0)
    task = OracleTask.create(seed=5, num_train=32, num_test=16, sequence_length=6, vocab_size=25,
                             embedding_dim=8, hidden_dim=8)
    generator = LSTMForCausalLM(LSTMConfig(vocab_size=25, embedding_dim=8, hidden_dim=8, sequence_length=6))
    discriminator = CNNForSequenceClassification(CNNDiscriminatorConfig(
        vocab_size=25, embedding_dim=8, filter_sizes=[1, 2, 3], num_filters=[4, 4, 4], num_labels=2))
    values = dict(output_dir=str(output_dir), sequence_length=6, per_device_train_batch_size=8, mle_epochs=1,
                  discriminator_pretrain_rounds=1, discriminator_pretrain_epochs=1, num_negatives=16,
                  adversarial_iterations=2, d_steps=1, d_epochs=1, rollout_num=2, discriminator_batch_size=8,
                  disable_tqdm=True, seed=0, report_to="none", save_strategy="steps", save_steps=3,
                  push_to_hub=True, hub_token="test")
    values.update(overrides)
    return SeqGANTrainer(model=generator, discriminator=discriminator, args=SeqGANConfig(**values),
                         train_dataset=task.train_dataset(), processing_class=tokenizer,
                         evaluator=OracleEvaluator(task, num_samples=32))
"""

PUSH = _BUILD + r"""
trainer = build(out / "run", hub_model_id="user/seqgan-tiny", hub_strategy="every_save")
trainer.train()
first = trainer.push_to_hub(dataset="oracle-lstm-synthetic")
second = trainer.push_to_hub(dataset="oracle-lstm-synthetic")  # nothing changed: safe, no new content
trainer.save_model()
trainer.save_model()
save_file(state(trainer.model), out / "generator.safetensors")
save_file(state(trainer.discriminator), out / "discriminator.safetensors")
(out / "result.json").write_text(json.dumps({
    "samples": sample(trainer.model), "phase_metrics": trainer.phase_metrics,
    "first_commit": first.oid, "second_commit": second.oid, "max_steps": trainer.state.max_steps,
}))

end = build(out / "end", hub_model_id="user/seqgan-end", hub_strategy="end")
end.train()  # checkpoints are written but, with hub_strategy="end", not pushed
(out / "end_checkpoints.json").write_text(json.dumps(sorted(p.name for p in (out / "end").glob("checkpoint-*"))))
end.save_model()  # a user save with push_to_hub=True pushes, once
"""

PULL = _COMMON + r"""
try:
    import seqgan_hf  # must not be importable here: the code comes from the Hub
except ModuleNotFoundError:
    pass
else:
    raise SystemExit(f"seqgan_hf is importable in the isolated child: {seqgan_hf.__file__}")
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

generator = AutoModelForCausalLM.from_pretrained("user/seqgan-tiny", trust_remote_code=True).eval()
discriminator = AutoModelForSequenceClassification.from_pretrained(
    "user/seqgan-tiny", subfolder="discriminator", trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained("user/seqgan-tiny")
save_file(state(generator), out / "generator.safetensors")
save_file(state(discriminator), out / "discriminator.safetensors")
(out / "result.json").write_text(json.dumps({
    "samples": sample(generator), "generator_module": type(generator).__module__,
    "discriminator_class": type(discriminator).__name__, "discriminator_module": type(discriminator).__module__,
    "seqgan_loaded": any(name.startswith("seqgan_hf") for name in sys.modules),
    "decoded": tokenizer.decode([1, 2, 3]),
}))
"""

FAIL = _COMMON + r"""
from seqgan_hf import (CNNDiscriminatorConfig, CNNForSequenceClassification, LSTMConfig, LSTMForCausalLM,
                       SeqGANConfig, SeqGANTrainer)
from seqgan_hf.trainer import HubPushError
import datasets

args = SeqGANConfig(output_dir=str(out / "run"), sequence_length=6, per_device_train_batch_size=8, mle_epochs=0,
                    discriminator_pretrain_rounds=0, adversarial_iterations=0, report_to="none",
                    push_to_hub=True, hub_model_id="user/seqgan-broken", hub_token="test", disable_tqdm=True)
trainer = SeqGANTrainer(
    model=LSTMForCausalLM(LSTMConfig(vocab_size=12, embedding_dim=4, hidden_dim=4)),
    discriminator=CNNForSequenceClassification(CNNDiscriminatorConfig(
        vocab_size=12, embedding_dim=4, filter_sizes=[1, 2], num_filters=[2, 2])),
    args=args, train_dataset=datasets.Dataset.from_dict({"input_ids": [[1, 2, 3, 4, 5, 6]] * 4}))
trainer.train()
report = {}
try:
    trainer.push_to_hub()
except HubPushError as err:
    report = {"error": type(err).__name__, "message": str(err), "cause": type(err.__cause__).__name__}
save_file(state(trainer.model), out / "generator.safetensors")
(out / "result.json").write_text(json.dumps(report))
"""


CHECKPOINT = _BUILD + r"""
trainer = build(out / "run", hub_model_id="user/seqgan-ckpt", hub_strategy="checkpoint")
trainer.train()
future = trainer.push_to_hub(blocking=False)  # a background push that succeeds: result() is the commit
(out / "result.json").write_text(json.dumps({"max_steps": trainer.state.max_steps,
                                             "future_commit": future.result(timeout=120).oid}))
"""

ASYNC_FAIL = _BUILD + r"""
import logging
from seqgan_hf.trainer import HubPushError

warnings = []
class Keep(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            warnings.append(record.getMessage())
logging.getLogger("seqgan_hf.trainer").addHandler(Keep())

trainer = build(out / "run", hub_model_id="user/seqgan-async-broken", hub_strategy="every_save")
trainer.train()  # every checkpoint push fails: warned, and training goes on to the end
future = trainer.push_to_hub(blocking=False)
report = {"future": type(future).__name__}
try:
    future.result(timeout=120)
except HubPushError as err:
    report.update(error=type(err).__name__, message=str(err), cause=type(err.__cause__).__name__)
save_file(state(trainer.model), out / "generator.safetensors")
save_file(state(trainer.discriminator), out / "discriminator.safetensors")
report.update(warnings=warnings, max_steps=trainer.state.max_steps, global_step=trainer.state.global_step)
(out / "result.json").write_text(json.dumps(report))
"""


def _run(hub: HubServer, script: str, workdir: Path, isolated: bool = False) -> Path:
    out = workdir / "out"
    out.mkdir(parents=True)
    if isolated:
        # No site processing (-S): the editable install's .pth finder for seqgan_hf never runs; cwd and
        # PYTHONPATH are ignored (-I). torch and transformers come from site-packages, added as a plain path.
        site_packages = sysconfig.get_paths()["purelib"]
        bootstrap = f"import sys; sys.path.append({site_packages!r}); sys.argv = ['pull', {str(out)!r}]\n"
        command = [sys.executable, "-I", "-S", "-c", bootstrap + script]
    else:
        command = [sys.executable, "-c", script, str(out)]
    proc = subprocess.run(command, env=hub.child_env(workdir / "hf_home"), cwd=workdir, capture_output=True,
                          text=True, timeout=CHILD_TIMEOUT_S)
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return out


@pytest.fixture(scope="module")
def hub():
    with HubServer() as server:
        yield server


@pytest.fixture(scope="module")
def pushed(hub: HubServer, tmp_path_factory) -> Path:
    return _run(hub, PUSH, tmp_path_factory.mktemp("push"))


@pytest.fixture(scope="module")
def pulled(hub: HubServer, pushed: Path, tmp_path_factory) -> Path:
    return _run(hub, PULL, tmp_path_factory.mktemp("pull"), isolated=True)


def test_push_puts_generator_tokenizer_and_code_at_root_and_discriminator_in_subfolder(hub, pushed) -> None:
    files = hub.files(REPO_ID)
    for name in ("config.json", "model.safetensors", "generation_config.json", "lstm.py", "cnn.py", "tokenizer.json",
                 "README.md", "discriminator/config.json", "discriminator/model.safetensors", "discriminator/cnn.py"):
        assert name in files, name
    assert not [name for name in files if "checkpoint" in name]
    config = json.loads(files["config.json"])
    assert config["auto_map"] == {"AutoConfig": "lstm.LSTMConfig", "AutoModelForCausalLM": "lstm.LSTMForCausalLM"}
    d_config = json.loads(files["discriminator/config.json"])
    assert d_config["auto_map"]["AutoModelForSequenceClassification"] == "cnn.CNNForSequenceClassification"
    # The shipped modeling files need nothing but torch / numpy / transformers.
    for name in ("lstm.py", "discriminator/cnn.py"):
        imports = [line for line in files[name].decode().splitlines() if line.startswith(("import ", "from "))]
        roots = {line.split()[1].split(".")[0] for line in imports}
        assert roots <= {"__future__", "dataclasses", "numpy", "torch", "transformers"}, (name, roots)


def test_every_save_pushes_checkpoints_and_repeated_push_and_save_are_safe(hub, pushed) -> None:
    result = json.loads((pushed / "result.json").read_text())
    titles = [commit.title for commit in hub.commits(REPO_ID)]
    # every_save: one push per checkpoint (save_steps=3 over the run's units), then the explicit pushes.
    steps = [step for step in range(3, result["max_steps"] + 1, 3)]
    assert steps and all(f"Training in progress, step {step}" in titles for step in steps), titles
    assert "End of training" in titles
    # Pushing unchanged content again does not fail and creates no new commit; nor do the two save_model()
    # calls, which push (push_to_hub=True) the same files and the same card (push_to_hub's card arguments stick).
    assert result["second_commit"] == result["first_commit"] == hub.head(REPO_ID)
    assert titles[0] == "End of training" and "Model save" not in titles


def test_hub_strategy_end_pushes_only_on_save(hub, pushed) -> None:
    assert json.loads((pushed / "end_checkpoints.json").read_text())  # checkpoints were written locally...
    titles = [commit.title for commit in hub.commits(END_REPO_ID)]
    assert titles == ["Model save", "initial commit"]  # ...but only save_model() pushed
    assert "discriminator/model.safetensors" in hub.files(END_REPO_ID)


def test_model_card_describes_the_run(hub, pushed) -> None:
    readme = hub.files(REPO_ID)["README.md"].decode()
    assert readme.startswith("---\n")
    metadata = yaml.safe_load(readme.split("---\n")[1])
    assert {"seqgan", "text-generation", "gan"} <= set(metadata["tags"])
    assert metadata["library_name"] == "transformers" and metadata["pipeline_tag"] == "text-generation"
    assert metadata["datasets"] == ["oracle-lstm-synthetic"]
    phase_metrics = json.loads((pushed / "result.json").read_text())["phase_metrics"]
    final = phase_metrics["adversarial"]
    assert f"{final['eval_nll_oracle']:.4f}" in readme and f"{final['eval_nll_test']:.4f}" in readme
    assert f"{phase_metrics['mle']['eval_nll_oracle']:.4f}" in readme
    # Machine-readable final metrics (model-index): those of the pushed, adversarially trained weights.
    (results,) = metadata["model-index"][0]["results"]
    values = {metric["type"]: metric["value"] for metric in results["metrics"]}
    assert values == {"nll_oracle": final["eval_nll_oracle"], "nll_test": final["eval_nll_test"]}
    assert results["task"]["type"] == "text-generation"
    for text in ("LSTMForCausalLM", "CNNForSequenceClassification", 'subfolder="discriminator"',
                 "trust_remote_code=True", "| `rollout_num` | `2` |", "| `adversarial_iterations` | `2` |",
                 "oracle LSTM", "@inproceedings{yu2017seqgan", "1609.05473"):
        assert text in readme, text


def test_fresh_process_without_seqgan_hf_loads_both_models_with_trust_remote_code(pushed, pulled) -> None:
    result = json.loads((pulled / "result.json").read_text())
    assert not result["seqgan_loaded"]
    assert result["generator_module"].startswith("transformers_modules.")  # the pushed lstm.py
    assert result["discriminator_module"].startswith("transformers_modules.")
    assert result["discriminator_class"] == "CNNForSequenceClassification"
    for name in ("generator", "discriminator"):
        expected, actual = load_file(pushed / f"{name}.safetensors"), load_file(pulled / f"{name}.safetensors")
        assert expected.keys() == actual.keys()
        for key in expected:
            assert torch.equal(expected[key], actual[key]), f"{name}.{key}"
    assert result["samples"] == json.loads((pushed / "result.json").read_text())["samples"]
    assert result["decoded"] == "t1 t2 t3"


def test_failed_push_raises_clear_error_and_keeps_local_output(hub, tmp_path) -> None:
    with hub.failing_commits():
        out = _run(hub, FAIL, tmp_path)
    report = json.loads((out / "result.json").read_text())
    assert report["error"] == "HubPushError" and report["cause"] == "HfHubHTTPError"
    assert "user/seqgan-broken" in report["message"] and "retry with trainer.push_to_hub()" in report["message"]
    assert "500" in report["message"]
    run = out / "run"
    saved = load_file(run / "model.safetensors")
    trained = load_file(out / "generator.safetensors")
    assert all(torch.equal(saved[k], trained[k]) for k in trained)
    assert (run / "discriminator" / "model.safetensors").exists() and (run / "README.md").exists()
    assert [c.title for c in hub.commits("user/seqgan-broken")] == ["initial commit"]


def _checkpoint_steps(run: Path) -> list[int]:
    return sorted(int(path.name.split("-")[1]) for path in run.glob("checkpoint-*"))


def test_hub_strategy_checkpoint_pushes_last_checkpoint_with_both_models(hub, tmp_path) -> None:
    out = _run(hub, CHECKPOINT, tmp_path)
    repo, run = "user/seqgan-ckpt", out / "run"
    last = max(_checkpoint_steps(run))  # every save_steps=3 units and at the end of training
    assert last == json.loads((out / "result.json").read_text())["max_steps"]
    files = hub.files(repo)
    # The checkpoint as a whole under last-checkpoint/: both models, the SeqGAN state, the trainer state, RNGs.
    for name in ("model.safetensors", "config.json", "discriminator/model.safetensors", "discriminator/config.json",
                 "seqgan_state.pt", "trainer_state.json", "rng_state_0.pth"):
        assert f"last-checkpoint/{name}" in files, name
        assert files[f"last-checkpoint/{name}"] == (run / f"checkpoint-{last}" / name).read_bytes(), name
    assert json.loads(files["last-checkpoint/trainer_state.json"])["global_step"] == last
    # ...and the models at the root / discriminator/, as with every_save; no checkpoint-<step>/ folders.
    for name in ("model.safetensors", "discriminator/model.safetensors", "lstm.py", "README.md"):
        assert name in files, name
    assert not [name for name in files if name.startswith("checkpoint-")]
    titles = [commit.title for commit in hub.commits(repo)]
    assert f"Training in progress, step {last}, checkpoint" in titles, titles
    # push_to_hub(blocking=False) after training: its future's result is the repo's new head.
    assert titles[0] == "End of training"
    assert json.loads((out / "result.json").read_text())["future_commit"] == hub.head(repo)


def test_failed_background_pushes_warn_and_non_blocking_push_fails_with_clear_error(hub, tmp_path) -> None:
    with hub.failing_commits():
        out = _run(hub, ASYNC_FAIL, tmp_path)
    report = json.loads((out / "result.json").read_text())
    # Checkpoint pushes (hub_strategy="every_save") failed with a warning each; training still ran to the end.
    assert report["global_step"] == report["max_steps"]
    run = out / "run"
    steps = _checkpoint_steps(run)
    checkpoint_warnings = [w for w in report["warnings"] if "training continues" in w]
    assert len(steps) >= 2 and len(checkpoint_warnings) == len(steps), report["warnings"]
    assert all(f"(step {step})" in w for step, w in zip(steps, checkpoint_warnings))
    assert all("user/seqgan-async-broken" in w and "500" in w for w in checkpoint_warnings)
    # push_to_hub(blocking=False) returned a future whose result() raises HubPushError (and it was logged too).
    assert report["future"] == "Future"
    assert report["error"] == "HubPushError" and report["cause"] == "HfHubHTTPError"
    assert "user/seqgan-async-broken" in report["message"] and "500" in report["message"]
    assert "retry with trainer.push_to_hub()" in report["message"]
    assert any(w.startswith("Background push failed") for w in report["warnings"])
    # The local output is intact: final models, every checkpoint, the card.
    for saved, trained in (("model.safetensors", "generator"), ("discriminator/model.safetensors", "discriminator")):
        actual, expected = load_file(run / saved), load_file(out / f"{trained}.safetensors")
        assert all(torch.equal(actual[k], expected[k]) for k in expected), saved
    for step in steps:
        assert (run / f"checkpoint-{step}" / "seqgan_state.pt").exists()
        assert (run / f"checkpoint-{step}" / "discriminator" / "model.safetensors").exists()
    assert (run / "README.md").exists()
    assert [c.title for c in hub.commits("user/seqgan-async-broken")] == ["initial commit"]


# A LoRA generator on a tiny GPT-2 base saved locally: push_to_hub uploads the adapter (not the base), the card, the
# training sampling config and the discriminator; a fresh process pulls the adapter with AutoPeftModelForCausalLM.
LORA_PUSH = _COMMON + r"""
from peft import LoraConfig
from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel
import datasets
from seqgan_hf import SeqGANConfig, SeqGANTrainer

torch.manual_seed(0)
base = GPT2LMHeadModel(GPT2Config(vocab_size=24, n_embd=16, n_layer=1, n_head=2, n_positions=32, bos_token_id=0,
                                  eos_token_id=1, pad_token_id=2))
base.save_pretrained(out / "base")
discriminator = GPT2ForSequenceClassification(GPT2Config(vocab_size=24, n_embd=16, n_layer=1, n_head=2,
                                                         n_positions=32, num_labels=2, pad_token_id=2))
data = datasets.Dataset.from_dict({"input_ids": [[3, 4, 5, 6, 7], [7, 6, 5, 4, 3]] * 8})
args = SeqGANConfig(output_dir=str(out / "run"), sequence_length=6, per_device_train_batch_size=8, mle_epochs=1,
                    discriminator_pretrain_rounds=1, num_negatives=16, adversarial_iterations=1, d_steps=1,
                    d_epochs=1, rollout_num=2, discriminator_batch_size=8, disable_tqdm=True, report_to="none",
                    beta=0.1, push_to_hub=True, hub_token="test", hub_model_id="user/seqgan-lora",
                    hub_strategy="end")
trainer = SeqGANTrainer(str(out / "base"), discriminator, args, train_dataset=data,
                        peft_config=LoraConfig(r=2, target_modules=["c_attn"]))
trainer.train()
trainer.push_to_hub()
adapter = {k: v.detach().contiguous() for k, v in trainer.model.named_parameters() if v.requires_grad}
save_file(adapter, out / "adapter.safetensors")
"""

LORA_PULL = _COMMON + r"""
from peft import AutoPeftModelForCausalLM
model = AutoPeftModelForCausalLM.from_pretrained("user/seqgan-lora").eval()
adapter = {k: v.detach().contiguous() for k, v in model.named_parameters() if "lora_" in k}
save_file(adapter, out / "pulled.safetensors")
prompt = torch.zeros((2, 1), dtype=torch.long)
generated = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=True,
                           max_new_tokens=4, pad_token_id=2)
(out / "pulled.json").write_text(json.dumps({"shape": list(generated.shape)}))
"""


def test_a_lora_generator_pushes_its_adapter_and_loads_back_with_peft(hub, tmp_path) -> None:
    pushed = _run(hub, LORA_PUSH, tmp_path / "push")
    files = hub.files("user/seqgan-lora")
    for name in ("adapter_config.json", "adapter_model.safetensors", "training_generation_config.json",
                 "README.md", "discriminator/model.safetensors"):
        assert name in files, name
    assert "model.safetensors" not in files  # the base model stays where it came from
    readme = files["README.md"].decode()
    metadata = yaml.safe_load(readme.split("---\n")[1])
    assert metadata["library_name"] == "peft"
    assert "LORA adapter (peft) on the base model" in readme and str(pushed / "base") in readme
    assert "AutoPeftModelForCausalLM.from_pretrained" in readme
    pulled = _run(hub, LORA_PULL, tmp_path / "pull")
    trained, loaded = load_file(pushed / "adapter.safetensors"), load_file(pulled / "pulled.safetensors")
    assert trained.keys() == loaded.keys() and all(torch.equal(trained[k], loaded[k]) for k in trained)
    assert json.loads((pulled / "pulled.json").read_text())["shape"] == [2, 5]
