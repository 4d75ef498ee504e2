"""Data-parallel SeqGAN: `accelerate launch` with 2 CPU processes (gloo) runs the CLI on recipes/oracle_smoke.yaml.

One launch, shared by the tests below. The launched script is the CLI itself (`seqgan_hf.cli.main`), wrapped only
to observe each rank: the trainer it builds, the sequences each rank samples, and which rank writes files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from tests.launch import CAPTURE_TRAINER, accelerate_launch, assert_saved_run_loads_and_generates

REPO = Path(__file__).resolve().parent.parent
ACCELERATE_CONFIG = REPO / "recipes" / "accelerate" / "cpu_2proc.yaml"
RECIPE = REPO / "recipes" / "oracle_smoke.yaml"

# Runs on every rank under `accelerate launch`; argv[1] is a folder for per-rank observations, the rest is the CLI's.
RANK_SCRIPT = r"""
import json, os, sys
from pathlib import Path
import torch
from safetensors.torch import save_file
import transformers.modeling_utils as modeling_utils
import seqgan_hf.cli as cli
from seqgan_hf import SeqGANTrainer
from seqgan_hf.rollout import RolloutEngine

observe, argv = Path(sys.argv[1]), sys.argv[2:]
rank = int(os.environ["RANK"])
seen = {"trainer": None, "samples": [], "writes": 0}

train = SeqGANTrainer.train
def capture(self, *args, **kwargs):
    seen["trainer"] = self
    return train(self, *args, **kwargs)
SeqGANTrainer.train = capture

sample = RolloutEngine.sample
def record(self, model, batch_size, rng=None, prompts=None):
    out = sample(self, model, batch_size, rng=rng, prompts=prompts)
    trainer = seen["trainer"]
    if trainer is not None and rng is trainer.sampling_rng:  # not the oracle's or evaluator's seeded draws
        seen["samples"].append(out.cpu())
    return out
RolloutEngine.sample = record

# Count files written (checkpoints, models) by this rank.
torch_save, safe_save = torch.save, modeling_utils.safe_save_file
def counted(fn):
    def wrapper(*args, **kwargs):
        target = args[1] if len(args) > 1 else kwargs.get("f", kwargs.get("filename"))
        if isinstance(target, (str, os.PathLike)):  # a file, not an in-memory buffer (collectives pickle too)
            seen["writes"] += 1
        return fn(*args, **kwargs)
    return wrapper
torch.save = counted(torch_save)
modeling_utils.safe_save_file = counted(safe_save)

cli.main(["train", *argv])

torch.save, modeling_utils.safe_save_file = torch_save, safe_save
trainer = seen["trainer"]
mine = observe / f"rank{rank}"
mine.mkdir(parents=True, exist_ok=True)
def state(model):
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
save_file(state(trainer.model), mine / "generator.safetensors")
save_file(state(trainer.discriminator), mine / "discriminator.safetensors")
save_file(state(trainer.algorithm.rollout_model), mine / "rollout.safetensors")
(mine / "info.json").write_text(json.dumps({
    "world_size": trainer.args.world_size, "process_index": trainer.args.process_index,
    "writes": seen["writes"], "max_steps": trainer.state.max_steps, "global_step": trainer.state.global_step,
    "log_history": trainer.state.log_history, "sample_batch_sizes": [len(s) for s in seen["samples"]],
    "first_sample_hash": hash(tuple(seen["samples"][0].flatten().tolist())),
}))
"""


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> tuple[Path, Path, dict]:
    """Launch the CLI on 2 CPU processes; return (output_dir, per-rank observations folder, recipe)."""
    work = tmp_path_factory.mktemp("ddp")
    output_dir, observe = work / "out", work / "observe"
    script = work / "rank_script.py"
    script.write_text(RANK_SCRIPT)
    accelerate_launch(ACCELERATE_CONFIG, [str(script), str(observe), "--config", str(RECIPE), "--output_dir",
                                          str(output_dir), "--rollout_policy", "delayed"], work)
    return output_dir, observe, yaml.safe_load(RECIPE.read_text())


def _info(observe: Path, rank: int) -> dict:
    return json.loads((observe / f"rank{rank}" / "info.json").read_text())


def test_two_processes_end_with_identical_generator_discriminator_and_rollout_copy(launched) -> None:
    _, observe, recipe = launched
    infos = [_info(observe, rank) for rank in (0, 1)]
    assert [i["world_size"] for i in infos] == [2, 2] and [i["process_index"] for i in infos] == [0, 1]
    assert all(i["global_step"] == i["max_steps"] for i in infos)  # training completed on both ranks
    for name in ("generator", "discriminator", "rollout"):
        rank0, rank1 = (load_file(observe / f"rank{r}" / f"{name}.safetensors") for r in (0, 1))
        assert rank0.keys() == rank1.keys()
        for key in rank0:
            assert torch.equal(rank0[key], rank1[key]), f"{name}.{key} differs between ranks"
    # ...while each rank sampled its own sequences (not the same batch twice).
    assert infos[0]["first_sample_hash"] != infos[1]["first_sample_hash"]


def test_global_batch_is_per_device_batch_times_processes(launched) -> None:
    _, observe, recipe = launched
    per_device, world = recipe["per_device_train_batch_size"], 2
    info = _info(observe, 0)
    # MLE: an epoch of num_train sequences takes num_train / (per_device * world) updates (the sampler is sharded).
    mle_steps = recipe["mle_epochs"] * -(-recipe["num_train"] // (per_device * world))
    assert info["max_steps"] == mle_steps + recipe["discriminator_pretrain_rounds"] + recipe["adversarial_iterations"]
    logged = info["log_history"]
    mle_batches = [e["mle/global_batch_size"] for e in logged if "mle/global_batch_size" in e]
    g_batches = [e["adversarial/global_batch_size"] for e in logged if "adversarial/global_batch_size" in e]
    assert mle_batches and set(mle_batches) == {per_device * world}
    assert len(g_batches) == recipe["adversarial_iterations"] and set(g_batches) == {per_device * world}
    # Each rank sampled per_device sequences per g-step and num_negatives / world per discriminator round.
    sizes = set(info["sample_batch_sizes"])
    assert sizes == {per_device, recipe["num_negatives"] // world}
    # Logged metrics are global (reduced over ranks): both ranks hold the same log values.
    other = _info(observe, 1)["log_history"]
    losses = [[e.get("adversarial/g_loss") for e in h if "adversarial/g_loss" in e] for h in (logged, other)]
    assert losses[0] == losses[1] and len(losses[0]) == recipe["adversarial_iterations"]


def test_only_main_process_writes_and_result_loads_and_generates(launched) -> None:
    output_dir, observe, recipe = launched
    assert _info(observe, 1)["writes"] == 0 and _info(observe, 0)["writes"] > 0
    checkpoint = output_dir / "checkpoint-5"
    assert (checkpoint / "rng_state_0.pth").exists() and (checkpoint / "rng_state_1.pth").exists()
    rng0, rng1 = (torch.load(checkpoint / f"rng_state_{r}.pth", weights_only=True) for r in (0, 1))
    assert not torch.equal(rng0["rngs"]["sampling"], rng1["rngs"]["sampling"])

    shape = assert_saved_run_loads_and_generates(output_dir, observe / "rank0" / "generator.safetensors", num=3)
    assert shape == [3, 1 + recipe["sequence_length"]]
    results = json.loads((output_dir / "seqgan_results.json").read_text())
    assert "adversarial" in results and "nll_oracle" in json.dumps(results)


def test_two_process_run_resumes_bitwise_with_the_plain_cli(launched, tmp_path) -> None:
    """Drop the last checkpoint and the final model, then resume on 2 processes with the documented command
    (`accelerate launch ... -m seqgan_hf.cli train ... --resume_from_checkpoint latest`): it continues from
    checkpoint-10 (the D pretraining -> adversarial boundary) and ends with the same weights."""
    import shutil

    output_dir, observe, recipe = launched
    resumed = tmp_path / "resumed"
    shutil.copytree(output_dir / "checkpoint-10", resumed / "checkpoint-10")
    accelerate_launch(ACCELERATE_CONFIG, ["-m", "seqgan_hf.cli", "train", "--config", str(RECIPE), "--output_dir",
                                          str(resumed), "--rollout_policy", "delayed", "--resume_from_checkpoint",
                                          "latest"], tmp_path)
    for saved, reference in (("model.safetensors", "generator"), ("discriminator/model.safetensors", "discriminator")):
        actual, expected = load_file(resumed / saved), load_file(observe / "rank0" / f"{reference}.safetensors")
        for key in expected:
            assert torch.equal(actual[key], expected[key]), f"{reference}.{key}"
    state = json.loads((resumed / "checkpoint-13" / "trainer_state.json").read_text())
    assert state["global_step"] == 13 and any("mle/loss" in entry for entry in state["log_history"])


# ---- FSDP2 on two CPU processes -------------------------------------------------------------------------------

FSDP2_CPU_CONFIG = REPO / "recipes" / "accelerate" / "fsdp2_cpu_2proc.yaml"

# accelerate 1.15 never enables FSDP for a CPU (MULTI_CPU, gloo) launch: its AcceleratorState turns an FSDP config
# into FSDP only for device process groups. torch's fully_shard does run on CPU over gloo, so this wrapper makes
# AcceleratorState do for MULTI_CPU what it does for MULTI_GPU (distributed_type FSDP, the env-built plugin kept),
# then runs the CLI; everything after that is accelerate's and SeqGANTrainer's own FSDP2 code path.
FSDP2_SCRIPT = r"""
import json, os, sys
from pathlib import Path
from accelerate.state import AcceleratorState, PartialState
from accelerate.utils import DistributedType

_init = AcceleratorState.__init__
def _init_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if self.distributed_type == DistributedType.MULTI_CPU and fsdp_plugin is not None:
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin
        PartialState._shared_state["distributed_type"] = DistributedType.FSDP  # what later AcceleratorState()s copy
AcceleratorState.__init__ = _init_fsdp_on_cpu
""" + CAPTURE_TRAINER + r"""
import seqgan_hf.cli as cli
from torch.distributed.tensor import DTensor

observe, argv = Path(sys.argv[1]), sys.argv[2:]

cli.main(["train", *argv])

trainer, rank = seen["trainer"], int(os.environ["RANK"])
params = {f"{name}.{key}": value for name, model in (("generator", trainer.model), ("discriminator", trainer.discriminator))
          for key, value in model.named_parameters()}
observe.mkdir(parents=True, exist_ok=True)
(observe / f"rank{rank}.json").write_text(json.dumps({
    "distributed_type": str(trainer.accelerator.distributed_type), "is_fsdp2": trainer.accelerator.is_fsdp2,
    "global_step": trainer.state.global_step, "max_steps": trainer.state.max_steps,
    "sharded": {key: isinstance(value, DTensor) for key, value in params.items()},
    "local_shapes": {key: list(value.to_local().shape) for key, value in params.items() if isinstance(value, DTensor)},
}))
"""


def _launch_fsdp2(work: Path, output_dir: Path, observe: Path, *extra: str) -> None:
    script = work / "fsdp2_script.py"
    script.write_text(FSDP2_SCRIPT)
    accelerate_launch(FSDP2_CPU_CONFIG, [str(script), str(observe), "--config", str(RECIPE), "--output_dir",
                                         str(output_dir), "--rollout_policy", "delayed", *extra], work)


@pytest.fixture(scope="module")
def launched_fsdp2(tmp_path_factory) -> tuple[Path, Path]:
    """The smoke recipe on 2 CPU processes under FSDP2; return (output_dir, per-rank observations folder)."""
    work = tmp_path_factory.mktemp("fsdp2")
    output_dir, observe = work / "out", work / "observe"
    _launch_fsdp2(work, output_dir, observe)
    return output_dir, observe


def test_fsdp2_two_cpu_processes_shard_train_save_and_resume(launched_fsdp2, tmp_path) -> None:
    output_dir, observe = launched_fsdp2
    infos = [json.loads((observe / f"rank{r}.json").read_text()) for r in (0, 1)]
    for info in infos:
        assert info["distributed_type"] == "DistributedType.FSDP" and info["is_fsdp2"]
        assert info["global_step"] == info["max_steps"] == 13
        assert all(info["sharded"].values()), "every parameter of G and D is an FSDP2 shard (DTensor)"
    # Really sharded: the two ranks' local pieces of the embedding add up to its rows.
    rows = [info["local_shapes"]["generator.embed_tokens.weight"][0] for info in infos]
    assert sum(rows) == yaml.safe_load(RECIPE.read_text())["vocab_size"] and all(r < sum(rows) for r in rows)

    # save_model wrote full weights (not a shard), under the models' own class names, and they load and generate.
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    import seqgan_hf  # noqa: F401  (registers the paper's models)

    config = json.loads((output_dir / "config.json").read_text())
    assert config["architectures"] == ["LSTMForCausalLM"] and "AutoModelForCausalLM" in config["auto_map"]
    generator = AutoModelForCausalLM.from_pretrained(output_dir).eval()
    assert generator.embed_tokens.weight.shape[0] == sum(rows)
    prompt = torch.full((3, 1), generator.config.bos_token_id)
    with torch.no_grad():
        out = generator.generate(prompt, attention_mask=torch.ones_like(prompt))
    assert out.shape == (3, 1 + yaml.safe_load(RECIPE.read_text())["sequence_length"])
    discriminator = AutoModelForSequenceClassification.from_pretrained(output_dir / "discriminator")
    assert type(discriminator).__name__ == "CNNForSequenceClassification"

    # Checkpoints hold the full optimizer state of every rank (gathered, unsharded), keyed by parameter name.
    state = torch.load(output_dir / "checkpoint-10" / "seqgan_state.pt", map_location="cpu", weights_only=False)
    assert state["optimizer_layout"] == "full_fsdp2"
    weights = load_file(output_dir / "checkpoint-10" / "discriminator" / "model.safetensors")
    d_state = state["discriminator_optimizer"]["state"]
    assert set(d_state) == set(weights)
    for key, moments in d_state.items():
        assert moments["exp_avg"].shape == weights[key].shape and moments["exp_avg_sq"].abs().sum() > 0, key

    # Resume on 2 processes from checkpoint-10 (D pretraining -> adversarial: D's Adam state matters): same result.
    import shutil

    resumed = tmp_path / "resumed"
    shutil.copytree(output_dir / "checkpoint-10", resumed / "checkpoint-10")
    _launch_fsdp2(tmp_path, resumed, tmp_path / "observe", "--resume_from_checkpoint", "latest")
    for saved in ("model.safetensors", "discriminator/model.safetensors"):
        actual, expected = load_file(resumed / saved), load_file(output_dir / saved)
        for key in expected:
            assert torch.equal(actual[key], expected[key]), f"{saved}: {key}"


def test_fsdp2_mle_matches_ddp_bitwise(launched, launched_fsdp2) -> None:
    """Same recipe, same seed: through MLE (checkpoint-5) the FSDP2 generator equals the DDP one bit for bit, so
    FSDP2's reduce-scatter averages the two ranks' gradients as DDP's all-reduce does."""
    ddp, fsdp2 = (load_file(out / "checkpoint-5" / "model.safetensors") for out in (launched[0], launched_fsdp2[0]))
    assert ddp.keys() == fsdp2.keys()
    for key in ddp:
        assert torch.equal(ddp[key], fsdp2[key]), key


def test_launch_that_accelerate_would_silently_change_is_refused_or_flagged(monkeypatch, caplog) -> None:
    """A GPU config on a machine without GPUs makes every process a lone process 0 (refused); an FSDP config with
    ACCELERATE_USE_CPU=1 runs as plain DDP (warned): accelerate 1.15 enables FSDP only on device process groups."""
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from seqgan_hf.runtime import select_runtime

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    alone = SimpleNamespace(num_processes=1, distributed_type=DistributedType.NO)
    with pytest.raises(RuntimeError, match="each process would train alone"):
        select_runtime(alone, 5.0, str)
    ddp = SimpleNamespace(num_processes=2, distributed_type=DistributedType.MULTI_CPU, is_fsdp2=False,
                          device="cpu", state=SimpleNamespace(deepspeed_plugin=None))
    with caplog.at_level("WARNING", logger="seqgan_hf.trainer"):
        assert type(select_runtime(ddp, 5.0, str)).__name__ == "Runtime"
    assert "NOT sharded" in caplog.text


# ---- a transformer pair with a causal discriminator under DDP ------------------------------------------------------

# argv: observation folder, repository root (for the test helpers' tiny models and tokenizer).
TRANSFORMER_SCRIPT = r"""
import json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import datasets
from safetensors.torch import save_file
from seqgan_hf import SeqGANTrainer
from tests.builders import (CORPUS, classifier_token_ids, lm_token_ids, quick_config, tiny_gpt2,
                            tiny_gpt2_classifier, train_tokenizer)

observe, rank = Path(sys.argv[1]), int(os.environ["RANK"])
tokenizer = train_tokenizer("wordlevel")
trainer = SeqGANTrainer(
    model=tiny_gpt2(**lm_token_ids(tokenizer)),
    discriminator=tiny_gpt2_classifier(num_labels=2, **classifier_token_ids(tokenizer)),
    args=quick_config(observe, sequence_length=8, mle_epochs=0), train_dataset=datasets.Dataset.from_dict({"text": CORPUS}),
    processing_class=tokenizer,
)
trainer.train()
mine = observe / f"rank{rank}"
mine.mkdir(parents=True, exist_ok=True)
save_file({k: v.detach().clone().contiguous() for k, v in trainer.model.state_dict().items()}, mine / "generator.safetensors")
(mine / "info.json").write_text(json.dumps({
    "world_size": trainer.args.world_size, "prefix_cache": trainer.discriminator_reward.prefix_sharing.enabled,
    "discriminator_positions": trainer.rollout_engine.counter.discriminator_positions,
    "scored": trainer.rollout_engine.counter.scored_sequences,
}))
"""


def test_transformer_pair_with_a_causal_discriminator_trains_identically_on_two_processes(tmp_path) -> None:
    """GPT-2 generator (cached rollouts) + GPT-2 discriminator (scored on cached prefixes) under 2-process DDP."""
    script = tmp_path / "transformer_script.py"
    script.write_text(TRANSFORMER_SCRIPT)
    observe = tmp_path / "observe"
    accelerate_launch(ACCELERATE_CONFIG, [str(script), str(observe), str(REPO)], tmp_path)
    infos = [json.loads((observe / f"rank{rank}" / "info.json").read_text()) for rank in (0, 1)]
    for info in infos:
        assert info["world_size"] == 2 and info["prefix_cache"] is True
        # Each rank's 2 g-steps score at most (8*2*7 + 8) sequences of 8 tokens each (prefixes that already hold EOS
        # take their sequence's reward unscored), the 8 sampled ones at least; shared prefixes feed fewer positions.
        assert 2 * 8 < info["scored"] <= 2 * (8 * 2 * 7 + 8)
        assert info["discriminator_positions"] < 0.8 * info["scored"] * 8
    rank0, rank1 = (load_file(observe / f"rank{rank}" / "generator.safetensors") for rank in (0, 1))
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), f"generator.{key} differs between ranks"
