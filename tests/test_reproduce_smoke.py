"""benchmarks/reproduce_oracle.py end to end in --smoke mode: JSON shape, plots, saved models, npz oracle."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.builders import tiny_lstm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "reproduce_oracle.py")
HANG_GUARD_S = 600  # only stops a hung run: far above what --smoke takes even on a loaded machine


def _check_result(result: dict, seeds: list[int]) -> None:
    assert result["protocol"] == "cpu-smoke"
    assert isinstance(result["oracle"], str)
    methods = {"random", "mle", "ss", "pg_bleu", "seqgan"}
    assert {(run["method"], run["seed"]) for run in result["runs"]} == {(m, s) for m in methods for s in seeds}
    for run in result["runs"]:
        assert 0 < run["nll_oracle"] < 20 and 0 < run["nll_test"] < 20
        if run["method"] == "random":
            assert run["curve"] == [] and run["generator_updates"] == 0
        elif run["method"] == "ss":  # trained from scratch: no adversarial-phase curve
            assert run["curve"] == [] and run["generator_updates"] > 0
        else:
            iterations = [point[0] for point in run["curve"]]
            assert iterations == [0, 1, 2], run  # start of the adversarial phase, then every iteration
            assert all(0 < point[1] < 20 for point in run["curve"])
    updates = {run["method"]: run["generator_updates"] for run in result["runs"] if run["seed"] == seeds[0]}
    assert updates["mle"] == updates["ss"] == updates["seqgan"] == updates["pg_bleu"] > 0  # the same number of generator updates
    assert set(result["summary"]) == methods
    assert len(result["summary"]["seqgan"]["seeds"]) == len(seeds)
    assert {sweep["method"] for sweep in result["sweeps"]} == {"mle", "ss", "pg_bleu", "seqgan"}
    for seed in seeds:  # MLE pretraining evaluated every epoch (smoke: 1 epoch)
        curve = result["mle_pretrain_curves"][str(seed)]
        assert [point[0] for point in curve["epoch_nll_test"]] == [1] and 0 < curve["epoch_nll_test"][0][1] < 20


@pytest.mark.slow
def test_smoke_end_to_end_with_npz_oracle(tmp_path):
    tiny_lstm(100, seed=5, sequence_length=8, init_std=1.0).to_oracle_npz(str(tmp_path / "oracle.npz"))
    completed = subprocess.run(
        [sys.executable, SCRIPT, "--smoke", "--seeds", "0", "1", "--output-dir", str(tmp_path / "out"),
         "--oracle-params", str(tmp_path / "oracle.npz"), "--save-models", str(tmp_path / "models")],
        capture_output=True, text=True, timeout=HANG_GUARD_S, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "| seqgan |" in completed.stdout
    result = json.loads((tmp_path / "out" / "oracle.json").read_text())
    _check_result(result, [0, 1])
    # What keeps --smoke quick is how much work it does, asserted here rather than its wall-clock time (which a
    # busy machine stretches): the smoke sizes, and for every trained method one MLE epoch of 128 / 16 batches
    # plus one update per adversarial iteration.
    settings = result["settings"]
    sizes = ("vocab_size", "sequence_length", "num_train", "batch_size", "mle_epochs", "adversarial_iterations",
             "g_steps", "rollout_num", "num_negatives", "d_pretrain_rounds")
    assert {key: settings[key] for key in sizes} == dict(
        vocab_size=100, sequence_length=8, num_train=128, batch_size=16, mle_epochs=1, adversarial_iterations=2,
        g_steps=1, rollout_num=2, num_negatives=32, d_pretrain_rounds=1)
    assert {run["generator_updates"] for run in result["runs"] if run["method"] != "random"} == {128 // 16 + 2}
    assert "oracle.npz" in result["oracle"]
    for name in ("oracle_curve.png", "oracle_sweep.png"):
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "models" / "seqgan-seed1")
    assert model.config.vocab_size == 100


def test_smoke_merge_keeps_other_seeds(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import reproduce_oracle
    finally:
        sys.path.pop(0)
    out = str(tmp_path / "out")
    reproduce_oracle.main(["--smoke", "--seeds", "0", "--output-dir", out])
    result = reproduce_oracle.main(["--smoke", "--seeds", "1", "--output-dir", out, "--merge", "--sweep-seeds"])
    _check_result({**result, "sweeps": result["sweeps"]}, [0, 1])
    assert {sweep["seed"] for sweep in result["sweeps"]} == {0}  # seed 0's sweep kept, none asked for seed 1


def test_smoke_one_method_from_saved_pretraining(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import reproduce_oracle
    finally:
        sys.path.pop(0)
    out, models = str(tmp_path / "out"), str(tmp_path / "models")
    first = reproduce_oracle.main(["--smoke", "--output-dir", out, "--save-models", models])
    result = reproduce_oracle.main(["--smoke", "--output-dir", out, "--merge", "--methods", "seqgan",
                                    "--pretrained", models, "--seqgan-override", "reward_baseline=batch_mean"])
    assert result["settings"]["seqgan_overrides"] == {"reward_baseline": "batch_mean"}
    before = {run["method"]: run for run in first["runs"]}
    after = {run["method"]: run for run in result["runs"]}
    assert set(after) == {"random", "mle", "ss", "pg_bleu", "seqgan"}
    assert after["mle"] == before["mle"]  # kept from the first run
    assert after["seqgan"]["curve"][0] == before["seqgan"]["curve"][0]  # same pretrained start point
    assert after["seqgan"]["generator_updates"] == before["seqgan"]["generator_updates"]


def test_replot_from_json(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import reproduce_oracle
    finally:
        sys.path.pop(0)
    out = tmp_path / "out"
    reproduce_oracle.main(["--smoke", "--output-dir", str(out)])
    for name in ("oracle_curve.png", "oracle_sweep.png"):
        (out / name).unlink()
    result = reproduce_oracle.main(["--smoke", "--output-dir", str(out), "--replot"])
    assert result["protocol"] == "cpu-smoke"
    for name in ("oracle_curve.png", "oracle_sweep.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
