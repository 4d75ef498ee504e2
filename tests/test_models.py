"""The paper's models: Auto registration, save/load round trips, generate(), the oracle .npz layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

import seqgan_hf  # noqa: F401  (registers the Auto classes)
from seqgan_hf import CNNDiscriminatorConfig, CNNForSequenceClassification, LSTMForCausalLM
from tests.builders import tiny_cnn, tiny_lstm


def test_lstm_round_trip_with_auto_classes(tmp_path):
    model = tiny_lstm()
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).model_type == "seqgan_lstm"
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert isinstance(loaded, LSTMForCausalLM)
    inputs = torch.randint(0, 40, (3, 7))
    torch.testing.assert_close(loaded(inputs).logits, model(inputs).logits, rtol=0, atol=0)


def test_cnn_round_trip_with_auto_classes(tmp_path):
    model = tiny_cnn(num_labels=1).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, CNNForSequenceClassification)
    inputs = torch.randint(0, 40, (3, 7))
    torch.testing.assert_close(loaded.state_dict(), model.state_dict(), rtol=0, atol=0)
    torch.testing.assert_close(loaded(inputs).logits, model(inputs).logits)
    assert loaded(inputs).logits.shape == (3, 1)


def test_lstm_generate_matches_its_forward_pass():
    """generate() with the recurrent cache must sample from the same distribution forward() computes."""
    model = tiny_lstm().eval()
    prompt = torch.zeros(4, 1, dtype=torch.long)
    greedy = model.generate(prompt, do_sample=False, max_new_tokens=6, pad_token_id=0)
    assert greedy.shape == (4, 7)
    logits = model(greedy).logits
    # Each greedy token is the argmax of the full-sequence forward at the previous position.
    assert torch.equal(logits[:, :-1].argmax(-1), greedy[:, 1:])
    torch.manual_seed(0)
    sampled = model.generate(prompt, do_sample=True, max_new_tokens=6, top_k=0, pad_token_id=0)
    assert sampled.shape == (4, 7)


def test_lstm_loss_is_causal_lm_loss():
    model = tiny_lstm()
    inputs = torch.randint(0, 40, (2, 5))
    output = model(inputs, labels=inputs)
    expected = torch.nn.functional.cross_entropy(output.logits[:, :-1].reshape(-1, 40), inputs[:, 1:].reshape(-1))
    torch.testing.assert_close(output.loss, expected)


def test_lstm_prefix_states_and_step_agree_with_forward():
    model = tiny_lstm().eval()
    inputs = torch.randint(0, 40, (3, 6))
    logits, h_all, c_all = model.prefix_states(inputs)
    torch.testing.assert_close(logits, model(inputs).logits)
    # Continuing from the state after 3 tokens gives the same logits as a full pass.
    from seqgan_hf.models.lstm import LSTMState

    step_logits, _ = model.step(inputs[:, 3], LSTMState(h_all[:, 2], c_all[:, 2]))
    torch.testing.assert_close(step_logits, logits[:, 3])


def test_oracle_npz_layout_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    vocab, emb, hidden = 50, 6, 5
    arrays = {"emb": rng.normal(size=(vocab, emb)), "Wo": rng.normal(size=(hidden, vocab)), "bo": rng.normal(size=vocab)}
    for gate in ("i", "f", "og", "c"):
        arrays[f"W{gate}"] = rng.normal(size=(emb, hidden))
        arrays[f"U{gate}"] = rng.normal(size=(hidden, hidden))
        arrays[f"b{gate}"] = rng.normal(size=hidden)
    path = tmp_path / "oracle.npz"
    np.savez(path, **{k: v.astype(np.float32) for k, v in arrays.items()})
    model = LSTMForCausalLM.from_oracle_npz(str(path))

    # Reference: the paper's equations written out in numpy.
    tokens = [0, 3, 7, 1]
    h = c = np.zeros(hidden)
    expected = []
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    for token in tokens:
        x = arrays["emb"][token]
        i = sigmoid(x @ arrays["Wi"] + h @ arrays["Ui"] + arrays["bi"])
        f = sigmoid(x @ arrays["Wf"] + h @ arrays["Uf"] + arrays["bf"])
        o = sigmoid(x @ arrays["Wog"] + h @ arrays["Uog"] + arrays["bog"])
        c = f * c + i * np.tanh(x @ arrays["Wc"] + h @ arrays["Uc"] + arrays["bc"])
        h = o * np.tanh(c)
        expected.append(h @ arrays["Wo"] + arrays["bo"])
    logits = model(torch.tensor([tokens])).logits[0].detach().numpy()
    np.testing.assert_allclose(logits, np.stack(expected), rtol=1e-4, atol=1e-4)

    model.to_oracle_npz(str(tmp_path / "again.npz"))
    again = np.load(tmp_path / "again.npz")
    for name, value in arrays.items():
        np.testing.assert_allclose(again[name], value, rtol=1e-6, atol=1e-6)


def test_oracle_npz_missing_arrays_is_a_clear_error(tmp_path):
    np.savez(tmp_path / "bad.npz", emb=np.zeros((4, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="lacks arrays"):
        LSTMForCausalLM.from_oracle_npz(str(tmp_path / "bad.npz"))


def test_cnn_paper_defaults_and_dropout_semantics():
    config = CNNDiscriminatorConfig()
    assert config.filter_sizes == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20]
    assert config.num_filters == [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160]
    # "keep 0.75" is a drop probability of 0.25 (writing p=0.75 is a known bug of ports).
    assert config.dropout == pytest.approx(0.25)
    with pytest.raises(ValueError, match="num_filters"):
        CNNDiscriminatorConfig(filter_sizes=[1, 2], num_filters=[3])


def test_cnn_pads_short_inputs_and_masks_padding():
    model = CNNForSequenceClassification(
        CNNDiscriminatorConfig(vocab_size=20, embedding_dim=4, filter_sizes=[2, 5], num_filters=[3, 3])
    ).eval()
    short = torch.tensor([[3, 4, 5]])
    assert model(short).logits.shape == (1, 2)
    # Tokens behind attention_mask == 0 do not change the output.
    a = model(torch.tensor([[3, 4, 5, 6]]), attention_mask=torch.tensor([[1, 1, 1, 0]])).logits
    b = model(torch.tensor([[3, 4, 5, 9]]), attention_mask=torch.tensor([[1, 1, 1, 0]])).logits
    torch.testing.assert_close(a, b)


def test_cnn_loss_includes_l2_on_output_layer():
    model = tiny_cnn().eval()
    inputs = torch.randint(0, 40, (4, 6))
    labels = torch.tensor([0, 1, 0, 1])
    output = model(inputs, labels=labels)
    ce = torch.nn.functional.cross_entropy(output.logits, labels)
    l2 = model.classifier.weight.pow(2).sum() + model.classifier.bias.pow(2).sum()
    torch.testing.assert_close(output.loss, ce + 0.2 * 0.5 * l2)
