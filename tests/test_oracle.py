"""The synthetic oracle task: NLL_oracle and NLL_test estimate what they should."""

from __future__ import annotations

import math

import pytest
import torch

from seqgan_hf import LSTMConfig, LSTMForCausalLM, OracleTask
from seqgan_hf.oracle import build_oracle, load_oracle, sequence_nll


@pytest.fixture(scope="module")
def task():
    return OracleTask.create(seed=3, num_train=2000, num_test=2000, vocab_size=5000)


def test_oracle_as_generator_scores_its_entropy_rate_both_ways(task):
    nll_oracle = task.nll_oracle(task.oracle, num_samples=2000, seed=7)
    nll_test = task.nll_test(task.oracle)
    # Both estimate the oracle's entropy rate: equal within sampling noise (~0.05 nats at 2000 x 20 tokens).
    assert abs(nll_oracle - nll_test) < 0.1
    assert 3.0 < nll_test < 9.0


def test_uniform_generator_nll_test_is_log_vocab(task):
    uniform = LSTMForCausalLM(LSTMConfig(vocab_size=5000))
    with torch.no_grad():
        uniform.lm_head.weight.zero_()
        uniform.lm_head.bias.zero_()
    assert task.nll_test(uniform) == pytest.approx(math.log(5000), abs=1e-4)
    # A uniform generator's samples are far less likely under the oracle than its own samples.
    assert task.nll_oracle(uniform, num_samples=500) > task.nll_test(task.oracle) + 1.0


def test_oracle_is_reproducible_and_data_disjoint_by_seed(task):
    again = OracleTask.create(seed=3, num_train=2000, num_test=2000, vocab_size=5000)
    assert torch.equal(again.train, task.train) and torch.equal(again.test, task.test)
    assert not torch.equal(task.train[:100], task.test[:100])
    assert task.train.shape == (2000, 20) and task.train.max() < 5000


def test_oracle_parameters_are_standard_normal():
    oracle = build_oracle(seed=0)
    params = torch.cat([p.flatten() for p in oracle.parameters()])
    nonzero = params[params != 0]  # nn.LSTM's second bias is kept at zero (the paper has one bias per gate)
    assert abs(nonzero.mean().item()) < 0.01
    assert abs(nonzero.std().item() - 1.0) < 0.01


def test_oracle_loads_from_npz_and_directory(tmp_path):
    oracle = build_oracle(seed=1, vocab_size=100)
    oracle.to_oracle_npz(str(tmp_path / "oracle.npz"))
    oracle.save_pretrained(tmp_path / "dir")
    sequences = torch.randint(0, 100, (10, 20))
    expected = sequence_nll(oracle, sequences)
    assert sequence_nll(load_oracle(str(tmp_path / "oracle.npz")), sequences) == pytest.approx(expected, rel=1e-5)
    assert sequence_nll(load_oracle(str(tmp_path / "dir")), sequences) == pytest.approx(expected, rel=1e-6)


def test_oracle_stream_differs_from_a_generator_seeded_alike():
    """A generator initialised after set_seed(s) must not be a scaled copy of the oracle built with seed s."""
    from transformers import set_seed

    oracle = build_oracle(seed=0, vocab_size=100)
    set_seed(0)
    generator = LSTMForCausalLM(LSTMConfig(vocab_size=100))
    correlation = torch.corrcoef(torch.stack([oracle.lm_head.weight.flatten(), generator.lm_head.weight.flatten()]))
    assert abs(correlation[0, 1].item()) < 0.1


def test_one_teacher_forced_pass_serves_every_nll():
    """NLL_oracle, NLL_test, the sweep and `metrics.nll_oracle` all score with `teacher_forced_nll`."""
    from seqgan_hf import metrics
    from seqgan_hf.likelihood import teacher_forced_nll
    from seqgan_hf.sweep import tempered_nll_and_entropy

    model = build_oracle(seed=2, vocab_size=50, sequence_length=6)
    sequences = torch.randint(0, 50, (37, 6), generator=torch.Generator().manual_seed(0))
    mask = torch.rand(37, 6, generator=torch.Generator().manual_seed(1)) > 0.3
    # Reference: one position at a time, fed [BOS=0] + sequence, logits / temperature.
    inputs = torch.cat([torch.zeros(37, 1, dtype=torch.long), sequences[:, :-1]], dim=1)
    log_probs = torch.log_softmax(model(input_ids=inputs).logits.detach().double() / 0.7, dim=-1)
    token_nll = -log_probs.gather(-1, sequences.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_probs.exp() * log_probs).sum(-1)
    score = teacher_forced_nll(model, sequences, 0, temperature=0.7, mask=mask, batch_size=8, entropy=True)
    assert score.nll == pytest.approx(token_nll[mask].mean().item(), rel=1e-5)
    assert score.entropy == pytest.approx(entropy[mask].mean().item(), rel=1e-5)
    # The public names are the same pass, to the last bit.
    assert tempered_nll_and_entropy(model, sequences, 0.7, 0, mask, batch_size=8) == tuple(score)
    assert sequence_nll(model, sequences) == teacher_forced_nll(model, sequences).nll
    assert teacher_forced_nll(model, sequences).entropy is None
    assert metrics.nll_oracle(sequences, model) == pytest.approx(sequence_nll(model, sequences), rel=1e-12)
    assert math.isnan(teacher_forced_nll(model, sequences, mask=torch.zeros_like(mask)).nll)


def test_one_oracle_loader(tmp_path):
    from seqgan_hf.metrics import load_oracle_model

    oracle = build_oracle(seed=1, vocab_size=30)
    oracle.to_oracle_npz(str(tmp_path / "oracle.npz"))
    assert load_oracle(oracle) is oracle and load_oracle_model(oracle) is oracle
    assert load_oracle(str(tmp_path / "oracle.npz"), sequence_length=7).config.sequence_length == 7
    assert load_oracle_model(tmp_path / "oracle.npz").config.sequence_length == 20
    for loader in (load_oracle, load_oracle_model):
        with pytest.raises(ValueError, match="neither"):
            loader(str(tmp_path / "missing.npz"))
