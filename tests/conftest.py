"""Shared fixtures: tiny models built from configs and tokenizers trained on the spot (no downloads)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

from tests.hub_server import hub_server_fixture  # noqa: E402

hub_server = pytest.fixture(hub_server_fixture)

CORPUS = [
    "the cat sat on the mat",
    "a dog ran in the park",
    "the bird sang a song",
    "my cat likes the warm sun",
    "a small dog sat by the door",
    "the sun is warm today",
    "birds fly over the park",
    "the dog and the cat play",
] * 8


def train_tokenizer(kind: str = "wordlevel"):
    """A PreTrainedTokenizerFast trained on CORPUS: word-level (G) or WordPiece (a different D tokenizer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[BOS]", "[EOS]", "[UNK]"]
    if kind == "wordlevel":
        tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        trainer = trainers.WordLevelTrainer(special_tokens=specials)
    else:
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=60, special_tokens=specials)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="[PAD]", bos_token="[BOS]", eos_token="[EOS]", unk_token="[UNK]"
    )


@pytest.fixture
def word_tokenizer():
    return train_tokenizer("wordlevel")


@pytest.fixture
def text_dataset():
    import datasets

    return datasets.Dataset.from_dict({"text": CORPUS})


def tiny_lstm(vocab_size: int = 40, **kwargs):
    from seqgan_hf import LSTMConfig, LSTMForCausalLM

    torch.manual_seed(0)
    return LSTMForCausalLM(LSTMConfig(vocab_size=vocab_size, embedding_dim=8, hidden_dim=8, **kwargs))


def tiny_cnn(vocab_size: int = 40, num_labels: int = 2, **kwargs):
    from seqgan_hf import CNNDiscriminatorConfig, CNNForSequenceClassification

    torch.manual_seed(1)
    return CNNForSequenceClassification(
        CNNDiscriminatorConfig(
            vocab_size=vocab_size, embedding_dim=8, filter_sizes=[1, 2, 3], num_filters=[4, 4, 4],
            num_labels=num_labels, **kwargs,
        )
    )


@pytest.fixture
def one_thread():
    """Tiny models: one thread avoids OpenMP barrier stalls when the CPU is shared (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def quick_config(tmp_path, **overrides):
    """A SeqGANConfig small enough for a unit test: every phase runs, for a step or two."""
    from seqgan_hf import SeqGANConfig

    values = dict(
        output_dir=str(tmp_path / "out"), sequence_length=6, per_device_train_batch_size=8, mle_epochs=1,
        discriminator_pretrain_rounds=1, discriminator_pretrain_epochs=1, num_negatives=16, adversarial_iterations=2,
        d_steps=1, d_epochs=1, rollout_num=2, discriminator_batch_size=8, disable_tqdm=True, seed=0,
        mle_learning_rate=0.01, learning_rate=0.01, discriminator_learning_rate=0.01,
    )
    values.update(overrides)
    return SeqGANConfig(**values)
