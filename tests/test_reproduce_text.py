"""benchmarks/reproduce_text.py end to end in --smoke mode on a tiny corpus: the methods, equal generator updates,
early stopping on the validation split, the JSON, the plots, and the BLEU-at-equal-Self-BLEU comparison."""

from __future__ import annotations

import json
import os
import random
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _reproduce_text():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import reproduce_text
    finally:
        sys.path.pop(0)
    return reproduce_text


def _corpus(lines: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = "the a cat dog sat ran on in park mat sun warm bird sang by door".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) for _ in range(lines)]


@pytest.mark.slow
def test_smoke_end_to_end(tmp_path):
    reproduce_text = _reproduce_text()
    folder = tmp_path / "data" / "shakespeare"
    folder.mkdir(parents=True)
    (folder / "train.txt").write_text("\n".join(_corpus(400, 0)) + "\n")
    (folder / "test.txt").write_text("\n".join(_corpus(60, 1)) + "\n")
    out = tmp_path / "out"
    result = reproduce_text.main(["--corpus", "shakespeare", "--smoke", "--data-dir", str(tmp_path / "data"),
                                  "--output-dir", str(out), "--seeds", "0", "1", "--save-models",
                                  str(tmp_path / "models")])
    assert result == json.loads((out / "text_shakespeare.json").read_text())
    assert result["corpus"] == "shakespeare-smoke" and result["paper_bleu_order"] == 3
    methods = set(reproduce_text.METHODS)
    assert {(run["method"], run["seed"]) for run in result["runs"]} == {(m, s) for m in methods for s in (0, 1)}
    data = result["data"]
    assert data["validation_lines"] == 20 and data["train_lines"] == 380 and data["test_lines"] == 60
    steps = data["steps_per_epoch"]
    assert steps == -(-380 // 16)
    for seed in (0, 1):
        runs = {run["method"]: run for run in result["runs"] if run["seed"] == seed}
        curve = result["mle_validation_nll_by_epoch"][str(seed)]
        assert [epoch for epoch, _ in curve] == [1, 2]  # validated after every epoch, once
        best = min(range(2), key=lambda index: curve[index][1]) + 1
        assert runs["mle_early"]["best_epoch"] == best and runs["mle_early"]["generator_updates"] == best * steps
        assert runs["mle_full"]["generator_updates"] == 2 * steps
        # MLE and SeqGAN: the same generator updates (early-stopped MLE, then 2 more each).
        assert runs["mle"]["generator_updates"] == runs["seqgan"]["generator_updates"] == best * steps + 2
        assert [point[0] for point in runs["seqgan"]["curve"]] == [0, 1, 2]
        for run in runs.values():
            assert all(0 <= run[key] <= 1 for key in ("bleu2", "bleu3", "bleu4", "self_bleu"))
            assert 0 < run["nll"] < 10
    assert {(sweep["method"], sweep["seed"]) for sweep in result["sweeps"]} == {(m, 0) for m in methods}
    assert all(sweep["bleu_max_order"] == 3 for sweep in result["sweeps"])
    real = result["real_data"]  # the 20 validation lines scored like samples
    assert real["lines"] == 20 and all(0 < real[key] <= 1 for key in ("bleu2", "bleu4", "self_bleu", "self_bleu3"))
    assert {gain["reference"] for gain in result["seqgan_vs_mle_at_equal_self_bleu"]} == {"mle_early", "mle"}
    for name in ("text_shakespeare_sweep.png", "text_shakespeare_curve.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "models" / "seqgan-seed1")
    assert model.config.vocab_size == len(AutoTokenizer.from_pretrained(tmp_path / "models" / "seqgan-seed1"))


def test_bleu_gain_at_equal_self_bleu_interpolates_the_mle_curve():
    reproduce_text = _reproduce_text()

    def sweep(method, points):
        return {"method": method, "seed": 0,
                "points": [{"temperature": t, "self_bleu": x, "bleu": y} for t, x, y in points]}

    mle = sweep("mle", [(0.8, 0.2, 0.5), (1.0, 0.1, 0.3), (1.2, 0.05, 0.2)])
    seqgan = sweep("seqgan", [(0.8, 0.3, 0.9), (1.0, 0.15, 0.45), (1.2, 0.075, 0.2)])
    (gain,) = reproduce_text.equal_self_bleu_gains([mle, seqgan])
    # 0.15 lies halfway between MLE's 0.1 (BLEU 0.3) and 0.2 (0.5): 0.45 - 0.4; 0.075 halfway to 0.05 (0.2): -0.05;
    # 0.3 is outside MLE's Self-BLEU range: no comparison there.
    assert gain["reference"] == "mle" and gain["gains"] == {"1": pytest.approx(0.05), "1.2": pytest.approx(-0.05)}


def test_missing_corpus_and_bad_arguments_are_named(tmp_path, capsys):
    reproduce_text = _reproduce_text()
    with pytest.raises(SystemExit, match="seqgan-hf data essen --output"):
        reproduce_text.main(["--corpus", "essen", "--smoke", "--data-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        reproduce_text.main(["--corpus", "essen", "--max-mle-epochs", "0"])
    assert "--max-mle-epochs 0: early stopping needs at least 1 epoch" in capsys.readouterr().err


@pytest.mark.slow
def test_smoke_end_to_end_on_prompt_pairs(tmp_path):
    """The prompt corpus path: pairs, PromptEvaluator numbers, per-prompt sweeps, the real-reply rows."""
    reproduce_text = _reproduce_text()
    folder = tmp_path / "data" / "shakespeare_dialogue"
    folder.mkdir(parents=True)
    for split, count, seed in (("train", 300, 0), ("test", 40, 1)):
        prompts, replies = _corpus(count, seed), _corpus(count, seed + 10)
        (folder / f"{split}.jsonl").write_text("".join(
            json.dumps({"prompt": prompt, "completion": reply}) + "\n" for prompt, reply in zip(prompts, replies)))
    out = tmp_path / "out"
    result = reproduce_text.main(["--corpus", "shakespeare_dialogue", "--smoke", "--data-dir",
                                  str(tmp_path / "data"), "--output-dir", str(out), "--seeds", "0"])
    assert result == json.loads((out / "prompts_shakespeare_dialogue.json").read_text())
    assert result["data"]["train_pairs"] == 285 and result["data"]["test_pairs"] == 40
    runs = {run["method"]: run for run in result["runs"]}
    assert set(runs) == set(reproduce_text.METHODS)
    assert runs["mle"]["generator_updates"] == runs["seqgan"]["generator_updates"]
    for run in runs.values():
        assert all(0 <= run[key] <= 1 for key in ("bleu2", "bleu3", "bleu4", "self_bleu")) and 0 < run["nll"] < 10
    sweep = next(s for s in result["sweeps"] if s["method"] == "seqgan")
    assert [point["temperature"] for point in sweep["points"]] == reproduce_text.SMOKE["sweep_temperatures"]
    real = result["real_data"]
    assert real["lines"] == 40 and 0 < real["self_bleu"] <= 1
    assert all(0 <= value <= 1 for value in real["mismatched_replies"].values())
