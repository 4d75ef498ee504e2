"""Baselines of the SeqGAN paper, in the same harness as `SeqGANTrainer`.

* [`PGBleuTrainer`]: PG-BLEU, the paper's policy-gradient baseline. Identical to SeqGAN's g-step (Monte Carlo
  rollouts, REINFORCE, same rollout policy and baseline options), except that the reward of a complete
  sequence is its sentence BLEU against the training set instead of the discriminator's P(real). No
  discriminator is trained (`discriminator_pretrain_rounds` and `d_steps` must be 0).
* [`mle_baseline_trainer`]: MLE with a given number of generator updates, e.g. "as many as SeqGAN's
  adversarial g-steps", so that MLE and SeqGAN get the same total number of generator updates.
* [`ScheduledSamplingTrainer`]: scheduled sampling (Bengio et al., 2015), the paper's other baseline: MLE where
  each input token is, with a probability that grows during training, the model's own sample instead of the
  ground truth.
* The random baseline needs no code: an untrained generator (the paper's N(0, 0.1^2) initialisation).

All trainers are `SeqGANTrainer`s: they log, evaluate (`evaluator=`, `eval_strategy="steps"`), save and run
under Accelerate the same way.
"""

from __future__ import annotations

import dataclasses

import datasets
import torch
import torch.nn.functional as F

from .config import SeqGANConfig
from .data import strip_after_eos
from .metrics import DEFAULT_SMOOTHING
from .rewards import BleuReward
from .rollout import is_recurrent, sample_from_logits
from .trainer import SeqGANTrainer


class PGBleuTrainer(SeqGANTrainer):
    """PG-BLEU (Yu et al., 2017, section "Synthetic data experiments"): REINFORCE with BLEU as the reward.

    The reward of a complete sequence is its sentence BLEU-`bleu_max_order` (nltk smoothing method 1 with
    `bleu_smoothing`; see `seqgan_hf.metrics`) against the whole training set as one multi-reference set
    ([`~seqgan_hf.rewards.BleuReward`]); intermediate tokens get the mean BLEU of `rollout_num` Monte Carlo
    completions, exactly as SeqGAN's rewards from D. Sequences are cut after their first EOS (EOS and padding
    are not scored as tokens). No discriminator is built or trained.

    Args:
        model, args, train_dataset, processing_class, evaluator, callbacks: as in [`SeqGANTrainer`].
        bleu_max_order: BLEU n-gram order (the paper does not state it; 4 is the usual BLEU).
        bleu_smoothing: epsilon of nltk's smoothing method 1.

    Raises:
        ValueError: `discriminator_pretrain_rounds` or `d_steps` is not 0 (PG-BLEU trains no discriminator).
    """

    _tag_names = ["seqgan", "pg-bleu", "text-generation"]

    def __init__(self, model, args: SeqGANConfig, train_dataset=None, bleu_max_order: int = 4,
                 bleu_smoothing: float = DEFAULT_SMOOTHING, **kwargs):
        if args.discriminator_pretrain_rounds or (args.adversarial_iterations and args.d_steps):
            raise ValueError(
                "PGBleuTrainer trains no discriminator: set discriminator_pretrain_rounds=0 and d_steps=0 "
                f"(got {args.discriminator_pretrain_rounds} and {args.d_steps})."
            )
        for name in ("discriminator", "reward_funcs"):
            if kwargs.get(name) is not None:
                raise ValueError(f"PGBleuTrainer's reward is BLEU against the training set: it takes no {name}. Use "
                                 f"SeqGANTrainer(reward_funcs=[...]) to combine rewards.")
        self.bleu_max_order = bleu_max_order
        self.bleu_smoothing = bleu_smoothing
        super().__init__(model=model, args=args, train_dataset=train_dataset, **kwargs)

    def _reward_source(self, reward_funcs) -> BleuReward:
        references = strip_after_eos(self.real.input_ids, self.eos_token_id, self.pad_token_id)
        return BleuReward(references, self.bleu_max_order, self.bleu_smoothing, self.eos_token_id, self.pad_token_id)


def mle_continuation_dataset(train: torch.LongTensor | datasets.Dataset, num_updates: int, batch_size: int,
                             seed: int = 0) -> datasets.Dataset:
    """Exactly `num_updates * batch_size` training rows: shuffled passes over `train`, concatenated.

    `train` is [N, T] token ids, or a `datasets.Dataset` (e.g. a `text` column, encoded by the trainer's
    tokenizer). One epoch over the result is `num_updates` MLE batches, i.e. MLE training continued for that many
    updates."""
    if num_updates < 1:
        raise ValueError(f"num_updates must be >= 1, got {num_updates}.")
    if not isinstance(train, datasets.Dataset):
        train = torch.as_tensor(train)
    needed = num_updates * batch_size
    rng = torch.Generator().manual_seed(seed)
    order = torch.cat([torch.randperm(len(train), generator=rng)
                       for _ in range(-(-needed // len(train)))])[:needed]
    if isinstance(train, datasets.Dataset):
        return train.select(order.tolist())
    return datasets.Dataset.from_dict({"input_ids": train[order].tolist()})


def mle_baseline_trainer(model, args: SeqGANConfig, train_ids: torch.LongTensor | datasets.Dataset,
                         num_updates: int, **kwargs) -> SeqGANTrainer:
    """A `SeqGANTrainer` that only runs `num_updates` MLE updates of `model` on `train_ids` ([N, T] ids, or a
    dataset: text needs `processing_class=` the tokenizer).

    Use it to give the MLE baseline as many generator updates as SeqGAN: MLE pretraining, then
    `adversarial_iterations * g_steps` more MLE updates (with `args.mle_learning_rate`, a fresh optimizer
    as SeqGAN's adversarial phase has). `args` is copied with the other phases switched off; training
    units (`global_step`, `eval_steps`) are MLE updates."""
    args = dataclasses.replace(args, mle_epochs=1, discriminator_pretrain_rounds=0, adversarial_iterations=0)
    dataset = mle_continuation_dataset(train_ids, num_updates, args.per_device_train_batch_size, args.seed)
    return SeqGANTrainer(model=model, args=args, train_dataset=dataset, **kwargs)


SCHEDULES = ("linear", "constant")


class ScheduledSamplingTrainer(SeqGANTrainer):
    """Scheduled sampling (Bengio et al., 2015) in the MLE phase: the paper's "SS" baseline.

    During MLE, the input at position t + 1 is the model's own sample at position t (from its softmax at
    temperature 1) with probability `sampling_probability`, the ground truth otherwise; the target is always the
    ground truth. With `schedule="linear"` the probability grows from 0 at the first MLE update to
    `sampling_probability` at the last (Bengio et al.'s decay of the ground-truth probability, linear variant);
    `"constant"` uses it throughout. The other phases (discriminator, adversarial) are SeqGAN's, unchanged.

    * Recurrent generators (`prefix_states` / `step`, e.g. `LSTMForCausalLM`): exact, one step per token, each
      sample drawn from the state that the mixed history produced. One process only.
    * Any other causal LM: the two-pass approximation (Duckworth et al., 2019; Mihaylova and Martins, 2019):
      a teacher-forced pass without gradients predicts every position, sampled tokens replace inputs, and the
      loss is the usual teacher-forced loss on the mixed inputs. Runs under any launcher.

    Sampling draws from the trainer's per-process `sampling_rng`, so runs are reproducible and resumable.

    Args:
        model, discriminator, args, train_dataset, ...: as in [`SeqGANTrainer`] (`discriminator` may be None
            when no discriminator is trained).
        sampling_probability: the probability of feeding the model's own token, at the end of the schedule.
        schedule: `"linear"` (from 0 to `sampling_probability` over the MLE updates) or `"constant"`.

    Raises:
        ValueError: `sampling_probability` outside [0, 1], an unknown `schedule`, or a recurrent generator with
            more than one process.
    """

    _tag_names = ["seqgan", "scheduled-sampling", "text-generation"]

    def __init__(self, model, args: SeqGANConfig, train_dataset=None, discriminator=None,
                 sampling_probability: float = 0.25, schedule: str = "linear", **kwargs):
        if not 0.0 <= sampling_probability <= 1.0:
            raise ValueError(f"sampling_probability={sampling_probability}: use a probability in [0, 1] "
                             "(0 is plain MLE; Bengio et al. end around 0.25).")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule={schedule!r}: choose one of {SCHEDULES}.")
        if is_recurrent(model) and args.world_size > 1:
            raise ValueError(
                "ScheduledSamplingTrainer runs a recurrent generator step by step outside the distributed wrapper, "
                f"which needs a single process (got {args.world_size}): launch it without accelerate, or use a "
                "transformer generator (two-pass scheduled sampling)."
            )
        super().__init__(model=model, discriminator=discriminator, args=args, train_dataset=train_dataset, **kwargs)
        if self.prompts is not None:
            raise ValueError(
                "ScheduledSamplingTrainer mixes samples into [BOS] + sequence inputs; it does not handle "
                "prompt-completion data yet. Train on plain sequences (`text` / `input_ids`), or use SeqGANTrainer."
            )
        self.sampling_probability = sampling_probability
        self.schedule = schedule

    def current_sampling_probability(self) -> float:
        """The probability used by the next MLE update (from `state.global_step` over the MLE updates)."""
        if self.schedule == "constant":
            return self.sampling_probability
        total = max(1, self._mle_steps - 1)
        return self.sampling_probability * min(1.0, self.state.global_step / total)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # Only MLE training updates mix in samples; any other use of compute_loss (evaluation) is teacher-forced.
        training = self._phase == "mle" and model.training
        probability = self.current_sampling_probability() if training else 0.0
        if probability == 0.0:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        unwrapped = self.accelerator.unwrap_model(model)
        if is_recurrent(unwrapped):
            loss = self._sequential_loss(unwrapped, inputs, probability)
            return (loss, None) if return_outputs else loss
        return super().compute_loss(model, self._mixed_inputs(model, inputs, probability), return_outputs,
                                    num_items_in_batch)

    def _uniforms(self, shape, device) -> torch.Tensor:
        return torch.rand(shape, generator=self.sampling_rng, device=self.sampling_rng.device).to(device)

    def _coins(self, shape, probability: float, device) -> torch.Tensor:
        """True where the model's own token replaces the ground truth."""
        return self._uniforms(shape, device) < probability

    def _sequential_loss(self, model, inputs, probability: float) -> torch.Tensor:
        """Exact scheduled sampling, one recurrent step per position."""
        input_ids, labels = inputs["input_ids"], inputs["labels"]
        rows, length = input_ids.shape
        coins = self._coins((rows, length), probability, input_ids.device)
        uniforms = self._uniforms((rows, length), input_ids.device)
        current, state = input_ids[:, 0], None
        losses, counted = [], 0
        for position in range(length - 1):
            logits, state = model.step(current, state)
            target = labels[:, position + 1]
            losses.append(F.cross_entropy(logits.float(), target, ignore_index=-100, reduction="sum"))
            counted += int((target != -100).sum())
            truth = input_ids[:, position + 1]
            sampled = sample_from_logits(logits.detach(), uniforms[:, position + 1])
            # Padding stays padding: only real tokens are ever replaced.
            current = torch.where(coins[:, position + 1] & (target != -100), sampled, truth)
        return torch.stack(losses).sum() / max(counted, 1)

    @torch.no_grad()
    def _mixed_inputs(self, model, inputs, probability: float) -> dict:
        """Two-pass scheduled sampling: inputs with some tokens replaced by the model's teacher-forced samples."""
        input_ids, labels = inputs["input_ids"], inputs["labels"]
        logits = model(input_ids=input_ids, attention_mask=inputs.get("attention_mask")).logits[:, :-1]
        rows, positions, vocab = logits.shape
        uniforms = self._uniforms((rows * positions,), input_ids.device)
        sampled = sample_from_logits(logits.reshape(-1, vocab), uniforms).view(rows, positions)
        replace = self._coins((rows, positions), probability, input_ids.device) & (labels[:, 1:] != -100)
        mixed = input_ids.clone()
        mixed[:, 1:] = torch.where(replace, sampled, input_ids[:, 1:])
        return {**inputs, "input_ids": mixed}


def scheduled_sampling_trainer(model, args: SeqGANConfig, train_ids: torch.LongTensor, num_updates: int,
                               sampling_probability: float = 0.25, schedule: str = "linear",
                               **kwargs) -> ScheduledSamplingTrainer:
    """A [`ScheduledSamplingTrainer`] that only runs `num_updates` MLE updates of `model` on `train_ids`.

    The scheduled-sampling counterpart of [`mle_baseline_trainer`]: continue an MLE-pretrained generator for as
    many updates as SeqGAN's g-steps, with the sampling probability rising over those updates."""
    args = dataclasses.replace(args, mle_epochs=1, discriminator_pretrain_rounds=0, adversarial_iterations=0)
    dataset = mle_continuation_dataset(train_ids, num_updates, args.per_device_train_batch_size, args.seed)
    return ScheduledSamplingTrainer(model, args, train_dataset=dataset, sampling_probability=sampling_probability,
                                    schedule=schedule, **kwargs)
