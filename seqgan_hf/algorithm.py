"""SeqGAN's Algorithm 1 (Yu et al., AAAI 2017), in torch alone.

One adversarial iteration, as the paper writes it:

    for g-steps:
        Y_1:T ~ G_theta                                     sample a batch                 `generator_step`
        Q(Y_1:t-1, y_t) by Monte Carlo search with G_beta   rewards from the reward source `RolloutEngine`
        (optional) Q - b                                    subtract a baseline            `RewardBaseline`
        theta <- theta + lr * grad sum_t log G(y_t|Y) * Q   the policy-gradient loss       `policy_gradient_loss`
        (optional) + beta * KL(G || G_ref)                  not in the paper: an anchor    `kl_to_reference`
        theta_beta <- rate * theta_beta + (1 - rate) theta  the delayed rollout policy     `update_rollout_policy`
    for d-steps:
        fresh negatives from G, as many positives; train D  one discriminator round        `discriminator_round`

Prompt-conditioned (`prompts`): each g-step draws dataset prompts x and samples Y ~ G(.|x); rollouts continue x + Y_1:t,
D scores (x, Y) pairs, and the loss covers completion tokens only. Each d-step's negatives complete the prompts of
its positives, so D sees both classes in the same contexts.

Nothing here knows how the models are distributed or saved: every update, every full-parameter view of a model
and every mixed-precision context comes from a `Runtime` (implemented in `seqgan_hf.runtime` for one process,
DDP, FSDP2 and DeepSpeed). MLE pretraining is the Trainer's teacher forcing and lives in the trainer.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

from . import policies
from .data import RealSequences, mask_after_eos
from .discriminator import DiscriminatorAdapter, regularization_loss
from .prompts import Prompts
from .rewards import RewardSource
from .rollout import RolloutEngine
from .sampling import SamplingDistribution

if TYPE_CHECKING:
    from .config import SeqGANConfig

#: `record(name, value, reduction)`: accumulate a metric until the next log ("mean" or "sum" over processes).
Record = Callable[..., None]


class Runtime(Protocol):
    """What the algorithm needs from the runtime that holds the models (see `seqgan_hf.runtime`)."""

    device: torch.device

    def autocast(self) -> contextlib.AbstractContextManager: ...

    def training_model(self, name: str) -> nn.Module:
        """The model to run forward + backward on ("generator" / "discriminator"): wrapped for gradient sync."""

    def model(self, name: str) -> nn.Module:
        """The trained model itself, unwrapped (under FSDP2 its parameters are shards)."""

    def full_model(self, name: str) -> nn.Module:
        """The model with full, current parameters, for sampling, rollouts and scoring."""

    def step(self, optimizer_name: str, loss: torch.Tensor, what: str) -> None:
        """Backward, clip, optimizer and scheduler step ("mle", "generator" or "discriminator")."""

    def mean_over_processes(self, tensor: torch.Tensor) -> torch.Tensor: ...

    def check_finite(self, what: str, *tensors: torch.Tensor) -> None:
        """Raise `NonFiniteError` (on every process together) if any process holds a NaN/inf."""


class RewardBaseline:
    """b_t subtracted from the rewards at position t (SeqGAN has none; `SeqGANConfig.reward_baseline`).

    * "none": rewards as they are;
    * "batch_mean": minus the batch's mean reward at each position (over kept tokens, over all processes);
    * "moving_average": minus the previous baseline, which then moves towards this batch's per-position mean
      with `decay` (the first batch's mean starts it).
    """

    def __init__(self, mode: str, decay: float, runtime: Runtime):
        self.mode = mode
        self.decay = decay
        self.runtime = runtime
        self.value: torch.Tensor | None = None  # the moving average [T]; part of a checkpoint

    def __call__(self, rewards: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return rewards
        keep_f = keep.float()
        position_mean = (rewards * keep_f).sum(0) / keep_f.sum(0).clamp(min=1.0)
        position_mean = self.runtime.mean_over_processes(position_mean)
        if self.mode == "batch_mean":
            return rewards - position_mean
        if self.value is None:
            self.value = position_mean.clone()
        baseline = self.value
        self.value = self.decay * baseline + (1 - self.decay) * position_mean
        return rewards - baseline


class SeqGAN:
    """The g-step and the d-step of SeqGAN on models held by a `Runtime`.

    Args:
        args: the run's [`SeqGANConfig`] (read, never changed).
        runtime: holds the generator and discriminator, their optimizers and the distributed layout.
        engine: samples sequences and computes Monte Carlo rewards.
        reward: the reward source of complete sequences (the discriminator's P(real), or any mix).
        adapter: turns generator ids into discriminator inputs (None when no discriminator is trained).
        real: the real sequences (positives of every discriminator round; with prompts, the real completions).
        num_negatives: generated sequences (and as many real ones) per discriminator round on this process.
        eos_token_id, pad_token_id: the generator's; tokens after the first EOS get no reward and no loss.
        sampling_rng: the process's stream for sequences and rollouts; data_rng: for D's positives and order, and
            the prompts of every g-step and discriminator round.
        record: where metrics go.
        prompts: prompt-conditioned SeqGAN: row i's prompt (token ids, no start token) belongs to `real` row i.
            G completes dataset prompts, and D judges (prompt, completion) pairs: real = the prompt's dataset
            completion, fake = G's completion of the same prompt. None: sequences start from the start token.
    """

    def __init__(self, args: SeqGANConfig, runtime: Runtime, engine: RolloutEngine, reward: RewardSource | None,
                 adapter: DiscriminatorAdapter | None, real: RealSequences, num_negatives: int,
                 eos_token_id: int | None, pad_token_id: int | None, sampling_rng: torch.Generator,
                 data_rng: torch.Generator, record: Record, prompts: list[list[int]] | None = None):
        self.args = args
        self.runtime = runtime
        self.engine = engine
        self.reward = reward
        self.adapter = adapter
        self.real = real
        self.num_negatives = num_negatives
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.sampling_rng = sampling_rng
        self.data_rng = data_rng
        self.record = record
        self.prompts = prompts
        if prompts is not None and len(prompts) != len(real):
            raise ValueError(f"{len(prompts)} prompts for {len(real)} real completions: give one prompt per row.")
        self.baseline = RewardBaseline(args.reward_baseline, args.baseline_decay, runtime)
        # The paper's delayed rollout policy G_beta (None: G itself completes the rollouts); part of a checkpoint.
        self.rollout_model: nn.Module | policies.AdapterWeights | None = None
        # The reference policy of the KL penalty (None unless beta > 0); part of a checkpoint.
        self.reference_model: nn.Module | policies.AdapterDisabled | None = None
        self.distribution = engine.distribution  # the sampling distribution (log-probabilities are taken under it)
        # Called as on_rewards(sequences, rewards, keep, prompts) at every g-step when set (log_completions).
        self.on_rewards: Callable[..., None] | None = None

    def start_rollout_policy(self, generator: nn.Module) -> None:
        """With `rollout_policy="delayed"`, G_beta starts as a frozen copy of the generator (of its adapter alone
        for a peft generator)."""
        if self.args.rollout_policy == "delayed" and self.rollout_model is None:
            self.rollout_model = policies.frozen_copy(generator, self.runtime.device)

    def adversarial_iteration(self) -> None:
        """`g_steps` policy-gradient updates of G, then `d_steps` discriminator rounds on fresh negatives."""
        for _ in range(self.args.g_steps):
            self.generator_step()
        for _ in range(self.args.d_steps):
            self.discriminator_round(self.args.d_epochs)

    # ---- the g-step ------------------------------------------------------------------------------------

    def generator_step(self) -> None:
        """One REINFORCE update: sample, reward every token by Monte Carlo search, ascend log-prob * reward.

        With `gradient_accumulation_steps` = k, the update covers k * `per_device_train_batch_size` sequences,
        sampled and rewarded together; the loss is computed and backpropagated in k micro-batches, each
        normalised by the whole batch's token count, so their gradients add up to the one-batch gradient.
        """
        args, runtime = self.args, self.runtime
        micro_batch = args.per_device_train_batch_size
        generator = runtime.full_model("generator")  # full parameters for sampling and the LSTM's step
        generator.eval()
        batch_size = micro_batch * args.gradient_accumulation_steps
        prompts = self.draw_prompts(self.draw_rows(batch_size)) if self.prompts is not None else None
        with runtime.autocast():
            sequences = self.engine.sample(generator, batch_size, rng=self.sampling_rng, prompts=prompts)
            rollout_policy = self.rollout_model if self.rollout_model is not None else generator
            with policies.acting_as(rollout_policy, generator) as policy:
                rewards = self.engine(policy, sequences, self.reward, rng=self.sampling_rng, prompts=prompts)
        model = runtime.training_model("generator")
        model.train()
        runtime.check_finite("reward", rewards)
        _, keep = mask_after_eos(sequences, self.eos_token_id, self.pad_token_id)
        if self.on_rewards is not None:
            self.on_rewards(sequences, rewards, keep, prompts)
        advantages = self.baseline(rewards, keep)
        # The normaliser of every micro-batch's loss: this process's kept tokens, or with
        # average_tokens_across_devices the mean over processes, so that once data parallelism averages the
        # gradients the update is the per-token mean over every process's tokens.
        tokens = keep.sum().to(torch.float32)
        if args.average_tokens_across_devices:
            tokens = runtime.mean_over_processes(tokens)
        tokens = tokens.clamp(min=1.0)
        kl_parts: list[torch.Tensor] = []

        def micro_batch_loss(rows: slice) -> torch.Tensor:
            row_prompts = prompts.select(rows) if prompts is not None else None
            logits = self.policy_logits(model, sequences[rows], row_prompts)
            log_probs = self.distribution.token_log_probs(logits, sequences[rows])
            loss = self.policy_gradient_loss(model, sequences[rows], advantages[rows], keep[rows], log_probs,
                                             normalizer=tokens)
            if self.reference_model is not None:  # beta > 0: stay near the policy adversarial training started from
                kl = self.kl_to_reference(sequences[rows], logits, log_probs, keep[rows], normalizer=tokens,
                                          prompts=row_prompts)
                kl_parts.append(kl.detach())
                loss = loss + self.args.beta * kl
            return loss

        micro_batches = [functools.partial(micro_batch_loss, slice(start, start + micro_batch))
                         for start in range(0, sequences.shape[0], micro_batch)]
        loss = runtime.step("generator", micro_batches, "policy-gradient loss")
        if kl_parts:
            self.record("adversarial/kl", torch.stack(kl_parts).sum())
        if self.rollout_model is not None:
            self.update_rollout_policy()

        keep_f = keep.float()
        self.record("adversarial/g_loss", loss)
        self.record("adversarial/reward_mean", (rewards * keep_f).sum() / keep_f.sum())
        self.record("adversarial/reward_final", rewards[:, -1].mean())
        # Sequences in this g-step over all processes: per_device_train_batch_size * k * world_size.
        self.record("adversarial/global_batch_size", sequences.shape[0], reduction="sum")

    def draw_rows(self, count: int) -> torch.LongTensor:
        """`count` random rows of the real data (without repeats while there are enough), from `data_rng`: each
        process draws its own, as with a sharded loader."""
        if count <= len(self.real):
            return torch.randperm(len(self.real), generator=self.data_rng)[:count]
        return torch.randint(len(self.real), (count,), generator=self.data_rng)

    def draw_prompts(self, rows: torch.LongTensor) -> Prompts:
        """The prompts of real rows `rows`, left-padded for the generator."""
        return Prompts.from_token_lists([self.prompts[row] for row in rows.tolist()], self.engine.bos_token_id,
                                        self.pad_token_id, self.runtime.device)

    def policy_logits(self, model: nn.Module, sequences: torch.LongTensor,
                      prompts: Prompts | None = None) -> torch.Tensor:
        """The generator's raw next-token logits [B, T, V] at every sampled position (teacher forcing), each row
        after its prompt when given (left pads masked, positions counted from each row's start token)."""
        if prompts is None:
            inputs = torch.cat([sequences.new_full((sequences.shape[0], 1), self.engine.bos_token_id),
                                sequences[:, :-1]], dim=1)
            with self.runtime.autocast():
                return model(input_ids=inputs).logits
        input_ids, attention_mask, position_ids = prompts.context(sequences[:, :-1])
        with self.runtime.autocast():
            logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
        return logits[:, prompts.width - 1 :]

    def token_log_probs(self, model: nn.Module, sequences: torch.LongTensor,
                        prompts: Prompts | None = None) -> torch.Tensor:
        """log G(y_t | y_<t) [B, T] of the sampled tokens under the sampling distribution (temperature, top-k,
        top-p: `seqgan_hf.sampling`), the distribution they were drawn from."""
        return self.distribution.token_log_probs(self.policy_logits(model, sequences, prompts), sequences)

    def policy_gradient_loss(
        self, model: nn.Module, sequences: torch.LongTensor, advantages: torch.Tensor, mask: torch.Tensor,
        log_probs: torch.Tensor | None = None, normalizer: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """-sum over kept tokens of log G(y_t | y_<t) * advantage_t, divided by `normalizer` (default: the kept
        tokens here, i.e. the mean); log-probabilities under the sampling distribution."""
        if log_probs is None:
            log_probs = self.token_log_probs(model, sequences)
        mask = mask.to(log_probs.dtype)
        normalizer = mask.sum().clamp(min=1.0) if normalizer is None else normalizer
        return -(log_probs * advantages.detach() * mask).sum() / normalizer

    def kl_to_reference(self, sequences: torch.LongTensor, logits: torch.Tensor, log_probs: torch.Tensor,
                        mask: torch.Tensor, normalizer: torch.Tensor | None = None,
                        prompts: Prompts | None = None) -> torch.Tensor:
        """Sum over kept tokens of KL(G || G_ref) per token / `normalizer` (default: the mean), estimated on the
        sampled tokens with the non-negative, unbiased k3 estimator exp(r) - r - 1, r = log G_ref(y_t) - log G(y_t).

        Both distributions are temperature-scaled but never top-k / top-p truncated: truncation could give a
        token zero probability under one policy and not the other (an infinite KL)."""
        full = SamplingDistribution(self.args.temperature)
        if self.distribution.truncated:
            log_probs = full.token_log_probs(logits, sequences)
        with torch.no_grad(), policies.acting_as(self.reference_model, self.runtime.model("generator")) as reference:
            reference_log_probs = full.token_log_probs(self.policy_logits(reference, sequences, prompts), sequences)
        ratio = reference_log_probs - log_probs
        mask = mask.to(log_probs.dtype)
        normalizer = mask.sum().clamp(min=1.0) if normalizer is None else normalizer
        return ((torch.exp(ratio) - ratio - 1) * mask).sum() / normalizer

    def start_reference_policy(self, generator: nn.Module) -> None:
        """With `beta > 0`, the reference policy: a frozen copy of the generator as adversarial training starts, or
        for a peft generator the base model itself (the adapter disabled; no copy)."""
        if self.args.beta > 0 and self.reference_model is None:
            self.reference_model = policies.reference_policy(generator, self.runtime.device)

    def update_rollout_policy(self) -> None:
        """theta_beta <- rate * theta_beta + (1 - rate) * theta_G (the paper's delayed rollout policy)."""
        policies.move_towards(self.rollout_model, self.runtime.full_model("generator"), self.args.rollout_update_rate)

    # ---- the d-step ------------------------------------------------------------------------------------

    def discriminator_round(self, epochs: int) -> None:
        """Fresh negatives from G plus as many real sequences, `epochs` passes of discriminator updates.

        With prompts, the negatives are G's completions of the positives' own prompts: D must judge a completion
        in its context, since both classes share every prompt."""
        args, runtime = self.args, self.runtime
        device = runtime.device
        count = self.num_negatives
        # Each process takes its own random positives: ranks see different data, as with a sharded loader.
        rng = self.data_rng
        chosen = self.draw_rows(count)
        prompts = self.draw_prompts(chosen) if self.prompts is not None else None
        generator = runtime.full_model("generator")
        generator.eval()
        with torch.no_grad(), runtime.autocast():
            negatives = torch.cat([
                self.engine.sample(generator, min(args.rollout_batch_size, count - start), rng=self.sampling_rng,
                                   prompts=None if prompts is None else prompts.select(
                                       slice(start, start + args.rollout_batch_size)))
                for start in range(0, count, args.rollout_batch_size)
            ])
        runtime.training_model("generator").train()
        positives = self.real.input_ids[chosen].to(device)
        sequences = torch.cat([positives, negatives.to(device)])
        labels = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives))]).to(device)
        pair_prompts = None
        if prompts is not None:
            pair_prompts = Prompts(torch.cat([prompts.input_ids] * 2), torch.cat([prompts.attention_mask] * 2))

        discriminator = runtime.training_model("discriminator")
        discriminator.train()
        # One update per discriminator_batch_size * k sequences (k = gradient_accumulation_steps).
        update_size = args.discriminator_batch_size * args.gradient_accumulation_steps
        for _ in range(epochs):
            order = torch.randperm(len(sequences), generator=rng).to(device)
            for batch_index in order.split(update_size):
                self._discriminator_update(discriminator, sequences[batch_index], labels[batch_index],
                                           None if pair_prompts is None else pair_prompts.select(batch_index))

    def _discriminator_update(self, discriminator: nn.Module, sequences: torch.LongTensor,
                              labels: torch.Tensor, prompts: Prompts | None = None) -> None:
        """One update of D on `sequences`, in micro-batches of `discriminator_batch_size` whose losses are weighted
        by their share of the batch (so they add up to the whole batch's mean loss)."""
        micro_batch = self.args.discriminator_batch_size
        predictions: list[torch.Tensor] = []

        def micro_batch_loss(rows: slice) -> torch.Tensor:
            inputs = self.adapter.encode(sequences[rows], self.runtime.device,
                                         None if prompts is None else prompts.select(rows))
            with self.runtime.autocast():
                logits = discriminator(**inputs).logits
                # The CNN's L2 on its output layer, from the trained (unwrapped) module: outside forward().
                loss = self.adapter.loss(logits, labels[rows]) + regularization_loss(self.runtime.model("discriminator"))
            predictions.append(self.adapter.predictions(logits.detach()))
            return loss * (len(labels[rows]) / len(labels))

        micro_batches = [functools.partial(micro_batch_loss, slice(start, start + micro_batch))
                         for start in range(0, len(sequences), micro_batch)]
        loss = self.runtime.step("discriminator", micro_batches, "discriminator loss")
        predictions = torch.cat(predictions)
        real = labels == 1
        self.record("discriminator/loss", loss)
        if real.any():
            self.record("discriminator/accuracy_real", (predictions[real] == 1).float().mean())
        if (~real).any():
            self.record("discriminator/accuracy_fake", (predictions[~real] == 0).float().mean())
