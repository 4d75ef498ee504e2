"""Shared fixtures (the builders they use live in tests/builders.py). Offline: nothing is downloaded."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

# tests/test_sweep.py still imports these two from here.
from tests.builders import CORPUS, tiny_lstm, train_tokenizer  # noqa: E402, F401


@pytest.fixture
def word_tokenizer():
    return train_tokenizer("wordlevel")


@pytest.fixture
def text_dataset():
    import datasets

    return datasets.Dataset.from_dict({"text": CORPUS})


@pytest.fixture
def one_thread():
    """Tiny models: one thread avoids OpenMP barrier stalls when the CPU is shared (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
