"""`SeqGANTrainer`: the Hugging Face shell around SeqGAN's Algorithm 1 (`seqgan_hf.algorithm`).

Phases (each skippable, see `SeqGANConfig`):

1. MLE pretraining of the generator G (teacher forcing, the Trainer's own `compute_loss`);
2. discriminator pretraining: D learns real vs. freshly sampled sequences;
3. adversarial training: per iteration, `g_steps` REINFORCE updates of G with Monte Carlo rewards from the reward
   source (D's P(real) by default), then `d_steps` updates of D on fresh negatives.

The trainer owns what a `transformers.Trainer` user expects: phases, callbacks, logging, evaluation and saving.
The algorithm lives in `seqgan_hf.algorithm`, the distributed layouts in `seqgan_hf.runtime`, checkpoints in
`seqgan_hf.checkpoint` and the Hub in `seqgan_hf.hub`.

Progress is counted in *training units*: one MLE batch, one discriminator pretraining round, or one
adversarial iteration each advance `state.global_step` by one; logging, evaluation and checkpoint intervals
(`logging_steps`, `eval_steps`, `save_steps`) are in these units.
"""

from __future__ import annotations

import functools
import math
import time
from collections import defaultdict

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    PreTrainedModel,
    Trainer,
    TrainerState,
    get_scheduler,
)
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import TrainOutput, speed_metrics

from . import checkpoint as ckpt
from . import parallel, run_dir
from .algorithm import SeqGAN
from .checkpoint import CheckpointMixin, NonFiniteError  # noqa: F401  (NonFiniteError: public here too)
from .checks import (
    apply_peft,
    check_models,
    check_phases,
    enable_activation_checkpointing,
    load_model,
    probe_models,
    share_pad_token,
    special_token_ids,
)
from .completions import CompletionLogger
from .config import SeqGANConfig
from .discriminator import DiscriminatorAdapter
from .hub import HubMixin, HubPushError, declare_remote_code  # noqa: F401  (HubPushError: public here too)
from .policies import is_adapter_model
from .rewards import DiscriminatorReward, RewardSource, build_reward
from .rollout import RolloutEngine
from .runtime import select_runtime
from .saving import SavingMixin
from .training_data import check_pair_lengths, check_positions, encode_held_out, encode_training_data

PHASES = {"mle": 1, "discriminator_pretrain": 2, "adversarial": 3}
# Offsets that give every process its own sampling and data streams, distinct from set_seed(seed)'s.
_SAMPLING_SEED_OFFSET = 104_729
_DATA_SEED_OFFSET = 1_299_709


class SeqGANTrainer(SavingMixin, CheckpointMixin, HubMixin, Trainer):
    """Adversarial training of a causal LM (the policy) against a sequence classifier (the discriminator).

    Args:
        model: the generator: any causal LM (`AutoModelForCausalLM`) or a path / Hub id to one.
        discriminator: any sequence classifier with `num_labels` 1 or 2, or a path / Hub id to one. None when no
            discriminator is trained (`discriminator_pretrain_rounds=0`, `d_steps=0`): rewards then come from
            `reward_funcs` alone.
        args: a [`SeqGANConfig`].
        train_dataset: real sequences: a `datasets.Dataset` with an `input_ids` column (token ids, without the
            start token) or a `text` column (tokenized with `processing_class`); or prompt-completion pairs
            (`prompt` and `completion` columns in TRL's standard or conversational format), which makes training
            prompt-conditioned: G completes dataset prompts and D judges (prompt, completion) pairs.
        processing_class: the generator's tokenizer (needed for text data and for saving it with the model).
        discriminator_processing_class: the discriminator's tokenizer when it differs from the generator's;
            sequences are then decoded and re-tokenized before D sees them.
        evaluator: optional callable `evaluator(generator) -> dict[str, float]` computing metrics from fresh
            samples (e.g. [`~seqgan_hf.oracle.OracleEvaluator`]: NLL_oracle and NLL_test). `evaluate()` reports
            its metrics (prefixed `eval_`), after the Trainer's own evaluation loop when `eval_dataset` is set;
            it also runs at the end of MLE pretraining and of training.
        reward_funcs: where the rewards of complete sequences come from (see `seqgan_hf.rewards.build_reward`).
            None: the discriminator's P(real), as in the paper. Otherwise one entry or a list, each the string
            `"discriminator"`, a function `f(completions, completion_ids, **kwargs) -> list[float]` in [0, 1]
            (TRL's convention; with prompts also `prompts=`), a [`~seqgan_hf.rewards.RewardSource`], or a frozen
            sequence classifier; several are mixed by `args.reward_weights`.
        callbacks, optimizers: as in `transformers.Trainer` (`optimizers` applies to the adversarial phase).
        peft_config: a `peft.PeftConfig` (e.g. `LoraConfig(r=16, target_modules=[...])`): `model` gets a fresh
            adapter and only the adapter trains; the delayed rollout policy copies the adapter alone and the KL
            reference (`beta`) is the base with the adapter disabled. Saves and checkpoints hold the adapter.
    """

    _tag_names = ["seqgan", "text-generation", "gan"]

    def __init__(
        self,
        model: PreTrainedModel | str,
        discriminator: PreTrainedModel | str | None = None,
        args: SeqGANConfig | None = None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        discriminator_processing_class=None,
        callbacks=None,
        optimizers=(None, None),
        compute_metrics=None,
        evaluator=None,
        reward_funcs=None,
        peft_config=None,
    ):
        args = args if args is not None else SeqGANConfig()
        if not isinstance(args, SeqGANConfig):
            raise TypeError(f"args must be a SeqGANConfig, got {type(args).__name__}: build one with SeqGANConfig(...).")
        if args.should_save:  # before anything else: transformers.Trainer creates the folder on its own
            run_dir.check_writable(args.output_dir)
        model = load_model(model, AutoModelForCausalLM, "model", args.model_init_kwargs)
        if peft_config is not None:
            model = apply_peft(model, peft_config)
        if args.activation_checkpointing:  # the Trainer enables it in train(); here it is refused before any work
            enable_activation_checkpointing(model, args.activation_checkpointing_kwargs)
        if discriminator is not None:
            discriminator = load_model(discriminator, AutoModelForSequenceClassification, "discriminator",
                                       args.discriminator_init_kwargs)
        share_pad_token(model, discriminator, processing_class, discriminator_processing_class)
        check_models(model, discriminator, processing_class, discriminator_processing_class)
        probe_models(model, discriminator, processing_class)

        # Token ids the algorithm needs: the start token, EOS (ends a sequence early) and padding.
        self.bos_token_id, self.eos_token_id, self.pad_token_id = special_token_ids(model, processing_class, args)
        if not args.append_eos:  # fixed-length sequences: EOS is never appended, and never ends a sample
            self.eos_token_id = None
        encoding = dict(sequence_length=args.sequence_length, tokenizer=processing_class,
                        eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id,
                        vocab_size=model.get_input_embeddings().num_embeddings, overflow=args.sequence_overflow,
                        fixed_length=not args.append_eos)
        # Plain sequences, or prompt-completion pairs (`prompt` / `completion` columns): then prompt-conditioned.
        self.data = encode_training_data(train_dataset, encoding, args, self.bos_token_id)
        self.real, self.prompts = self.data.real, self.data.prompts
        self._encoding = encoding  # held-out data given later (evaluate / predict) is encoded the same way
        check_positions(model, discriminator, self.data, args.sequence_length,
                        same_vocabulary=discriminator_processing_class is None)

        if args.disable_dropout:
            _disable_dropout(model)
        self.evaluator = evaluator  # read by _validate_args, during Trainer.__init__
        super().__init__(
            model=model,
            args=args,
            data_collator=self.data.collator,
            train_dataset=self.data.mle_dataset,
            # Held-out real data goes through the same encoding, so `eval_loss` is the per-token NLL of it.
            eval_dataset=self._encode_held_out(eval_dataset, "eval_dataset") if eval_dataset is not None else None,
            processing_class=processing_class,
            callbacks=callbacks,
            optimizers=optimizers,
            compute_metrics=compute_metrics,
        )
        self.discriminator = discriminator.to(self.args.device) if discriminator is not None else None
        self.discriminator_processing_class = discriminator_processing_class
        self.discriminator_adapter = DiscriminatorAdapter.for_discriminator(
            discriminator, self.eos_token_id, self.pad_token_id, processing_class, discriminator_processing_class,
            max_length=args.discriminator_max_length or 4 * (args.sequence_length + self.data.prompt_width),
            prompt_width=self.data.prompt_width,
        ) if discriminator is not None else None
        check_pair_lengths(self.discriminator_adapter, self.data)
        # The runtime (one process / DDP, FSDP2 or DeepSpeed), chosen once; it holds the models from train() on.
        self.runtime = select_runtime(self.accelerator, args.max_grad_norm, self._position,
                                      user_optimizer=self.optimizer is not None)
        if is_adapter_model(self.model) and self.runtime.layout in (parallel.FSDP2, parallel.DEEPSPEED):
            raise NotImplementedError(
                f"A peft generator under {self.runtime.layout} is not supported yet (its adapter-only checkpoints "
                "and rollout policy are tested in one process and under DDP): launch with DDP (multi_gpu.yaml / "
                "cpu_2proc.yaml), or train the full model."
            )
        self.discriminator_reward: DiscriminatorReward | None = None  # set by _reward_source when there is a D
        self.reward: RewardSource | None = self._reward_source(reward_funcs)
        check_phases(args, self.discriminator, self.reward, reward_funcs, self.discriminator_reward)
        # The trainer's own random streams, one pair per process: the sampling stream (sequences and rollouts)
        # and the data stream (which real sequences a D round uses, D batch order). Ranks draw different
        # samples; a checkpoint saves and restores both, with the global RNGs, for every process.
        rank = self.args.process_index
        self.sampling_rng = torch.Generator(device=self.args.device)
        self.sampling_rng.manual_seed(args.seed * 7919 + _SAMPLING_SEED_OFFSET * (rank + 1))
        self.data_rng = torch.Generator(device="cpu")
        self.data_rng.manual_seed(args.seed * 7919 + _DATA_SEED_OFFSET * (rank + 1))
        self.rollout_engine = RolloutEngine(
            self.bos_token_id, args.sequence_length, args.rollout_num, temperature=args.temperature,
            rollout_batch_size=args.rollout_batch_size, score_batch_size=args.score_batch_size,
            top_k=args.top_k, top_p=args.top_p, reward_stride=args.reward_stride, eos_token_id=self.eos_token_id,
        )
        self.algorithm = SeqGAN(
            args, self.runtime, self.rollout_engine, self.reward, self.discriminator_adapter, self.real,
            self._num_negatives(), self.eos_token_id, self.pad_token_id, self.sampling_rng, self.data_rng,
            self._record, prompts=self.prompts,
        )
        self.completion_logger = CompletionLogger(args.output_dir, args.num_completions_to_log, processing_class,
                                                  self.discriminator_reward) if args.log_completions else None
        if self.completion_logger is not None:
            self.algorithm.on_rewards = self.completion_logger.capture
        self._resume_rng: str | None = None  # checkpoint whose RNG states are restored at the resume point
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._summed_metrics: set[str] = set()
        self.phase_metrics: dict[str, dict[str, float]] = {}  # evaluation at the end of each phase
        self._last_evaluation: tuple[int, dict[str, float]] | None = None
        self._last_loss = 0.0
        self._phase = "mle"
        self._mle_steps = 0
        self._prepared = False
        self._train_started = False
        self.run_id: str | None = None  # the run that owns output_dir (`seqgan_hf.run_dir`), set by train()
        # An MLE update covers gradient_accumulation_steps micro-batches: the loader yields them together.
        self._train_batch_size = args.train_batch_size * args.gradient_accumulation_steps
        if args.overwrite_generation_config:  # asked for: a plain generate() then samples as training does
            if is_adapter_model(self.model):
                raise ValueError(
                    "SeqGANConfig.overwrite_generation_config: a peft generator saves its adapter only, with no "
                    "generation config to write into. Leave it False: training_generation_config.json is saved "
                    "beside the adapter (GenerationConfig.from_pretrained(dir, 'training_generation_config.json'))."
                )
            self.model.generation_config = self.training_generation_config()

    # ---- setup -----------------------------------------------------------------------------------------

    def _reward_source(self, reward_funcs) -> RewardSource | None:
        """The reward of complete sequences: the discriminator's P(real) unless `reward_funcs` says otherwise."""
        if self.discriminator is not None:
            self.discriminator_reward = DiscriminatorReward(
                self.discriminator_adapter, lambda: self.full_model("discriminator"), self.accelerator.autocast,
                prefix_sharing=self.args.discriminator_prefix_cache,
            )
        entries = reward_funcs if isinstance(reward_funcs, list | tuple) else [reward_funcs]
        for entry in entries:  # frozen reward models run where the generator does
            if isinstance(entry, nn.Module):
                entry.to(self.args.device)
        return build_reward(reward_funcs, self.args.reward_weights, self.discriminator_reward, self.processing_class,
                            self.eos_token_id, self.pad_token_id, self.args.discriminator_prefix_cache,
                            with_prompts=self.prompts is not None, prompt_width=self.data.prompt_width)

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
        """Optimizers and schedulers of every phase, the delayed rollout policy, and the runtime's `prepare`."""
        args = self.args
        adversarial_steps = args.adversarial_iterations * args.g_steps
        mle_optimizer = self._make_optimizer(self.model, args.mle_learning_rate)
        if self.optimizer is None:
            self.optimizer = self._make_optimizer(self.model, args.learning_rate)
        if self.lr_scheduler is None:
            self.lr_scheduler = get_scheduler(
                args.lr_scheduler_type, self.optimizer, args.get_warmup_steps(adversarial_steps),
                max(adversarial_steps, 1), scheduler_specific_kwargs=args.lr_scheduler_kwargs,
            )
        optimizers = {"mle": mle_optimizer, "generator": self.optimizer}
        schedulers = {
            "mle": get_scheduler(args.lr_scheduler_type, mle_optimizer, args.get_warmup_steps(mle_steps),
                                 max(mle_steps, 1), scheduler_specific_kwargs=args.lr_scheduler_kwargs),
            "generator": self.lr_scheduler,
        }
        models = {"generator": self.model}
        if self.discriminator is not None:
            update_size = args.discriminator_batch_size * args.gradient_accumulation_steps
            d_updates = math.ceil(2 * self._num_negatives() / update_size) * (
                args.discriminator_pretrain_rounds * args.discriminator_pretrain_epochs
                + args.adversarial_iterations * args.d_steps * args.d_epochs
            )
            optimizers["discriminator"] = self._make_optimizer(
                self.discriminator, args.discriminator_learning_rate, args.discriminator_weight_decay
            )
            schedulers["discriminator"] = get_scheduler("constant", optimizers["discriminator"], 0, max(d_updates, 1))
            models["discriminator"] = self.discriminator
        # Copied before prepare(): a plain module under every layout (FSDP2 shards the model in place).
        self.algorithm.start_rollout_policy(self.model)
        runtime = self.runtime
        runtime.prepare(models, optimizers, schedulers)
        # The Trainer's own names for what it reads elsewhere (save_model, the evaluation loop, DeepSpeed).
        self.model_wrapped, self.model = runtime.training_model("generator"), runtime.model("generator")
        self.optimizer = runtime.optimizers["generator"]
        if runtime.layout == parallel.DEEPSPEED:
            self.deepspeed = self.model_wrapped
        if self.discriminator is not None:
            self.discriminator = runtime.model("discriminator")
        self._prepared = True

    def full_model(self, name: str) -> nn.Module:
        """The generator ("generator") or discriminator ("discriminator") with full, current parameters (under
        FSDP2 a replica refreshed from the shards: a collective; every process must call it at the same point)."""
        if self._prepared:
            return self.runtime.full_model(name)
        return self.model if name == "generator" else self.discriminator

    # ---- training ----------------------------------------------------------------------------------------

    def train(self, resume_from_checkpoint: str | bool | None = None, trial=None, ignore_keys_for_eval=None, **kwargs):
        """Run MLE pretraining, discriminator pretraining and adversarial training, in that order.

        Args:
            resume_from_checkpoint: a `checkpoint-<step>` directory, or `True` for the latest one in `output_dir`.
                Training continues in the phase and at the step where the checkpoint was taken, with both models,
                every optimizer and scheduler, the rollout policy copy, the reward baseline and every process's
                RNG states restored: the result equals that of an uninterrupted run (bitwise, on deterministic
                kernels and the same number of processes).
        """
        if self._train_started:
            raise RuntimeError(
                "train() already ran on this trainer (its models, optimizers and phases have moved on). To "
                "train further, build a new SeqGANTrainer (e.g. with a larger adversarial_iterations) and pass "
                "resume_from_checkpoint=True to continue from the last checkpoint."
            )
        lock = run_dir.RunLock(self.args.output_dir)
        if self.args.should_save:
            lock.acquire()  # before anything in output_dir is read, cleaned or written
        try:
            return self._train(resume_from_checkpoint)
        finally:
            lock.release()

    def _train(self, resume_from_checkpoint: str | bool | None) -> TrainOutput:
        args = self.args
        start_time = time.time()
        self.is_in_train = True
        checkpoint = self._resolve_checkpoint(resume_from_checkpoint)
        if args.should_save:
            resumed_run = ckpt.checkpoint_run_id(checkpoint) if checkpoint is not None else None
            self.run_id = run_dir.start_run(args.output_dir, resumed_run, args.overwrite_output_dir)
        self._train_started = True  # from here on models and optimizers change: a second call is refused
        mle_loader = self.get_train_dataloader() if args.mle_epochs > 0 else None
        mle_steps = args.mle_epochs * len(mle_loader) if mle_loader is not None else 0
        self._mle_steps = mle_steps
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
        if args.should_save:
            ckpt.remove_stale_temporaries(args.output_dir)
        if checkpoint is not None:
            self._load_seqgan_checkpoint(checkpoint, mle_loader)
        self.control = self.callback_handler.on_train_begin(args, self.state, self.control)
        if args.eval_on_start and checkpoint is None:
            self.evaluate()

        adversarial_start = mle_steps + args.discriminator_pretrain_rounds
        if mle_steps and self.state.global_step < mle_steps:
            self._run_mle(mle_loader)
            self._evaluate_at_phase_end()
        elif mle_steps and "mle" not in self.phase_metrics:
            self._evaluate_at_phase_end()  # resumed from the last MLE checkpoint, taken before this evaluation
        if (args.discriminator_pretrain_rounds and self.state.global_step < adversarial_start
                and not self.control.should_training_stop):
            self._run_discriminator_pretraining()
        if (args.adversarial_iterations and self.state.global_step < self.state.max_steps
                and not self.control.should_training_stop):
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
        # On resume: whole epochs done, then batches done in the current epoch (replayed without training: the
        # per-epoch order comes from the seedable sampler, so the same batches follow).
        first_epoch, skip = divmod(self.state.global_step, steps_per_epoch)
        for epoch in range(first_epoch, self.args.mle_epochs):
            if hasattr(dataloader, "set_epoch"):
                dataloader.set_epoch(epoch)
            self.control = self.callback_handler.on_epoch_begin(self.args, self.state, self.control)
            for step, batch in enumerate(dataloader):
                if epoch == first_epoch and step < skip:
                    if step == skip - 1:
                        self._restore_deferred_rng()  # the RNGs as they were when the checkpoint was taken
                    continue
                self.control = self.callback_handler.on_step_begin(self.args, self.state, self.control)
                loss = self.runtime.step("mle", self._mle_losses(model, batch), "MLE loss")
                self._record("mle/loss", loss)
                self._record("mle/global_batch_size", batch["input_ids"].shape[0], reduction="sum")
                self.state.epoch = epoch + (step + 1) / steps_per_epoch
                self._end_unit()
                if self.control.should_training_stop:
                    return
            self.control = self.callback_handler.on_epoch_end(self.args, self.state, self.control)

    def _mle_losses(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> list:
        """The MLE update's loss as functions of micro-batches of per_device_train_batch_size (gradient
        accumulation): each micro-batch's mean token loss weighted by its share of the batch's predicted tokens
        (with average_tokens_across_devices: of their mean over processes, as in the g-step)."""
        predicted = (batch["labels"][:, 1:] != -100).sum().float()
        if self.args.average_tokens_across_devices:
            predicted = self.runtime.mean_over_processes(predicted)
        predicted = predicted.clamp(min=1.0)
        micro_batch = self.args.per_device_train_batch_size

        def micro_batch_loss(rows: slice) -> torch.Tensor:
            part = {name: value[rows] for name, value in batch.items()}
            with self.accelerator.autocast():
                loss = self.compute_loss(model, part)
            return loss * ((part["labels"][:, 1:] != -100).sum() / predicted)

        return [functools.partial(micro_batch_loss, slice(start, start + micro_batch))
                for start in range(0, batch["input_ids"].shape[0], micro_batch)]

    def _run_discriminator_pretraining(self) -> None:
        self._start_phase("discriminator_pretrain")
        done = max(0, self.state.global_step - self._mle_steps)
        for _ in range(done, self.args.discriminator_pretrain_rounds):
            self.control = self.callback_handler.on_step_begin(self.args, self.state, self.control)
            self.algorithm.discriminator_round(self.args.discriminator_pretrain_epochs)
            self._end_unit()
            if self.control.should_training_stop:
                return

    def _run_adversarial(self) -> None:
        self._start_phase("adversarial")
        self.algorithm.start_reference_policy(self.full_model("generator"))  # beta > 0 (or restored on resume)
        done = max(0, self.state.global_step - self._mle_steps - self.args.discriminator_pretrain_rounds)
        for _ in range(done, self.args.adversarial_iterations):
            self.control = self.callback_handler.on_step_begin(self.args, self.state, self.control)
            self.algorithm.adversarial_iteration()
            self._end_unit()
            if self.control.should_training_stop:
                return

    def _position(self) -> str:
        """Where training is, in words, for error messages."""
        unit = self.state.global_step + 1  # the unit in progress
        rounds = self.args.discriminator_pretrain_rounds
        if self._phase == "mle":
            where = f"MLE batch {unit}/{self._mle_steps}"
        elif self._phase == "discriminator_pretrain":
            where = f"discriminator pretraining round {unit - self._mle_steps}/{rounds}"
        else:
            where = f"adversarial iteration {unit - self._mle_steps - rounds}/{self.args.adversarial_iterations}"
        return f"phase '{self._phase}', {where} (training unit {unit} of {self.state.max_steps})"

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

    # ---- evaluation -------------------------------------------------------------------------------------

    def _validate_args(self) -> None:
        """The Trainer's checks, except that an `evaluator` alone is enough for periodic evaluation
        (`eval_strategy="steps"`): transformers.Trainer would otherwise demand an `eval_dataset`."""
        strategy = self.args.eval_strategy
        if self.eval_dataset is None and getattr(self, "evaluator", None) is not None:
            self.args.eval_strategy = "no"
        try:
            super()._validate_args()
        finally:
            self.args.eval_strategy = strategy

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """The Trainer's evaluation loop on `eval_dataset` (if any: `eval_loss` is the generator's per-token NLL
        of held-out data), plus the `evaluator`'s metrics on fresh generator samples."""
        metrics: dict[str, float] = {}
        if eval_dataset is not None:
            eval_dataset = self._encode_held_out(eval_dataset, "eval_dataset")
        if eval_dataset is not None or self.eval_dataset is not None:
            metrics.update(super().evaluate(eval_dataset, ignore_keys, metric_key_prefix))
        if self.evaluator is not None:
            was_training = self.model.training
            generator = self.full_model("generator")
            sample_metrics = {f"{metric_key_prefix}_{name}": value for name, value in self.evaluator(generator).items()}
            self.model.train(was_training)
            sample_metrics[f"{metric_key_prefix}_phase"] = PHASES[self._phase]
            self.log(sample_metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, sample_metrics)
            metrics.update(sample_metrics)
        self._last_evaluation = (self.state.global_step, metrics)
        return metrics

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test"):
        """The Trainer's prediction loop on raw held-out data (`input_ids` or `text`), encoded as training data is:
        `metrics["test_loss"]` is the generator's per-token NLL of it."""
        return super().predict(self._encode_held_out(test_dataset, "test_dataset"), ignore_keys, metric_key_prefix)

    def _encode_held_out(self, dataset, what: str):
        """A raw dataset as the MLE collator's fixed-length rows (a dict of datasets: each of them)."""
        if isinstance(dataset, dict):
            return {name: self._encode_held_out(part, f"{what}[{name!r}]") for name, part in dataset.items()}
        return encode_held_out(dataset, self._encoding, self.data, what)

    def _evaluate_at_phase_end(self) -> None:
        if self.evaluator is None and self.eval_dataset is None:
            return
        # An `eval_steps` evaluation may just have run at this very step: reuse it rather than log it twice.
        if self._last_evaluation is not None and self._last_evaluation[0] == self.state.global_step:
            self.phase_metrics[self._phase] = self._last_evaluation[1]
        else:
            self.phase_metrics[self._phase] = self.evaluate()

    # ---- logging -----------------------------------------------------------------------------------------

    def _record(self, name: str, value: torch.Tensor | float, reduction: str = "mean") -> None:
        """Accumulate a metric until the next log. `reduction` says how processes combine their (step-averaged)
        values: "mean" (losses, rewards, accuracies) or "sum" (counts such as the global batch size)."""
        self._metrics[name].append(float(value.detach()) if isinstance(value, torch.Tensor) else float(value))
        if reduction == "sum":
            self._summed_metrics.add(name)

    def _log_accumulated(self) -> None:
        if not self._metrics:
            return
        names = sorted(self._metrics)
        local = torch.tensor([sum(self._metrics[n]) / len(self._metrics[n]) for n in names], device=self.args.device)
        # Global values: every process contributes its mean (same number of updates on every rank); counts add up.
        sums = self.accelerator.reduce(local, reduction="sum").tolist()
        processes = self.accelerator.num_processes
        logs = {n: sums[i] if n in self._summed_metrics else sums[i] / processes for i, n in enumerate(names)}
        logs["phase"] = PHASES[self._phase]
        self._metrics.clear()
        if "mle/loss" in logs:
            self._last_loss = logs["mle/loss"]
        if "adversarial/g_loss" in logs:
            self._last_loss = logs["adversarial/g_loss"]
        self.log(logs)
        if self.completion_logger is not None:  # log_completions: the pages and tracker tables of this step
            self.completion_logger.write(self.state.global_step, self.callback_handler.callbacks,
                                         self.is_world_process_zero(), self.run_id)


def _disable_dropout(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
