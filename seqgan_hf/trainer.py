"""`SeqGANTrainer`: Algorithm 1 of SeqGAN (Yu et al., 2017) on top of `transformers.Trainer`.

Phases (each skippable, see `SeqGANConfig`):

1. MLE pretraining of the generator G (teacher forcing, the Trainer's own `compute_loss`);
2. discriminator pretraining: D learns real vs. freshly sampled sequences;
3. adversarial training: per iteration, `g_steps` REINFORCE updates of G with Monte Carlo rewards from D,
   then `d_steps` updates of D on fresh negatives.

Everything runs on the Trainer's accelerator: G and D and their optimizers are prepared by it, so the same
code runs on CPU, one GPU, or several processes under `accelerate launch`.

Progress is counted in *training units*: one MLE batch, one discriminator pretraining round, or one
adversarial iteration each advance `state.global_step` by one; logging, evaluation and checkpoint intervals
(`logging_steps`, `eval_steps`, `save_steps`) are in these units.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections import defaultdict

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    GenerationMixin,
    PreTrainedModel,
    Trainer,
    TrainerState,
    get_scheduler,
)
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import TrainOutput, speed_metrics

from .config import SeqGANConfig
from .data import MLECollator, RealSequences, encode_dataset, mask_after_eos
from .discriminator import DiscriminatorAdapter, regularization_loss
from .rollout import RolloutEngine

logger = logging.getLogger(__name__)

PHASES = {"mle": 1, "discriminator_pretrain": 2, "adversarial": 3}


def _load(model_or_path, auto_class, what: str):
    if isinstance(model_or_path, str | os.PathLike):
        return auto_class.from_pretrained(model_or_path)
    if not isinstance(model_or_path, nn.Module):
        raise TypeError(f"{what} must be a PreTrainedModel or a path / Hub id, got {type(model_or_path).__name__}.")
    return model_or_path


class SeqGANTrainer(Trainer):
    """Adversarial training of a causal LM (the policy) against a sequence classifier (the critic).

    Args:
        model: the generator: any causal LM (`AutoModelForCausalLM`) or a path / Hub id to one.
        discriminator: any sequence classifier with `num_labels` 1 or 2, or a path / Hub id to one.
        args: a [`SeqGANConfig`].
        train_dataset: real sequences: a `datasets.Dataset` with an `input_ids` column (token ids, without the
            start token) or a `text` column (tokenized with `processing_class`).
        processing_class: the generator's tokenizer (needed for text data and for saving it with the model).
        discriminator_processing_class: the discriminator's tokenizer when it differs from the generator's;
            sequences are then decoded and re-tokenized before D sees them.
        evaluator: optional callable `evaluator(generator) -> dict[str, float]` computing metrics from fresh
            samples (e.g. [`~seqgan_hf.oracle.OracleEvaluator`]: NLL_oracle and NLL_test). `evaluate()` reports
            its metrics (prefixed `eval_`), after the Trainer's own evaluation loop when `eval_dataset` is set;
            it also runs at the end of MLE pretraining and of training.
        callbacks, optimizers: as in `transformers.Trainer` (`optimizers` applies to the adversarial phase).
    """

    _tag_names = ["seqgan", "text-generation", "gan"]

    def __init__(
        self,
        model: PreTrainedModel | str,
        discriminator: PreTrainedModel | str,
        args: SeqGANConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        discriminator_processing_class=None,
        callbacks=None,
        optimizers=(None, None),
        compute_metrics=None,
        evaluator=None,
    ):
        args = args if args is not None else SeqGANConfig()
        if not isinstance(args, SeqGANConfig):
            raise TypeError(f"args must be a SeqGANConfig, got {type(args).__name__}: build one with SeqGANConfig(...).")
        model = _load(model, AutoModelForCausalLM, "model")
        discriminator = _load(discriminator, AutoModelForSequenceClassification, "discriminator")
        if not (isinstance(model, GenerationMixin) or callable(getattr(model, "generate", None))):
            raise TypeError(
                f"model is a {type(model).__name__}, not a causal LM: pass a generator built with "
                "AutoModelForCausalLM (e.g. GPT2LMHeadModel, LlamaForCausalLM, LSTMForCausalLM)."
            )
        num_labels = getattr(discriminator.config, "num_labels", None)
        if num_labels not in (1, 2):
            raise ValueError(
                f"discriminator.config.num_labels is {num_labels}; SeqGAN needs 1 (sigmoid) or 2 (softmax, label 1 = "
                "real). Rebuild it with AutoModelForSequenceClassification.from_config(config, num_labels=2)."
            )
        if processing_class is not None and getattr(processing_class, "pad_token", "") is None:
            raise ValueError(
                "processing_class has no pad token, which SeqGAN needs to batch sequences of different lengths. "
                "Set one first, e.g. `tokenizer.pad_token = tokenizer.eos_token`."
            )
        if discriminator_processing_class is not None:
            if processing_class is None:
                raise ValueError(
                    "discriminator_processing_class is set but processing_class is not: the generator's tokenizer "
                    "is needed to decode its samples for the discriminator."
                )
            if getattr(discriminator_processing_class, "pad_token", "") is None:
                raise ValueError(
                    "discriminator_processing_class has no pad token; set one, e.g. `tok.pad_token = tok.eos_token`."
                )
        else:
            g_vocab = model.get_input_embeddings().num_embeddings
            d_embeddings = discriminator.get_input_embeddings() if hasattr(discriminator, "get_input_embeddings") else None
            d_vocab = d_embeddings.num_embeddings if d_embeddings is not None else discriminator.config.vocab_size
            if d_vocab != g_vocab:
                raise ValueError(
                    f"The generator has {g_vocab} token ids but the discriminator {d_vocab}, and no "
                    "discriminator_processing_class was given, so D would read G's ids directly. Build D with "
                    f"vocab_size={g_vocab}, or pass discriminator_processing_class=<D's tokenizer> to re-tokenize text."
                )

        # Token ids the algorithm needs: the start token, EOS (ends a sequence early) and padding.
        generation_config = getattr(model, "generation_config", None)
        self.bos_token_id = _first_not_none(
            args.bos_token_id,
            getattr(model.config, "bos_token_id", None),
            getattr(processing_class, "bos_token_id", None),
            getattr(generation_config, "bos_token_id", None),
            getattr(processing_class, "eos_token_id", None),
        )
        if self.bos_token_id is None:
            raise ValueError(
                "No start token: neither the generator config nor the tokenizer defines bos_token_id. "
                "Set SeqGANConfig(bos_token_id=...)."
            )
        self.eos_token_id = _first_not_none(
            getattr(processing_class, "eos_token_id", None) if processing_class is not None else None,
            getattr(model.config, "eos_token_id", None),
        )
        self.pad_token_id = _first_not_none(
            getattr(processing_class, "pad_token_id", None) if processing_class is not None else None,
            getattr(model.config, "pad_token_id", None),
        )
        if isinstance(self.eos_token_id, list):
            self.eos_token_id = self.eos_token_id[0]

        self.real = encode_dataset(
            train_dataset, args.sequence_length, processing_class, self.eos_token_id, self.pad_token_id
        )
        mle_dataset = _real_to_dataset(self.real)
        args.remove_unused_columns = False  # the MLE collator reads `length`, which the model does not take

        if args.disable_dropout:
            _disable_dropout(model)
        super().__init__(
            model=model,
            args=args,
            data_collator=MLECollator(self.bos_token_id, self.eos_token_id, self.pad_token_id),
            train_dataset=mle_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            callbacks=callbacks,
            optimizers=optimizers,
            compute_metrics=compute_metrics,
        )
        self.discriminator = discriminator.to(self.args.device)
        self.discriminator_processing_class = discriminator_processing_class
        d_pad = getattr(discriminator.config, "pad_token_id", None)
        self.critic = DiscriminatorAdapter(
            num_labels=num_labels,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            discriminator_pad_token_id=d_pad if d_pad is not None else self.pad_token_id,
            generator_tokenizer=processing_class if discriminator_processing_class is not None else None,
            discriminator_tokenizer=discriminator_processing_class,
            max_length=args.discriminator_max_length or 4 * args.sequence_length,
        )
        self.rollout_engine = RolloutEngine(
            bos_token_id=self.bos_token_id,
            sequence_length=args.sequence_length,
            rollout_num=args.rollout_num,
            temperature=args.temperature,
            rollout_batch_size=args.rollout_batch_size,
            score_batch_size=args.rollout_batch_size,
        )
        self.evaluator = evaluator
        self.rollout_model: nn.Module | None = None
        self.reward_baseline: torch.Tensor | None = None
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self.phase_metrics: dict[str, dict[str, float]] = {}  # evaluation at the end of each phase
        self._configure_generation_defaults()

    # ---- setup -----------------------------------------------------------------------------------------

    def _configure_generation_defaults(self) -> None:
        """Make `generate()` on the saved model sample the way training did, unless the user set otherwise."""
        generation_config = getattr(self.model, "generation_config", None)
        if generation_config is None:
            return
        generation_config.do_sample = True
        generation_config.max_new_tokens = self.args.sequence_length
        generation_config.temperature = self.args.temperature
        generation_config.top_k = 0
        generation_config.top_p = 1.0
        if generation_config.bos_token_id is None:
            generation_config.bos_token_id = self.bos_token_id
        if generation_config.pad_token_id is None and self.pad_token_id is not None:
            generation_config.pad_token_id = self.pad_token_id

    def _num_negatives(self) -> int:
        """Negatives (and as many positives) per discriminator round on this process."""
        total = self.args.num_negatives if self.args.num_negatives is not None else len(self.real)
        return max(1, math.ceil(total / self.args.world_size))

    def _make_optimizer(self, model: nn.Module, learning_rate: float, weight_decay: float | None = None):
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, model)
        optimizer_kwargs = {**optimizer_kwargs, "lr": learning_rate}
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": params, "weight_decay": self.args.weight_decay if weight_decay is None else weight_decay}]
        return optimizer_cls(groups, **optimizer_kwargs)

    def _setup_models(self, mle_steps: int) -> None:
        args = self.args
        adversarial_steps = args.adversarial_iterations * args.g_steps
        d_updates = math.ceil(2 * self._num_negatives() / args.discriminator_batch_size) * (
            args.discriminator_pretrain_rounds * args.discriminator_pretrain_epochs
            + args.adversarial_iterations * args.d_steps * args.d_epochs
        )
        self.mle_optimizer = self._make_optimizer(self.model, args.mle_learning_rate)
        self.mle_scheduler = get_scheduler(
            args.lr_scheduler_type, self.mle_optimizer, args.get_warmup_steps(mle_steps), max(mle_steps, 1)
        )
        if self.optimizer is None:
            self.optimizer = self._make_optimizer(self.model, args.learning_rate)
        if self.lr_scheduler is None:
            self.lr_scheduler = get_scheduler(
                args.lr_scheduler_type, self.optimizer, args.get_warmup_steps(adversarial_steps), max(adversarial_steps, 1)
            )
        self.discriminator_optimizer = self._make_optimizer(
            self.discriminator, args.discriminator_learning_rate, args.discriminator_weight_decay
        )
        self.discriminator_scheduler = get_scheduler(
            "constant", self.discriminator_optimizer, 0, max(d_updates, 1)
        )
        (
            self.model_wrapped,
            self.mle_optimizer,
            self.optimizer,
            self.discriminator_wrapped,
            self.discriminator_optimizer,
        ) = self.accelerator.prepare(
            self.model, self.mle_optimizer, self.optimizer, self.discriminator, self.discriminator_optimizer
        )
        self.model = self.accelerator.unwrap_model(self.model_wrapped)
        self.discriminator = self.accelerator.unwrap_model(self.discriminator_wrapped)
        if args.rollout_policy == "delayed" and self.rollout_model is None:
            self.rollout_model = copy.deepcopy(self.model).eval().requires_grad_(False)

    # ---- training ----------------------------------------------------------------------------------------

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, ignore_keys_for_eval=None, **kwargs):
        """Run MLE pretraining, discriminator pretraining and adversarial training, in that order."""
        args = self.args
        start_time = time.time()
        self.is_in_train = True
        mle_loader = self.get_train_dataloader() if args.mle_epochs > 0 else None
        mle_steps = args.mle_epochs * len(mle_loader) if mle_loader is not None else 0
        self._setup_models(mle_steps)

        self.state = TrainerState(
            stateful_callbacks=[
                cb for cb in self.callback_handler.callbacks + [self.control] if isinstance(cb, ExportableState)
            ]
        )
        self.state.max_steps = mle_steps + args.discriminator_pretrain_rounds + args.adversarial_iterations
        self.state.num_train_epochs = args.mle_epochs
        self.state.train_batch_size = args.per_device_train_batch_size
        self.state.compute_steps(args, self.state.max_steps)
        self.state.is_local_process_zero = self.is_local_process_zero()
        self.state.is_world_process_zero = self.is_world_process_zero()
        self.control = self.callback_handler.on_train_begin(args, self.state, self.control)

        if mle_steps:
            self._run_mle(mle_loader)
            self._evaluate_at_phase_end()
        if args.discriminator_pretrain_rounds and not self.control.should_training_stop:
            self._run_discriminator_pretraining()
        if args.adversarial_iterations and not self.control.should_training_stop:
            self._run_adversarial()

        self._log_accumulated()
        if args.discriminator_pretrain_rounds or args.adversarial_iterations:
            self._evaluate_at_phase_end()
        metrics = speed_metrics("train", start_time, num_steps=self.state.global_step)
        self.log(metrics)
        self.control = self.callback_handler.on_train_end(args, self.state, self.control)
        self.is_in_train = False
        return TrainOutput(self.state.global_step, self._last_loss, metrics)

    def _run_mle(self, dataloader) -> None:
        self._start_phase("mle")
        model = self.model_wrapped
        model.train()
        steps_per_epoch = len(dataloader)
        for epoch in range(self.args.mle_epochs):
            if hasattr(dataloader, "set_epoch"):
                dataloader.set_epoch(epoch)
            self.control = self.callback_handler.on_epoch_begin(self.args, self.state, self.control)
            for step, batch in enumerate(dataloader):
                self.control = self.callback_handler.on_step_begin(self.args, self.state, self.control)
                with self.accelerator.autocast():
                    loss = self.compute_loss(model, batch)
                self._update(loss, model, self.mle_optimizer, self.mle_scheduler)
                self._record("mle/loss", loss)
                self.state.epoch = epoch + (step + 1) / steps_per_epoch
                self._end_unit()
                if self.control.should_training_stop:
                    return
            self.control = self.callback_handler.on_epoch_end(self.args, self.state, self.control)

    def _run_discriminator_pretraining(self) -> None:
        self._start_phase("discriminator_pretrain")
        for _ in range(self.args.discriminator_pretrain_rounds):
            self.control = self.callback_handler.on_step_begin(self.args, self.state, self.control)
            self._train_discriminator(self.args.discriminator_pretrain_epochs)
            self._end_unit()
            if self.control.should_training_stop:
                return

    def _run_adversarial(self) -> None:
        self._start_phase("adversarial")
        for _ in range(self.args.adversarial_iterations):
            self.control = self.callback_handler.on_step_begin(self.args, self.state, self.control)
            for _ in range(self.args.g_steps):
                self._generator_step()
            for _ in range(self.args.d_steps):
                self._train_discriminator(self.args.d_epochs)
            self._end_unit()
            if self.control.should_training_stop:
                return

    def _update(self, loss: torch.Tensor, model: nn.Module, optimizer, scheduler) -> None:
        """Backward, clip, step: one optimizer update through the accelerator."""
        self.accelerator.backward(loss)
        if self.args.max_grad_norm and self.args.max_grad_norm > 0:
            self.accelerator.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

    # ---- the policy-gradient step ------------------------------------------------------------------------

    def _score(self, sequences: torch.LongTensor) -> torch.Tensor:
        with self.accelerator.autocast():
            return self.critic.score(self.discriminator, sequences)

    def _generator_step(self) -> None:
        """One REINFORCE update: sample, reward every token by Monte Carlo search, ascend log-prob * reward."""
        args = self.args
        generator = self.model
        generator.eval()
        with self.accelerator.autocast():
            sequences = self.rollout_engine.sample(generator, args.per_device_train_batch_size)
            policy = self.rollout_model if self.rollout_model is not None else generator
            rewards = self.rollout_engine(policy, sequences, self._score)
        generator.train()
        _, keep = mask_after_eos(sequences, self.eos_token_id, self.pad_token_id)
        advantages = self._apply_baseline(rewards, keep)

        loss = self.policy_gradient_loss(self.model_wrapped, sequences, advantages, keep)
        self._update(loss, self.model_wrapped, self.optimizer, self.lr_scheduler)
        if self.rollout_model is not None:
            self._update_rollout_model()

        keep_f = keep.float()
        self._record("adversarial/g_loss", loss)
        self._record("adversarial/reward_mean", (rewards * keep_f).sum() / keep_f.sum())
        self._record("adversarial/reward_final", rewards[:, -1].mean())

    def policy_gradient_loss(
        self, model: nn.Module, sequences: torch.LongTensor, advantages: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """-mean over kept tokens of log G(y_t | y_<t) * advantage_t (the policy at the sampling temperature)."""
        inputs = torch.cat([sequences.new_full((sequences.shape[0], 1), self.bos_token_id), sequences[:, :-1]], dim=1)
        with self.accelerator.autocast():
            logits = model(input_ids=inputs).logits.float() / self.args.temperature
        log_probs = torch.log_softmax(logits, dim=-1).gather(-1, sequences.unsqueeze(-1)).squeeze(-1)
        mask = mask.to(log_probs.dtype)
        return -(log_probs * advantages.detach() * mask).sum() / mask.sum().clamp(min=1.0)

    def _apply_baseline(self, rewards: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Subtract the configured baseline per position (none in the paper)."""
        mode = self.args.reward_baseline
        if mode == "none":
            return rewards
        keep_f = keep.float()
        position_mean = (rewards * keep_f).sum(0) / keep_f.sum(0).clamp(min=1.0)
        position_mean = self.accelerator.reduce(position_mean, reduction="mean")
        if mode == "batch_mean":
            return rewards - position_mean
        if self.reward_baseline is None:
            self.reward_baseline = position_mean.clone()
        baseline = self.reward_baseline
        self.reward_baseline = self.args.baseline_decay * baseline + (1 - self.args.baseline_decay) * position_mean
        return rewards - baseline

    @torch.no_grad()
    def _update_rollout_model(self) -> None:
        """theta_roll <- rate * theta_roll + (1 - rate) * theta_G (the paper's delayed rollout policy)."""
        rate = self.args.rollout_update_rate
        for rollout_param, param in zip(self.rollout_model.parameters(), self.model.parameters()):
            rollout_param.mul_(rate).add_(param.detach(), alpha=1.0 - rate)

    # ---- the discriminator -----------------------------------------------------------------------------

    def _train_discriminator(self, epochs: int) -> None:
        """One round: fresh negatives from G plus as many real sequences, `epochs` passes of D updates."""
        args = self.args
        device = self.accelerator.device
        count = self._num_negatives()
        generator = self.model
        generator.eval()
        with torch.no_grad(), self.accelerator.autocast():
            negatives = torch.cat([
                self.rollout_engine.sample(generator, min(args.rollout_batch_size, count - start))
                for start in range(0, count, args.rollout_batch_size)
            ])
        generator.train()
        # Each process takes its own random positives: ranks see different data, as with a sharded loader.
        chosen = torch.randperm(len(self.real))[: count] if count <= len(self.real) else torch.randint(
            len(self.real), (count,)
        )
        positives = self.real.input_ids[chosen].to(device)
        sequences = torch.cat([positives, negatives.to(device)])
        labels = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives))]).to(device)

        discriminator = self.discriminator_wrapped
        discriminator.train()
        for _ in range(epochs):
            order = torch.randperm(len(sequences), device=device)
            for batch_index in order.split(args.discriminator_batch_size):
                batch_labels = labels[batch_index]
                inputs = self.critic.encode(sequences[batch_index], device)
                with self.accelerator.autocast():
                    logits = discriminator(**inputs).logits
                    loss = self.critic.loss(logits, batch_labels) + regularization_loss(self.discriminator)
                self._update(loss, discriminator, self.discriminator_optimizer, self.discriminator_scheduler)
                predictions = self.critic.predictions(logits.detach())
                real = batch_labels == 1
                self._record("discriminator/loss", loss)
                if real.any():
                    self._record("discriminator/accuracy_real", (predictions[real] == 1).float().mean())
                if (~real).any():
                    self._record("discriminator/accuracy_fake", (predictions[~real] == 0).float().mean())

    # ---- evaluation -------------------------------------------------------------------------------------

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """The Trainer's evaluation loop on `eval_dataset` (if any: `eval_loss` is the generator's per-token NLL
        of held-out data), plus the `evaluator`'s metrics on fresh generator samples."""
        metrics: dict[str, float] = {}
        if eval_dataset is not None or self.eval_dataset is not None:
            metrics.update(super().evaluate(eval_dataset, ignore_keys, metric_key_prefix))
        if self.evaluator is not None:
            was_training = self.model.training
            sample_metrics = {f"{metric_key_prefix}_{name}": value for name, value in self.evaluator(self.model).items()}
            self.model.train(was_training)
            sample_metrics[f"{metric_key_prefix}_phase"] = PHASES[self._phase]
            self.log(sample_metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, sample_metrics)
            metrics.update(sample_metrics)
        return metrics

    def _evaluate_at_phase_end(self) -> None:
        if self.evaluator is not None or self.eval_dataset is not None:
            self.phase_metrics[self._phase] = self.evaluate()

    # ---- logging, saving ---------------------------------------------------------------------------------

    def _record(self, name: str, value: torch.Tensor | float) -> None:
        self._metrics[name].append(float(value.detach()) if isinstance(value, torch.Tensor) else float(value))

    def _log_accumulated(self) -> None:
        if not self._metrics:
            return
        names = sorted(self._metrics)
        local = torch.tensor([sum(self._metrics[n]) / len(self._metrics[n]) for n in names], device=self.args.device)
        # Global values: every process contributes its mean (same number of updates on every rank).
        values = self.accelerator.reduce(local, reduction="mean").tolist()
        logs = dict(zip(names, values))
        logs["phase"] = PHASES[self._phase]
        self._metrics.clear()
        if "mle/loss" in logs:
            self._last_loss = logs["mle/loss"]
        if "adversarial/g_loss" in logs:
            self._last_loss = logs["adversarial/g_loss"]
        self.log(logs)

    _last_loss: float = 0.0
    _phase: str = "mle"

    def _start_phase(self, phase: str) -> None:
        self._log_accumulated()  # a log line never mixes two phases
        self._phase = phase

    def _end_unit(self) -> None:
        """Close one training unit: callbacks decide whether to log, evaluate or save now."""
        self.state.global_step += 1
        self.control = self.callback_handler.on_step_end(self.args, self.state, self.control)
        if self.control.should_log:
            self._log_accumulated()
            self.control.should_log = False
        if self.control.should_evaluate:
            self.evaluate()
            self.control.should_evaluate = False
        if self.control.should_save:
            self._save_seqgan_checkpoint()
            self.control = self.callback_handler.on_save(self.args, self.state, self.control)
            self.control.should_save = False

    def _save_seqgan_checkpoint(self) -> None:
        output_dir = os.path.join(self.args.output_dir, f"checkpoint-{self.state.global_step}")
        self.save_model(output_dir, _internal_call=True)
        if self.args.should_save:
            self.state.save_to_json(os.path.join(output_dir, "trainer_state.json"))

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save the generator (and tokenizer) to `output_dir` and the discriminator to `output_dir/discriminator`."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        super().save_model(output_dir, _internal_call=_internal_call)
        if self.args.should_save:
            discriminator_dir = os.path.join(output_dir, "discriminator")
            self.accelerator.unwrap_model(self.discriminator).save_pretrained(discriminator_dir)
            if self.discriminator_processing_class is not None:
                self.discriminator_processing_class.save_pretrained(discriminator_dir)
        self.accelerator.wait_for_everyone()


def _first_not_none(*values):
    for value in values:
        if value is not None:
            return value
    return None


def _disable_dropout(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0


def _real_to_dataset(real: RealSequences):
    import datasets

    return datasets.Dataset.from_dict({"input_ids": real.input_ids.tolist(), "length": real.lengths.tolist()})
