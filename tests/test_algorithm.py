"""SeqGAN's Algorithm 1 (`seqgan_hf.algorithm`) on its own: no Trainer, no accelerate, a plain-torch runtime."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections import Counter

import pytest
import torch

from seqgan_hf.algorithm import RewardBaseline, SeqGAN
from seqgan_hf.checkpoint import NonFiniteError
from seqgan_hf.config import SeqGANConfig
from seqgan_hf.data import RealSequences
from seqgan_hf.discriminator import DiscriminatorAdapter
from seqgan_hf.rewards import TensorReward
from seqgan_hf.rollout import RolloutEngine
from tests.builders import tiny_cnn, tiny_lstm

VOCAB, LENGTH = 6, 5


class PlainRuntime:
    """The smallest `Runtime`: one process, plain torch optimizers, no wrapping."""

    def __init__(self, models: dict, learning_rate: float = 0.05):
        self.device = torch.device("cpu")
        self.models = models
        self.optimizers = {
            "generator": torch.optim.Adam(models["generator"].parameters(), lr=learning_rate),
            "discriminator": torch.optim.Adam(models["discriminator"].parameters(), lr=learning_rate),
        }
        self.steps: Counter[str] = Counter()

    def autocast(self):
        return contextlib.nullcontext()

    def training_model(self, name):
        return self.models[name]

    def model(self, name):
        return self.models[name]

    def full_model(self, name):
        return self.models[name]

    def step(self, optimizer_name, loss, what):
        total = torch.zeros(())
        for compute in [lambda: loss] if isinstance(loss, torch.Tensor) else loss:  # micro-batches add up
            micro_loss = compute()
            self.check_finite(what, micro_loss)
            micro_loss.backward()
            total += micro_loss.detach()
        self.optimizers[optimizer_name].step()
        self.optimizers[optimizer_name].zero_grad()
        self.steps[optimizer_name] += 1
        return total

    def mean_over_processes(self, tensor):
        return tensor

    def check_finite(self, what, *tensors):
        if not all(bool(torch.isfinite(t).all()) for t in tensors):
            raise NonFiniteError(what)


def _seqgan(tmp_path, reward=None, real=None, **overrides) -> tuple[SeqGAN, PlainRuntime, dict]:
    generator = tiny_lstm(VOCAB, hidden_dim=16)
    discriminator = tiny_cnn(VOCAB, filter_sizes=[1, 2], num_filters=[4, 4], dropout=0.0)
    runtime = PlainRuntime({"generator": generator, "discriminator": discriminator})
    values = dict(output_dir=str(tmp_path), sequence_length=LENGTH, per_device_train_batch_size=16, rollout_num=4,
                  discriminator_batch_size=8, g_steps=1, d_steps=1, d_epochs=1)
    values.update(overrides)
    args = SeqGANConfig(**values)
    adapter = DiscriminatorAdapter(num_labels=2, eos_token_id=None, pad_token_id=None)
    if real is None:
        real = torch.ones(32, LENGTH, dtype=torch.long)  # every real sequence is 1 1 1 1 1
    records: dict[str, list[float]] = {}
    algorithm = SeqGAN(
        args, runtime, RolloutEngine(0, LENGTH, args.rollout_num), reward, adapter,
        RealSequences(real, torch.full((len(real),), LENGTH)), 16, None, None,
        torch.Generator().manual_seed(1), torch.Generator().manual_seed(2),
        lambda name, value, reduction="mean": records.setdefault(name, []).append(float(torch.as_tensor(value).detach())),
    )
    return algorithm, runtime, records


def _count_token(sequences: torch.LongTensor, token: int) -> torch.Tensor:
    return (sequences == token).float().mean(dim=1)


def test_batch_mean_baseline_subtracts_each_positions_mean_over_kept_tokens():
    baseline = RewardBaseline("batch_mean", 0.9, PlainRuntime.__new__(PlainRuntime))
    rewards = torch.tensor([[0.2, 0.4, 0.9], [0.6, 0.8, 0.1]])
    keep = torch.tensor([[True, True, True], [True, True, False]])
    # Position means over kept tokens: (0.2+0.6)/2 = 0.4, (0.4+0.8)/2 = 0.6, 0.9 (the second row's is dropped).
    expected = rewards - torch.tensor([0.4, 0.6, 0.9])
    assert torch.allclose(baseline(rewards, keep), expected)
    assert baseline.value is None  # batch_mean keeps no state


def test_moving_average_baseline_subtracts_the_previous_average_then_updates_it():
    baseline = RewardBaseline("moving_average", 0.75, PlainRuntime.__new__(PlainRuntime))
    keep = torch.ones(2, 2, dtype=torch.bool)
    first = torch.tensor([[0.0, 1.0], [1.0, 1.0]])  # position means [0.5, 1.0]
    second = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # position means [1.0, 0.0]
    third = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    # The first batch starts the average with its own mean.
    assert torch.allclose(baseline(first, keep), first - torch.tensor([0.5, 1.0]))
    # The second batch sees the first's average, which then moves: 0.75 * [0.5, 1] + 0.25 * [1, 0].
    assert torch.allclose(baseline(second, keep), second - torch.tensor([0.5, 1.0]))
    assert torch.allclose(baseline.value, torch.tensor([0.625, 0.75]))
    assert torch.allclose(baseline(third, keep), third - torch.tensor([0.625, 0.75]))


def test_no_baseline_returns_rewards_unchanged():
    rewards = torch.rand(3, 4)
    assert RewardBaseline("none", 0.9, None)(rewards, torch.ones(3, 4, dtype=torch.bool)) is rewards


def test_generator_steps_raise_the_reward_of_the_reward_source(tmp_path, one_thread):
    """REINFORCE on a reward of "how many 1 tokens" makes 1 tokens more frequent."""
    algorithm, runtime, records = _seqgan(tmp_path, reward=TensorReward(lambda rows: _count_token(rows, 1)),
                                          learning_rate=0.05)
    engine, generator = algorithm.engine, runtime.models["generator"]
    before = _count_token(engine.sample(generator, 512, rng=torch.Generator().manual_seed(9)), 1).mean()
    for _ in range(30):
        algorithm.generator_step()
    after = _count_token(engine.sample(generator, 512, rng=torch.Generator().manual_seed(9)), 1).mean()
    assert before < 0.3 and after > before + 0.25
    assert runtime.steps == {"generator": 30}
    assert records["adversarial/reward_mean"][-1] > records["adversarial/reward_mean"][0]
    assert records["adversarial/global_batch_size"] == [16.0] * 30


def test_a_discriminator_round_learns_real_from_generated(tmp_path, one_thread):
    algorithm, runtime, records = _seqgan(tmp_path)
    adapter, discriminator = algorithm.adapter, runtime.models["discriminator"]
    real = torch.ones(16, LENGTH, dtype=torch.long)
    fake = algorithm.engine.sample(runtime.models["generator"], 16, rng=torch.Generator().manual_seed(5))
    gap_before = adapter.real_probabilities(discriminator, real).mean() - adapter.real_probabilities(discriminator,
                                                                                                    fake).mean()
    for _ in range(5):
        algorithm.discriminator_round(epochs=2)
    gap_after = adapter.real_probabilities(discriminator, real).mean() - adapter.real_probabilities(discriminator,
                                                                                                   fake).mean()
    assert gap_after > gap_before + 0.3
    # 16 negatives + 16 positives in batches of 8, 2 epochs, 5 rounds.
    assert runtime.steps == {"discriminator": 5 * 2 * 4}
    assert records["discriminator/accuracy_real"][-1] == 1.0


def test_an_adversarial_iteration_is_g_steps_then_d_steps(tmp_path, one_thread):
    algorithm, runtime, _ = _seqgan(tmp_path, reward=TensorReward(lambda rows: _count_token(rows, 1)),
                                    g_steps=2, d_steps=3, d_epochs=1)
    algorithm.adversarial_iteration()
    assert runtime.steps == {"generator": 2, "discriminator": 3 * 4}


def test_delayed_rollout_policy_moves_towards_the_generator_at_the_update_rate(tmp_path, one_thread):
    algorithm, runtime, _ = _seqgan(tmp_path, reward=TensorReward(lambda rows: _count_token(rows, 1)),
                                    rollout_policy="delayed", rollout_update_rate=0.8)
    generator = runtime.models["generator"]
    algorithm.start_rollout_policy(generator)
    start = [p.detach().clone() for p in algorithm.rollout_model.parameters()]
    algorithm.generator_step()
    for old, new, current in zip(start, algorithm.rollout_model.parameters(), generator.parameters()):
        assert torch.allclose(new, 0.8 * old + 0.2 * current.detach())
    assert any(not torch.equal(old, new) for old, new in zip(start, algorithm.rollout_model.parameters()))


def test_a_non_finite_reward_stops_before_any_update(tmp_path, one_thread):
    algorithm, runtime, _ = _seqgan(tmp_path, reward=TensorReward(lambda rows: torch.full((len(rows),), float("nan"))))
    before = [p.detach().clone() for p in runtime.models["generator"].parameters()]
    with pytest.raises(NonFiniteError, match="reward"):
        algorithm.generator_step()
    assert all(torch.equal(a, b) for a, b in zip(before, runtime.models["generator"].parameters()))


def test_the_algorithm_imports_neither_the_trainer_nor_accelerate():
    """Its own imports are torch and the package's torch-level modules; nothing pulls in the Trainer."""
    import ast

    import seqgan_hf.algorithm as algorithm

    tree = ast.parse(open(algorithm.__file__).read())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.split(".")[0] in ("accelerate", "transformers")}
    code = "import sys, seqgan_hf.algorithm; print(sorted(m for m in sys.modules if m.startswith('transformers.trainer')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _kl_from_start(start: torch.nn.Module, model: torch.nn.Module, engine: RolloutEngine) -> float:
    """KL(model || start) per token, on the model's own samples (exact over the vocabulary at each position)."""
    samples = engine.sample(model, 256, rng=torch.Generator().manual_seed(11))
    inputs = torch.cat([torch.zeros(len(samples), 1, dtype=torch.long), samples[:, :-1]], dim=1)
    with torch.no_grad():
        log_p = torch.log_softmax(model(input_ids=inputs).logits, -1)
        log_q = torch.log_softmax(start(input_ids=inputs).logits, -1)
    return float((log_p.exp() * (log_p - log_q)).sum(-1).mean())


def test_a_kl_penalty_keeps_the_policy_near_its_start(tmp_path, one_thread):
    import copy

    distances, logged = {}, {}
    for beta in (0.0, 2.0):
        algorithm, runtime, records = _seqgan(tmp_path / str(beta), beta=beta,
                                              reward=TensorReward(lambda rows: _count_token(rows, 1)))
        generator = runtime.models["generator"]
        start = copy.deepcopy(generator)
        algorithm.start_reference_policy(generator)
        assert (algorithm.reference_model is None) == (beta == 0)
        for _ in range(30):
            algorithm.generator_step()
        distances[beta] = _kl_from_start(start, generator, algorithm.engine)
        logged[beta] = records.get("adversarial/kl")
    assert logged[0.0] is None and len(logged[2.0]) == 30 and logged[2.0][0] == pytest.approx(0.0, abs=1e-6)
    assert distances[2.0] < 0.5 * distances[0.0]


def test_beta_zero_leaves_the_loss_as_it_was(tmp_path, one_thread):
    """With beta = 0 no reference exists and the loss is the plain policy-gradient loss."""
    algorithm, runtime, _ = _seqgan(tmp_path)
    sequences = algorithm.engine.sample(runtime.models["generator"], 4, rng=torch.Generator().manual_seed(2))
    advantages, mask = torch.rand(4, LENGTH), torch.ones(4, LENGTH, dtype=torch.bool)
    generator = runtime.models["generator"]
    log_probs = torch.log_softmax(generator(input_ids=torch.cat(
        [torch.zeros(4, 1, dtype=torch.long), sequences[:, :-1]], 1)).logits.float(), -1)
    expected = -(log_probs.gather(-1, sequences[..., None])[..., 0] * advantages).mean()
    assert torch.allclose(algorithm.policy_gradient_loss(generator, sequences, advantages, mask), expected)
    algorithm.start_reference_policy(generator)
    assert algorithm.reference_model is None


@pytest.mark.parametrize("average_tokens", [True, False])
def test_the_g_step_normaliser_is_the_mean_token_count_over_processes(tmp_path, average_tokens):
    """With average_tokens_across_devices, each process divides its token-loss sum by the mean token count of all
    processes (here a stand-in for a second process with 3x the tokens: mean 2x), so that averaged gradients
    give the per-token mean over all tokens; without it, by its own count."""
    def g_loss(algorithm, runtime):
        runtime.mean_over_processes = lambda tensor: tensor * 2.0 if tensor.dim() == 0 else tensor
        algorithm.generator_step()
        return records["adversarial/g_loss"][-1]

    reward = TensorReward(lambda rows: _count_token(rows, 1))
    algorithm, runtime, records = _seqgan(tmp_path, reward=reward, average_tokens_across_devices=average_tokens)
    shared = g_loss(algorithm, runtime)
    algorithm, runtime, records = _seqgan(tmp_path, reward=reward, average_tokens_across_devices=False)
    runtime_local = g_loss(algorithm, runtime)
    assert shared == pytest.approx(runtime_local / 2 if average_tokens else runtime_local, rel=1e-6)
