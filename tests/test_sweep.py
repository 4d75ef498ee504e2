"""Temperature sweep: one temperature per point, monotone entropy, oracle and BLEU metrics, JSON and PNG."""

from __future__ import annotations

import json

import pytest
import torch

from seqgan_hf import LSTMConfig, LSTMForCausalLM, OracleTask
from seqgan_hf.oracle import sequence_nll
from seqgan_hf.sweep import plot_sweeps, temperature_sweep

TEMPERATURES = [0.5, 0.8, 1.0, 1.3, 2.0]


@pytest.fixture(scope="module")
def task():
    return OracleTask.create(seed=0, num_train=64, num_test=64, vocab_size=30, embedding_dim=8, hidden_dim=8,
                             sequence_length=8)


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return LSTMForCausalLM(LSTMConfig(vocab_size=30, embedding_dim=8, hidden_dim=8, sequence_length=8, init_std=1.0))


def test_oracle_sweep_monotone_entropy(task, generator):
    sweep = temperature_sweep(generator, TEMPERATURES, task=task, num_samples=64)
    assert sweep["temperatures"] == TEMPERATURES
    entropies = [point["entropy"] for point in sweep["points"]]
    assert all(a < b for a, b in zip(entropies, entropies[1:])), entropies
    one = sweep["points"][TEMPERATURES.index(1.0)]
    assert one["nll_test"] == pytest.approx(task.nll_test(generator), rel=1e-5)  # tau = 1: the plain NLL_test
    for point in sweep["points"]:
        assert 0 < point["nll_oracle"] < 20 and 0 < point["nll_test"] < 20
    assert sweep["oracle_nll_test"] == pytest.approx(sequence_nll(task.oracle, task.test), rel=1e-6)
    json.dumps(sweep)  # serialisable as it is


def test_text_sweep_bleu_and_self_bleu(generator, tmp_path):
    references = [[1, 2, 3, 4, 5, 6, 7, 8], [2, 3, 4, 5, 6, 7, 8, 9]] * 4
    sweep = temperature_sweep(generator, [0.3, 1.0, 3.0], references=references, num_samples=40, max_order=2)
    entropies = [point["entropy"] for point in sweep["points"]]
    assert entropies == sorted(entropies)
    for point in sweep["points"]:
        assert 0 <= point["bleu"] <= 1 and 0 <= point["self_bleu"] <= 1
    # Cold sampling repeats itself: Self-BLEU falls as the temperature rises.
    assert sweep["points"][0]["self_bleu"] > sweep["points"][-1]["self_bleu"]
    path = plot_sweeps({"model": sweep}, str(tmp_path / "text.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_sweep_rejects_bad_arguments(task, generator):
    with pytest.raises(ValueError, match="positive"):
        temperature_sweep(generator, [0.0, 1.0], task=task)
    with pytest.raises(ValueError, match="task="):
        temperature_sweep(generator, [1.0])
    with pytest.raises(ValueError, match="tokenizer"):
        temperature_sweep(generator, [1.0], references=["a b c"])


def test_cli_evaluate_sweep_writes_json_and_png(task, generator, tmp_path):
    from seqgan_hf.cli import main

    generator.save_pretrained(tmp_path / "model")
    task.oracle.save_pretrained(tmp_path / "oracle")
    output, plot = tmp_path / "sweep.json", tmp_path / "sweep.png"
    main(["evaluate", str(tmp_path / "model"), "--oracle_params", str(tmp_path / "oracle"), "--sequence_length", "8",
          "--num_test", "64", "--num_samples", "32", "--sweep", "--temperatures", "0.7,1.0,1.5", "--bleu",
          "--output", str(output), "--plot", str(plot)])
    result = json.loads(output.read_text())
    assert [point["temperature"] for point in result["points"]] == [0.7, 1.0, 1.5]
    assert {"nll_oracle", "nll_test", "entropy", "bleu", "self_bleu"} <= set(result["points"][0])
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_cli_text_sweep_bleu_vs_self_bleu(word_tokenizer, tmp_path):
    from seqgan_hf.cli import main
    from tests.conftest import CORPUS, tiny_lstm

    model = tiny_lstm(vocab_size=len(word_tokenizer), bos_token_id=word_tokenizer.bos_token_id)
    model.save_pretrained(tmp_path / "model")
    word_tokenizer.save_pretrained(tmp_path / "model")
    (tmp_path / "test.txt").write_text("\n".join(CORPUS[:8]) + "\n")
    output = tmp_path / "sweep.json"
    main(["evaluate", str(tmp_path / "model"), "--sweep", "--references", str(tmp_path / "test.txt"),
          "--temperatures", "0.5,1.0", "--num_samples", "16", "--sequence_length", "8", "--max_order", "2",
          "--output", str(output), "--plot", str(tmp_path / "sweep.png")])
    result = json.loads(output.read_text())
    assert {"bleu", "self_bleu", "entropy"} <= set(result["points"][0])
    assert "nll_oracle" not in result["points"][0]
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_plot_several_sweep_files(task, generator, tmp_path):
    from seqgan_hf import sweep as sweep_module

    result = temperature_sweep(generator, [0.8, 1.2], task=task, references=task.test.tolist(), num_samples=16)
    (tmp_path / "a.json").write_text(json.dumps(result))
    sweep_module.main([str(tmp_path / "bleu.png"), f"{tmp_path / 'a.json'}=A", str(tmp_path / "a.json"),
                       "--x", "self_bleu", "--y", "bleu"])
    assert (tmp_path / "bleu.png").read_bytes()[:4] == b"\x89PNG"
