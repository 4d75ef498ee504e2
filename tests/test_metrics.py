"""Tests of `seqgan_hf.metrics`: BLEU / Self-BLEU against nltk, the local `evaluate` modules, NLL_oracle."""

from __future__ import annotations

import math
import os
import random

import evaluate
import pytest
import torch
from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import corpus_bleu as nltk_corpus_bleu
from nltk.translate.bleu_score import sentence_bleu as nltk_sentence_bleu

from seqgan_hf import LSTMConfig, LSTMForCausalLM, metrics
from seqgan_hf.metrics import (
    BleuReferences,
    bleu_details,
    corpus_bleu,
    nll_oracle,
    self_bleu,
    self_bleu_scores,
    sentence_bleu_rewards,
)

METHOD1 = SmoothingFunction().method1


def random_corpus(seed: int, size: int, vocab: int = 6, max_length: int = 9) -> list[list[int]]:
    """Short sequences over a tiny vocabulary (lots of shared n-grams, some empty / shorter than 4)."""
    rng = random.Random(seed)
    return [[rng.randrange(vocab) for _ in range(rng.randrange(0, max_length))] for _ in range(size)]


def uniform_weights(max_order: int) -> tuple[float, ...]:
    return (1 / max_order,) * max_order


def uniform_lstm(vocab_size: int) -> LSTMForCausalLM:
    """An LSTM LM whose next-token distribution is uniform everywhere (zero read-out)."""
    model = LSTMForCausalLM(LSTMConfig(vocab_size=vocab_size, embedding_dim=4, hidden_dim=4, bos_token_id=0))
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.zero_()
    return model.eval()


def assert_same_results(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, rel=1e-12), key


@pytest.fixture(scope="module")
def bleu_module() -> evaluate.EvaluationModule:
    return evaluate.load(metrics.path("bleu"))


@pytest.fixture(scope="module")
def self_bleu_module() -> evaluate.EvaluationModule:
    return evaluate.load(metrics.path("self_bleu"))


@pytest.fixture(scope="module")
def nll_module() -> evaluate.EvaluationModule:
    return evaluate.load(metrics.path("nll_oracle"))


# ---- path ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bleu", "self_bleu", "nll_oracle"])
def test_path_points_to_a_module_script(name: str) -> None:
    directory = metrics.path(name)
    assert os.path.isabs(directory)
    assert os.path.isfile(os.path.join(directory, f"{name}.py"))


def test_path_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="bleu, self_bleu, nll_oracle"):
        metrics.path("rouge")


# ---- BLEU against nltk -----------------------------------------------------------------------------------


@pytest.mark.parametrize("max_order", [1, 2, 3, 4])
def test_sentence_bleu_matches_nltk_multi_reference(max_order: int) -> None:
    references = random_corpus(0, 25)
    hypotheses = random_corpus(1, 30)
    weights = uniform_weights(max_order)
    expected = [nltk_sentence_bleu(references, h, weights, smoothing_function=METHOD1) for h in hypotheses]

    rewards = sentence_bleu_rewards(hypotheses, references, max_order)
    assert rewards == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert corpus_bleu(hypotheses, references, max_order) == pytest.approx(sum(expected) / len(expected), rel=1e-12)


def test_bleu_details_micro_average_matches_nltk_corpus_bleu() -> None:
    references = random_corpus(2, 20)
    hypotheses = random_corpus(3, 15)
    details = bleu_details(hypotheses, references)
    expected = nltk_corpus_bleu([references] * len(hypotheses), hypotheses, smoothing_function=METHOD1)
    assert details["micro_bleu"] == pytest.approx(expected, rel=1e-12)
    assert details["bleu"] == pytest.approx(corpus_bleu(hypotheses, references), rel=1e-12)
    assert len(details["precisions"]) == 4
    assert 0.0 <= details["brevity_penalty"] <= 1.0


def test_bleu_known_values() -> None:
    references = [[1, 2, 3, 4, 5], [6, 6]]
    assert corpus_bleu([[1, 2, 3, 4, 5]], references) == 1.0
    assert corpus_bleu([[7, 8]], references) == 0.0  # no unigram match: 0 whatever the smoothing
    # p1 = 2/5, p2 = 1/4, p3 and p4 smoothed to 0.1/3 and 0.1/2, no brevity penalty.
    expected = math.exp((math.log(2 / 5) + math.log(1 / 4) + math.log(0.1 / 3) + math.log(0.1 / 2)) / 4)
    assert sentence_bleu_rewards([[7, 8, 9, 1, 2]], references) == pytest.approx([expected], rel=1e-12)
    # Without smoothing a zero precision gives 0.
    assert sentence_bleu_rewards([[7, 8, 9, 1, 2]], references, smoothing=0) == [0.0]


def test_str_tokens_texts_and_tensors_agree_with_int_ids() -> None:
    references = random_corpus(4, 12)
    hypotheses = random_corpus(5, 10)
    as_words = [[f"w{token}" for token in sequence] for sequence in hypotheses]
    as_texts = [" ".join(words) for words in as_words]
    reference_texts = [" ".join(f"w{token}" for token in sequence) for sequence in references]
    expected = sentence_bleu_rewards(hypotheses, references)
    assert sentence_bleu_rewards(as_words, reference_texts) == expected
    assert sentence_bleu_rewards(as_texts, reference_texts) == expected

    fixed = [sequence[:4] + [0] * (4 - len(sequence[:4])) for sequence in hypotheses]
    assert sentence_bleu_rewards(torch.tensor(fixed), references) == sentence_bleu_rewards(fixed, references)


def test_prebuilt_references_are_reused() -> None:
    references = random_corpus(6, 15)
    hypotheses = random_corpus(7, 10)
    table = BleuReferences(references, max_order=3)
    assert table.num_references == 15
    assert corpus_bleu(hypotheses, table, max_order=3) == corpus_bleu(hypotheses, references, max_order=3)
    with pytest.raises(ValueError, match="max_order=3"):
        corpus_bleu(hypotheses, table, max_order=4)


# ---- Self-BLEU -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_order", [2, 4])
def test_self_bleu_matches_brute_force_leave_one_out(max_order: int) -> None:
    sequences = random_corpus(8, 20, vocab=4)
    sequences += [sequences[0], sequences[3], [1, 1, 1, 1, 1, 1], [1, 1], [2] * 15]  # duplicates, unique lengths
    weights = uniform_weights(max_order)
    expected = [
        nltk_sentence_bleu(sequences[:i] + sequences[i + 1 :], sequences[i], weights, smoothing_function=METHOD1)
        for i in range(len(sequences))
    ]
    assert self_bleu_scores(sequences, max_order) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert self_bleu(sequences, max_order) == pytest.approx(sum(expected) / len(expected), rel=1e-12)


def test_self_bleu_of_identical_sequences_is_one() -> None:
    assert self_bleu([[3, 1, 4, 1, 5, 9]] * 5) == 1.0
    assert self_bleu(["the cat sat on the mat"] * 3) == 1.0


def test_self_bleu_is_lower_for_more_diverse_samples() -> None:
    repetitive = [[1, 2, 3, 4, 5, 6]] * 8 + [[1, 2, 3, 4, 5, 7]] * 2
    diverse = random_corpus(9, 10, vocab=50, max_length=12)
    assert self_bleu(diverse) < self_bleu(repetitive)


# ---- evaluate modules ------------------------------------------------------------------------------------


def test_evaluate_bleu_agrees_with_function(bleu_module: evaluate.EvaluationModule) -> None:
    references = random_corpus(10, 20)
    hypotheses = random_corpus(11, 12)
    result = bleu_module.compute(predictions=hypotheses, references=references)
    assert_same_results(result, bleu_details(hypotheses, references))
    assert result["bleu"] == pytest.approx(corpus_bleu(hypotheses, references), rel=1e-12)

    bigram = bleu_module.compute(predictions=hypotheses, references=references, max_order=2)
    assert bigram["bleu"] == pytest.approx(corpus_bleu(hypotheses, references, max_order=2), rel=1e-12)


def test_evaluate_bleu_text_input_and_batches(bleu_module: evaluate.EvaluationModule) -> None:
    references = ["the cat sat on the mat", "a dog ran in the park"]
    predictions = ["the cat ran in the park", "a dog sat on the mat", "the the the"]
    result = bleu_module.compute(predictions=predictions, references=references)
    assert result["bleu"] == pytest.approx(corpus_bleu(predictions, references), rel=1e-12)

    for prediction in predictions:
        bleu_module.add_batch(predictions=[prediction])
    assert_same_results(bleu_module.compute(references=references), result)


def test_evaluate_self_bleu(self_bleu_module: evaluate.EvaluationModule) -> None:
    sequences = random_corpus(12, 15)
    assert self_bleu_module.compute(predictions=sequences)["self_bleu"] == pytest.approx(self_bleu(sequences))
    assert self_bleu_module.compute(predictions=["a b c d e"] * 4) == {"self_bleu": 1.0}


# ---- NLL_oracle ------------------------------------------------------------------------------------------


def test_nll_oracle_of_uniform_model_is_log_vocab(nll_module: evaluate.EvaluationModule, tmp_path) -> None:
    vocab_size = 11
    model = uniform_lstm(vocab_size)
    samples = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10], [0]]  # lengths may differ
    assert nll_oracle(samples, model) == pytest.approx(math.log(vocab_size), rel=1e-6)
    assert nll_module.compute(predictions=samples, oracle=model)["nll_oracle"] == pytest.approx(
        math.log(vocab_size), rel=1e-6
    )

    model.save_pretrained(tmp_path / "oracle")
    from_path = nll_module.compute(predictions=torch.tensor([[1, 2, 3], [4, 5, 6]]), oracle=str(tmp_path / "oracle"))
    assert from_path["nll_oracle"] == pytest.approx(math.log(vocab_size), rel=1e-6)


def test_nll_oracle_scores_bos_plus_sequence() -> None:
    torch.manual_seed(0)
    model = LSTMForCausalLM(LSTMConfig(vocab_size=9, embedding_dim=4, hidden_dim=5, init_std=1.0, bos_token_id=2))
    model.eval()
    samples = [[3, 1, 4, 1, 5], [8, 0, 6, 7, 0], [5, 3]]
    log_probs = []
    with torch.no_grad():
        for sample in samples:
            logits = model(input_ids=torch.tensor([[2] + sample[:-1]])).logits[0]
            log_probs += logits.log_softmax(-1)[torch.arange(len(sample)), torch.tensor(sample)].tolist()
    expected = -sum(log_probs) / len(log_probs)
    assert nll_oracle(samples, model) == pytest.approx(expected, rel=1e-5)


# ---- invalid input ---------------------------------------------------------------------------------------


def test_functions_reject_invalid_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        corpus_bleu([], [[1, 2]])
    with pytest.raises(ValueError, match="empty"):
        corpus_bleu([[1, 2]], [])
    with pytest.raises(ValueError, match="int tokens but references are str"):
        corpus_bleu([[1, 2]], ["a b"])
    with pytest.raises(ValueError, match="mixes"):
        corpus_bleu([[1, 2], ["a", "b"]], [[1, 2]])
    with pytest.raises(ValueError, match="single string"):
        corpus_bleu("a b c", ["a b c"])
    with pytest.raises(ValueError, match="float"):
        sentence_bleu_rewards([[1.5, 2]], [[1, 2]])
    with pytest.raises(ValueError, match="max_order"):
        corpus_bleu([[1, 2]], [[1, 2]], max_order=0)
    with pytest.raises(ValueError, match="at least two"):
        self_bleu([[1, 2, 3]])
    with pytest.raises(ValueError, match="no tokens"):
        nll_oracle([], uniform_lstm(5))
    with pytest.raises(ValueError, match="token ids"):
        nll_oracle(["a b"], uniform_lstm(5))
    with pytest.raises(ValueError, match="vocabulary"):
        nll_oracle([[1, 7]], uniform_lstm(5))


def test_evaluate_modules_reject_invalid_input(
    bleu_module: evaluate.EvaluationModule,
    self_bleu_module: evaluate.EvaluationModule,
    nll_module: evaluate.EvaluationModule,
) -> None:
    with pytest.raises(ValueError, match="empty"):
        bleu_module.compute(predictions=[], references=[[1, 2]])
    with pytest.raises(ValueError, match="needs references"):
        bleu_module.compute(predictions=[[1, 2]])
    with pytest.raises(ValueError, match="int tokens but references are str"):
        bleu_module.compute(predictions=[[1, 2]], references=["a b"])
    with pytest.raises(ValueError, match="mixes texts and token sequences"):
        self_bleu_module.compute(predictions=["a b", [1, 2]])
    with pytest.raises(ValueError, match="takes no references"):
        self_bleu_module.compute(predictions=["a b", "a c"], references=["a b"])
    with pytest.raises(ValueError, match="compute\\(references=...\\)"):
        bleu_module.add_batch(predictions=[[1, 2]], references=[[1, 2]])
    with pytest.raises(ValueError, match="no predictions"):
        self_bleu_module.compute()
    with pytest.raises(ValueError, match="needs oracle"):
        nll_module.compute(predictions=[[1, 2]])
