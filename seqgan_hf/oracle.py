"""The paper's synthetic benchmark: a random LSTM "oracle" plays the real data distribution.

An oracle LSTM with N(0, 1) parameters generates the training set; a generator is judged by
NLL_oracle (the oracle's mean per-token NLL of the generator's samples: quality) and NLL_test (the
generator's mean per-token NLL of held-out oracle samples: coverage/diversity).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .likelihood import teacher_forced_nll
from .metrics import load_oracle_model
from .models import LSTMConfig, LSTMForCausalLM
from .rollout import RolloutEngine
from .sampling import SamplingDistribution

if TYPE_CHECKING:
    import datasets

# Oracle parameters come from their own RNG stream. Seeding with the bare `seed` would make an oracle built with
# seed 0 and a generator initialised after `set_seed(0)` draw the *same* normals (the generator a 0.1-scaled copy
# of the oracle), silently leaking the answer into the initialisation.
ORACLE_SEED_OFFSET = 7_919_000_000


def build_oracle(
    seed: int = 0,
    vocab_size: int = 5000,
    embedding_dim: int = 32,
    hidden_dim: int = 32,
    sequence_length: int = 20,
    init_std: float = 1.0,
) -> LSTMForCausalLM:
    """An oracle LSTM whose every parameter is drawn from N(0, init_std^2), reproducibly from `seed`.

    The global RNG is left untouched, and the oracle's stream never coincides with `set_seed(seed)`'s."""
    config = LSTMConfig(
        vocab_size=vocab_size,
        embedding_dim=embedding_dim,
        hidden_dim=hidden_dim,
        sequence_length=sequence_length,
        init_std=init_std,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ORACLE_SEED_OFFSET + seed)
        oracle = LSTMForCausalLM(config)
    return oracle.eval().requires_grad_(False)


def load_oracle(
    oracle: str | os.PathLike | torch.nn.Module,
    sequence_length: int | None = None,
    device: str | torch.device | None = None,
) -> torch.nn.Module:
    """Load an oracle from the paper's `.npz` layout (with `sequence_length`, default 20) or from a
    `save_pretrained` directory, frozen and in eval mode; a model object is returned as it is.

    A name for [`seqgan_hf.metrics.load_oracle_model`], the package's one oracle loader."""
    return load_oracle_model(oracle, device, sequence_length=sequence_length)


@torch.no_grad()
def sample_sequences(
    model: torch.nn.Module,
    num_sequences: int,
    sequence_length: int,
    bos_token_id: int = 0,
    batch_size: int = 1000,
    seed: int | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
) -> torch.LongTensor:
    """Sample `num_sequences` sequences [N, T] from `model` (fed `bos_token_id` first), reproducibly by `seed`, from
    the sampling distribution `temperature`, `top_k`, `top_p` (`seqgan_hf.sampling`; default: the model's own)."""
    was_training = model.training
    model.eval()
    engine = RolloutEngine(bos_token_id, sequence_length, rollout_num=1, temperature=temperature, top_k=top_k,
                           top_p=top_p)
    rng = torch.Generator(device="cpu")
    rng.manual_seed(seed if seed is not None else int(torch.randint(0, 2**62, (1,))))
    chunks = [
        engine.sample(model, min(batch_size, num_sequences - start), rng=rng).cpu()
        for start in range(0, num_sequences, batch_size)
    ]
    model.train(was_training)
    return torch.cat(chunks)


def sequence_nll(
    model: torch.nn.Module,
    sequences: torch.LongTensor,
    bos_token_id: int | None = None,
    batch_size: int = 1024,
) -> float:
    """Mean per-token negative log-likelihood of `sequences` [N, T] under `model`, fed `[BOS] + sequence`.

    The untempered, unmasked case of [`seqgan_hf.likelihood.teacher_forced_nll`]."""
    return teacher_forced_nll(model, sequences, bos_token_id, batch_size=batch_size).nll


@dataclass
class OracleTask:
    """An oracle and the data it generates: `train` (the real data) and a disjoint held-out `test` set."""

    oracle: LSTMForCausalLM
    train: torch.LongTensor
    test: torch.LongTensor
    bos_token_id: int = 0

    @classmethod
    def create(
        cls,
        seed: int = 0,
        num_train: int = 10_000,
        num_test: int = 10_000,
        oracle_params: str | None = None,
        sequence_length: int = 20,
        **oracle_kwargs,
    ) -> OracleTask:
        """Build (or load) an oracle and sample its training and test sets with seeds derived from `seed`."""
        if oracle_params is not None:
            oracle = load_oracle(oracle_params, sequence_length=sequence_length)
        else:
            oracle = build_oracle(seed=seed, sequence_length=sequence_length, **oracle_kwargs)
        train = sample_sequences(oracle, num_train, sequence_length, seed=seed * 2 + 1)
        test = sample_sequences(oracle, num_test, sequence_length, seed=seed * 2 + 2)
        return cls(oracle=oracle, train=train, test=test)

    @property
    def sequence_length(self) -> int:
        return self.train.shape[1]

    def train_dataset(self) -> datasets.Dataset:
        """The real data as a `datasets.Dataset` with an `input_ids` column."""
        import datasets  # here, not at the top: scoring (e.g. `seqgan_hf.metrics`) should not pay for it

        return datasets.Dataset.from_dict({"input_ids": self.train.tolist()})

    def nll_oracle(self, generator: torch.nn.Module, num_samples: int = 10_000, seed: int = 0,
                   temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> float:
        """Oracle NLL of `num_samples` fresh samples from `generator` (lower = more oracle-like), drawn at
        `temperature` with `top_k` / `top_p` truncation (default: the generator's own distribution)."""
        self.oracle.to(next(generator.parameters()).device)
        samples = sample_sequences(
            generator, num_samples, self.sequence_length, self.bos_token_id, seed=seed, temperature=temperature,
            top_k=top_k, top_p=top_p,
        )
        return teacher_forced_nll(self.oracle, samples, self.bos_token_id).nll

    def nll_test(self, generator: torch.nn.Module, temperature: float = 1.0) -> float:
        """Generator NLL of the held-out oracle samples (lower = better coverage of the oracle), with the
        generator's logits divided by `temperature`."""
        # Tempered NLL_test was always scored in the sweep's 256-sequence batches; the float32 per-batch sums
        # depend on the batch, so keeping it keeps earlier numbers to the last digit.
        batch_size = 1024 if temperature == 1.0 else 256
        return teacher_forced_nll(
            generator, self.test, self.bos_token_id, temperature=temperature, batch_size=batch_size
        ).nll


class OracleEvaluator:
    """`SeqGANTrainer(evaluator=...)` for the oracle task: NLL_oracle of fresh samples and NLL_test.

    Samples are drawn with a fixed seed so evaluations at different times are comparable, from `distribution`
    (default: the generator's own, temperature 1 without truncation; pass training's to score what it samples).
    NLL_test is scored at the distribution's temperature, never truncated (a cut token would make it infinite)."""

    def __init__(self, task: OracleTask, num_samples: int = 10_000, seed: int = 1234,
                 distribution: SamplingDistribution | None = None):
        self.task = task
        self.num_samples = num_samples
        self.seed = seed
        self.distribution = distribution or SamplingDistribution()

    def __call__(self, generator: torch.nn.Module) -> dict[str, float]:
        distribution = self.distribution
        return {
            "nll_oracle": self.task.nll_oracle(generator, self.num_samples, seed=self.seed,
                                               temperature=distribution.temperature, top_k=distribution.top_k,
                                               top_p=distribution.top_p),
            "nll_test": self.task.nll_test(generator, temperature=distribution.temperature),
        }
