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

import contextlib
import copy
import logging
import math
import os
import shutil
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
from transformers.trainer_utils import TrainOutput, get_last_checkpoint, rotate_checkpoints, speed_metrics

from . import checkpoint as ckpt
from . import parallel
from .checkpoint import NonFiniteError
from .config import SeqGANConfig
from .data import MLECollator, RealSequences, encode_dataset, mask_after_eos
from .discriminator import DiscriminatorAdapter, regularization_loss
from .hub import HubMixin, HubPushError, declare_remote_code  # noqa: F401  (HubPushError: public here too)
from .prefix_scoring import PrefixSharingScorer
from .rollout import RolloutEngine

logger = logging.getLogger(__name__)

PHASES = {"mle": 1, "discriminator_pretrain": 2, "adversarial": 3}
# Offsets that give every process its own sampling and data streams, distinct from set_seed(seed)'s.
_SAMPLING_SEED_OFFSET = 104_729
_DATA_SEED_OFFSET = 1_299_709


def _load(model_or_path, auto_class, what: str):
    if isinstance(model_or_path, str | os.PathLike):
        return auto_class.from_pretrained(model_or_path)
    if not isinstance(model_or_path, nn.Module):
        raise TypeError(f"{what} must be a PreTrainedModel or a path / Hub id, got {type(model_or_path).__name__}.")
    return model_or_path


class SeqGANTrainer(HubMixin, Trainer):
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
        self.evaluator = evaluator  # read by _validate_args, during Trainer.__init__
        super().__init__(
            model=model,
            args=args,
            data_collator=MLECollator(self.bos_token_id, self.eos_token_id, self.pad_token_id),
            train_dataset=mle_dataset,
            # Held-out real data goes through the same encoding, so `eval_loss` is the per-token NLL of it.
            eval_dataset=_real_to_dataset(
                encode_dataset(eval_dataset, args.sequence_length, processing_class, self.eos_token_id, self.pad_token_id)
            ) if eval_dataset is not None else None,
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
            score_batch_size=args.score_batch_size,
        )
        # Scores rollouts on a causal critic's cached prefixes where exact (None: full forwards, via `_score`).
        # A subclass whose rewards do not come from the discriminator sets it to None.
        self.prefix_scorer: PrefixSharingScorer | None = None
        if args.critic_prefix_cache:
            self.prefix_scorer = PrefixSharingScorer(
                self.critic, lambda: self._full_model("discriminator"), lambda: self.accelerator.autocast()
            )
        # The trainer's own random streams, one pair per process: the sampling stream (sequences and rollouts)
        # and the data stream (which real sequences a D round uses, D batch order). Ranks draw different
        # samples; a checkpoint saves and restores both, with the global RNGs, for every process.
        rank = self.args.process_index
        self.sampling_generator = torch.Generator(device=self.args.device)
        self.sampling_generator.manual_seed(args.seed * 7919 + _SAMPLING_SEED_OFFSET * (rank + 1))
        self.data_generator = torch.Generator(device="cpu")
        self.data_generator.manual_seed(args.seed * 7919 + _DATA_SEED_OFFSET * (rank + 1))
        self._resume_rng: str | None = None  # checkpoint whose RNG states are restored at the resume point
        self.rollout_model: nn.Module | None = None
        self.reward_baseline: torch.Tensor | None = None
        self._metrics: dict[str, list[float]] = defaultdict(list)
        self._summed_metrics: set[str] = set()
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
        if self.is_deepspeed_enabled:
            self._check_deepspeed()
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
        self._check_launch()
        if self._is_fsdp2():
            # Full-parameter replicas of G and D (plain modules, never sharded) for everything that runs outside
            # the models' forward(): sampling, Monte Carlo rollouts (the LSTM's prefix_states/step), scoring by D,
            # evaluation, the delayed rollout policy's update, the finite check. Refreshed from the sharded
            # models after their updates (`_full_model`); no FSDP hook or collective runs inside a rollout.
            self._replicas = {
                name: copy.deepcopy(module).to(args.device).eval().requires_grad_(False)
                for name, module in (("generator", self.model), ("discriminator", self.discriminator))
            }
            self._stale = {"generator", "discriminator"}
        if args.rollout_policy == "delayed" and self.rollout_model is None:
            # Copied before prepare(): a plain module under every setup (FSDP2 shards the model in place).
            self.rollout_model = copy.deepcopy(self.model).to(args.device).eval().requires_grad_(False)
        # One model per prepare() call (FSDP2 accepts no more), each with its optimizers.
        if self.is_deepspeed_enabled:
            # One DeepSpeed engine per model, one optimizer per engine: G's engine steps `optimizer` in both of G's
            # phases; `mle_optimizer` stays a plain optimizer that is never stepped, the MLE scheduler's holder of
            # the MLE learning rate (see `_deepspeed_update`).
            self.model_wrapped, self.optimizer = self.accelerator.prepare(self.model, self.optimizer)
            self.deepspeed = self.model_wrapped  # what Trainer.save_model reads under DeepSpeed
            self.mle_optimizer._opt_called = True  # never stepped by design: no "scheduler before optimizer" warning
        else:
            self.model_wrapped, self.mle_optimizer, self.optimizer = self.accelerator.prepare(
                self.model, self.mle_optimizer, self.optimizer
            )
        self.discriminator_wrapped, self.discriminator_optimizer = self.accelerator.prepare(
            self.discriminator, self.discriminator_optimizer
        )
        self.model = self.accelerator.unwrap_model(self.model_wrapped)
        self.discriminator = self.accelerator.unwrap_model(self.discriminator_wrapped)

    def _check_deepspeed(self) -> None:
        """Refuse DeepSpeed setups the trainer does not support, before any engine is built."""
        stage = self.accelerator.state.deepspeed_plugin.zero_stage
        if stage not in (1, 2):
            raise NotImplementedError(
                f"SeqGANTrainer runs under DeepSpeed ZeRO stages 1 and 2 (ZeRO optimizer, full parameters on every "
                f"process), not {stage}: sampling, Monte Carlo rollouts and D's scoring run the models outside their "
                "engines. Use zero_stage: 2 (recipes/accelerate/deepspeed_zero2.yaml) or FSDP2 (fsdp2.yaml)."
            )
        # DeepSpeed clips inside engine.step(), at its config's gradient_clipping ("auto": filled from
        # max_grad_norm by the Trainer); a different explicit value would silently clip elsewhere than asked.
        config = self.accelerator.state.deepspeed_plugin.deepspeed_config
        clip = config.get("gradient_clipping", "auto")
        wanted = float(self.args.max_grad_norm or 0.0)
        if clip != "auto" and float(clip) != wanted:
            raise ValueError(
                f"The DeepSpeed config clips gradients at {clip} (gradient_clipping) and max_grad_norm is {wanted}: "
                "set them equal, or leave gradient_clipping out of the accelerate config to take max_grad_norm."
            )
        config["gradient_clipping"] = wanted
        if self.optimizer is not None:
            raise NotImplementedError(
                "SeqGANTrainer under DeepSpeed builds G's optimizer itself (args.optim): G's engine has one optimizer, "
                "which serves the MLE and the adversarial phase in turn. Pass optimizers=(None, None), or run without "
                "DeepSpeed."
            )

    def _check_launch(self) -> None:
        """Refuse launches that accelerate would silently run as something else than asked."""
        from accelerate.utils import DistributedType

        launched = int(os.environ.get("WORLD_SIZE", "1"))
        if (launched > 1 and self.accelerator.num_processes != launched
                and self.accelerator.distributed_type == DistributedType.DEEPSPEED):
            raise RuntimeError(
                f"{launched} processes were launched (WORLD_SIZE={launched}) but accelerate set up "
                f"{self.accelerator.num_processes} under DeepSpeed: each process would train alone. On a machine "
                "without GPUs accelerate finds no distributed backend: set ddp_backend: gloo in the recipe (or "
                "--ddp_backend gloo); not ACCELERATE_USE_CPU=1, which turns DeepSpeed off."
            )
        if launched > 1 and self.accelerator.num_processes != launched:
            # E.g. a GPU config (multi_gpu.yaml, fsdp2.yaml) launched on a machine without GPUs: torchrun starts
            # the processes, but accelerate finds no device and makes each of them a lone process 0, which would
            # all train alone and all write output_dir.
            raise RuntimeError(
                f"{launched} processes were launched (WORLD_SIZE={launched}) but accelerate set up "
                f"{self.accelerator.num_processes} ({self.accelerator.distributed_type}): each process would train "
                "alone and write the same output_dir. On a machine without GPUs launch with ACCELERATE_USE_CPU=1 "
                "(or `--cpu`) and recipes/accelerate/cpu_2proc.yaml."
            )
        if (os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
                and self.accelerator.distributed_type != DistributedType.FSDP):
            # accelerate enables FSDP only for device process groups (MULTI_GPU/XPU/NPU/...), never MULTI_CPU.
            logger.warning(
                "An FSDP accelerate config was given, but accelerate runs this launch as %s (it enables FSDP only "
                "on accelerator devices, not with ACCELERATE_USE_CPU=1): models are NOT sharded; training proceeds "
                "as plain data parallelism.", self.accelerator.distributed_type,
            )

    # ---- FSDP2: full-parameter replicas -------------------------------------------------------------------

    _replicas: dict[str, nn.Module] = {}  # replaced (never mutated) by _setup_models under FSDP2
    _stale: set[str] = set()

    def _is_fsdp2(self) -> bool:
        return bool(getattr(self.accelerator, "is_fsdp2", False))

    def _optimizer_layout(self) -> str:
        """How optimizer states and weights are laid out across processes: see `seqgan_hf.parallel`."""
        return parallel.FSDP2 if self._is_fsdp2() else parallel.DEEPSPEED if self.is_deepspeed_enabled else parallel.PLAIN

    def _full_model(self, name: str) -> nn.Module:
        """The generator ("generator") or discriminator ("discriminator") with full, current parameters.

        Without FSDP2 that is the model itself. Under FSDP2 it is a plain replica, refreshed from the sharded
        model when an update changed it since: a collective, which every process reaches at the same point
        because every process runs the same sequence of updates."""
        if not self._replicas:
            return self.model if name == "generator" else self.discriminator
        replica = self._replicas[name]
        if name in self._stale:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            sharded = self.model if name == "generator" else self.discriminator
            full = get_model_state_dict(sharded, options=StateDictOptions(full_state_dict=True))
            replica.load_state_dict(full)
            self._stale = self._stale - {name}
        return replica

    def _optimizer_state(self, model: nn.Module, optimizer) -> dict:
        """The optimizer's state for a checkpoint, in this run's layout (a collective under FSDP2 / DeepSpeed)."""
        return parallel.optimizer_state(model, optimizer, self._optimizer_layout())

    def _load_optimizer_state(self, model: nn.Module, optimizer, state: dict) -> None:
        parallel.load_optimizer_state(model, optimizer, state, self._optimizer_layout(), self.args.world_size)

    def _load_model_weights(self, model: nn.Module, folder: str) -> None:
        parallel.load_weights(model, folder, self._optimizer_layout())
        if self._replicas:
            self._stale = {"generator", "discriminator"}

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
        args = self.args
        start_time = time.time()
        self.is_in_train = True
        checkpoint = self._resolve_checkpoint(resume_from_checkpoint)
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
                with self.accelerator.autocast():
                    loss = self.compute_loss(model, batch)
                self._update(loss, model, self.mle_optimizer, self.mle_scheduler, "MLE loss")
                self._record("mle/loss", loss)
                self._record("mle/global_batch_size", batch["input_ids"].shape[0], reduction="sum")
                self.state.epoch = epoch + (step + 1) / steps_per_epoch
                self._end_unit()
                if self.control.should_training_stop:
                    return
            self.control = self.callback_handler.on_epoch_end(self.args, self.state, self.control)

    def _run_discriminator_pretraining(self) -> None:
        self._start_phase("discriminator_pretrain")
        done = max(0, self.state.global_step - self._mle_steps)
        for _ in range(done, self.args.discriminator_pretrain_rounds):
            self.control = self.callback_handler.on_step_begin(self.args, self.state, self.control)
            self._train_discriminator(self.args.discriminator_pretrain_epochs)
            self._end_unit()
            if self.control.should_training_stop:
                return

    def _run_adversarial(self) -> None:
        self._start_phase("adversarial")
        done = max(0, self.state.global_step - self._mle_steps - self.args.discriminator_pretrain_rounds)
        for _ in range(done, self.args.adversarial_iterations):
            self.control = self.callback_handler.on_step_begin(self.args, self.state, self.control)
            for _ in range(self.args.g_steps):
                self._generator_step()
            for _ in range(self.args.d_steps):
                self._train_discriminator(self.args.d_epochs)
            self._end_unit()
            if self.control.should_training_stop:
                return

    def _update(self, loss: torch.Tensor, model: nn.Module, optimizer, scheduler, what: str = "loss") -> None:
        """Backward, clip, step: one optimizer update through the accelerator.

        A non-finite loss or gradient norm stops training (`NonFiniteError`) before the optimizer steps, so
        the weights never take a non-finite value."""
        self._check_finite(what, loss)
        if self.is_deepspeed_enabled:
            self._deepspeed_update(loss, model, optimizer, scheduler, what)
            return
        self.accelerator.backward(loss)
        if self.args.max_grad_norm and self.args.max_grad_norm > 0:
            grad_norm = self.accelerator.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
        else:
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            grad_norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        try:
            self._check_finite(f"gradient norm of the {what}", grad_norm)
        except NonFiniteError:
            optimizer.zero_grad(set_to_none=True)
            raise
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if self._replicas:
            self._stale = self._stale | {"discriminator" if optimizer is self.discriminator_optimizer else "generator"}

    _generator_optimizer_phase: str | None = None  # under DeepSpeed: whose state G's engine optimizer holds

    def _deepspeed_update(self, loss: torch.Tensor, engine, optimizer, scheduler, what: str) -> None:
        """`_update` under DeepSpeed: the engine backpropagates, reduces, clips (its gradient_clipping), steps and
        zeroes the gradients.

        G's engine has one optimizer for G's two optimizers. An update for `mle_optimizer` runs it at the MLE
        scheduler's learning rate; the first update for the other one starts it from an empty state, as the
        separate adversarial optimizer starts without DeepSpeed. The two optimizers have the same class and
        settings but the learning rate (both `_make_optimizer`), so this is the same computation.
        A non-finite gradient norm makes DeepSpeed skip the step (fp32 and fp16; bf16 checks it only with
        `check_grad_overflow`); `NonFiniteError` follows, and no weights are saved after it."""
        if optimizer is not self.discriminator_optimizer:
            phase = "mle" if optimizer is self.mle_optimizer else "adversarial"
            if phase != self._generator_optimizer_phase:
                if self._generator_optimizer_phase is not None:
                    parallel.base_optimizer(self.optimizer).state.clear()
                self._generator_optimizer_phase = phase
            optimizer = self.optimizer
        # Schedulers write the learning rate into the wrapped torch optimizer's param groups (the same dicts
        # DeepSpeed steps with); the MLE scheduler writes into its own, copied here.
        for group, lr in zip(parallel.base_optimizer(optimizer).param_groups, scheduler.get_last_lr()):
            group["lr"] = lr
        engine.backward(loss)
        engine.step()
        grad_norm = engine.get_global_grad_norm()
        self._check_finite(f"gradient norm of the {what}", torch.as_tensor(float(grad_norm or 0.0)))
        scheduler.step()

    def _position(self) -> str:
        """Where training is, in words, for error messages."""
        unit = self.state.global_step + 1  # the unit in progress
        rounds = self.args.discriminator_pretrain_rounds
        mle_steps = getattr(self, "_mle_steps", 0)
        if self._phase == "mle":
            where = f"MLE batch {unit}/{mle_steps}"
        elif self._phase == "discriminator_pretrain":
            where = f"discriminator pretraining round {unit - mle_steps}/{rounds}"
        else:
            where = f"adversarial iteration {unit - mle_steps - rounds}/{self.args.adversarial_iterations}"
        return f"phase '{self._phase}', {where} (training unit {unit} of {self.state.max_steps})"

    def _check_finite(self, what: str, *tensors: torch.Tensor) -> None:
        """Raise `NonFiniteError` on every process if any process holds a NaN/inf in `tensors`."""
        bad = any(not bool(torch.isfinite(parallel.full_tensor(t.detach())).all()) for t in tensors)
        if self.args.world_size > 1:  # every process must stop together, or the others hang in a collective
            flag = torch.tensor([1.0 if bad else 0.0], device=self.accelerator.device)
            bad = bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)
        if bad:
            raise NonFiniteError(
                f"Non-finite {what} (NaN or inf) in {self._position()}; training stopped before applying it, so "
                "the weights and every checkpoint hold only finite values. Lower the learning rate, set "
                "max_grad_norm, or check the data and the discriminator's outputs; resume from the last checkpoint "
                "with train(resume_from_checkpoint=True)."
            )

    # ---- the policy-gradient step ------------------------------------------------------------------------

    def _score(self, sequences: torch.LongTensor) -> torch.Tensor:
        with self.accelerator.autocast():
            return self.critic.score(self._full_model("discriminator"), sequences)

    def _generator_step(self) -> None:
        """One REINFORCE update: sample, reward every token by Monte Carlo search, ascend log-prob * reward."""
        args = self.args
        generator = self._full_model("generator")  # full parameters for the LSTM's step/prefix_states
        generator.eval()
        with self.accelerator.autocast():
            sequences = self.rollout_engine.sample(
                generator, args.per_device_train_batch_size, generator=self.sampling_generator
            )
            policy = self.rollout_model if self.rollout_model is not None else generator
            rewards = self.rollout_engine(
                policy, sequences, self._score, generator=self.sampling_generator, prefix_scorer=self.prefix_scorer
            )
        self.model.train()
        self._check_finite("reward", rewards)
        _, keep = mask_after_eos(sequences, self.eos_token_id, self.pad_token_id)
        advantages = self._apply_baseline(rewards, keep)

        loss = self.policy_gradient_loss(self.model_wrapped, sequences, advantages, keep)
        self._update(loss, self.model_wrapped, self.optimizer, self.lr_scheduler, "policy-gradient loss")
        if self.rollout_model is not None:
            self._update_rollout_model()

        keep_f = keep.float()
        self._record("adversarial/g_loss", loss)
        self._record("adversarial/reward_mean", (rewards * keep_f).sum() / keep_f.sum())
        self._record("adversarial/reward_final", rewards[:, -1].mean())
        # Sequences in this g-step over all processes: per_device_train_batch_size * world_size.
        self._record("adversarial/global_batch_size", sequences.shape[0], reduction="sum")

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
        for rollout_param, param in zip(self.rollout_model.parameters(), self._full_model("generator").parameters()):
            rollout_param.mul_(rate).add_(param.detach(), alpha=1.0 - rate)

    # ---- the discriminator -----------------------------------------------------------------------------

    def _train_discriminator(self, epochs: int) -> None:
        """One round: fresh negatives from G plus as many real sequences, `epochs` passes of D updates."""
        args = self.args
        device = self.accelerator.device
        count = self._num_negatives()
        generator = self._full_model("generator")
        generator.eval()
        with torch.no_grad(), self.accelerator.autocast():
            negatives = torch.cat([
                self.rollout_engine.sample(
                    generator, min(args.rollout_batch_size, count - start), generator=self.sampling_generator
                )
                for start in range(0, count, args.rollout_batch_size)
            ])
        self.model.train()
        # Each process takes its own random positives: ranks see different data, as with a sharded loader.
        rng = self.data_generator
        chosen = torch.randperm(len(self.real), generator=rng)[:count] if count <= len(self.real) else torch.randint(
            len(self.real), (count,), generator=rng
        )
        positives = self.real.input_ids[chosen].to(device)
        sequences = torch.cat([positives, negatives.to(device)])
        labels = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives))]).to(device)

        discriminator = self.discriminator_wrapped
        discriminator.train()
        for _ in range(epochs):
            order = torch.randperm(len(sequences), generator=self.data_generator).to(device)
            for batch_index in order.split(args.discriminator_batch_size):
                batch_labels = labels[batch_index]
                inputs = self.critic.encode(sequences[batch_index], device)
                with self.accelerator.autocast():
                    logits = discriminator(**inputs).logits
                    # Outside forward(): under FSDP2 a sharded (DTensor) sum, made whole on every process.
                    loss = self.critic.loss(logits, batch_labels) + parallel.full_tensor(regularization_loss(self.discriminator))
                self._update(
                    loss, discriminator, self.discriminator_optimizer, self.discriminator_scheduler, "discriminator loss"
                )
                predictions = self.critic.predictions(logits.detach())
                real = batch_labels == 1
                self._record("discriminator/loss", loss)
                if real.any():
                    self._record("discriminator/accuracy_real", (predictions[real] == 1).float().mean())
                if (~real).any():
                    self._record("discriminator/accuracy_fake", (predictions[~real] == 0).float().mean())

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
        if eval_dataset is not None or self.eval_dataset is not None:
            metrics.update(super().evaluate(eval_dataset, ignore_keys, metric_key_prefix))
        if self.evaluator is not None:
            was_training = self.model.training
            generator = self._full_model("generator")
            sample_metrics = {f"{metric_key_prefix}_{name}": value for name, value in self.evaluator(generator).items()}
            self.model.train(was_training)
            sample_metrics[f"{metric_key_prefix}_phase"] = PHASES[self._phase]
            self.log(sample_metrics)
            self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, sample_metrics)
            metrics.update(sample_metrics)
        self._last_evaluation = (self.state.global_step, metrics)
        return metrics

    _last_evaluation: tuple[int, dict[str, float]] | None = None

    def _evaluate_at_phase_end(self) -> None:
        if self.evaluator is None and self.eval_dataset is None:
            return
        # An `eval_steps` evaluation may just have run at this very step: reuse it rather than log it twice.
        if self._last_evaluation is not None and self._last_evaluation[0] == self.state.global_step:
            self.phase_metrics[self._phase] = self._last_evaluation[1]
        else:
            self.phase_metrics[self._phase] = self.evaluate()

    # ---- logging, saving ---------------------------------------------------------------------------------

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

    _last_loss: float = 0.0
    _phase: str = "mle"
    _mle_steps: int = 0

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

    # ---- checkpoints -------------------------------------------------------------------------------------

    def _generators(self) -> dict[str, torch.Generator]:
        return {"sampling": self.sampling_generator, "data": self.data_generator}

    def _seqgan_state(self) -> dict:
        """Everything besides weights and RNGs that the run needs to continue (see `seqgan_hf.checkpoint`).

        Under FSDP2 the optimizer states are gathered whole (a collective: every process calls this; only the
        main process's return value holds them); under DeepSpeed, every process's ZeRO partition (a collective)."""
        return {
            "format": 1,
            "global_step": self.state.global_step,
            "phase": self._phase,
            "mle_steps": self._mle_steps,
            "discriminator_pretrain_rounds": self.args.discriminator_pretrain_rounds,
            "world_size": self.args.world_size,
            "optimizer_layout": self._optimizer_layout(),
            "generator_optimizer_phase": self._generator_optimizer_phase,
            "mle_optimizer": self._optimizer_state(self.model, self.mle_optimizer),
            "mle_scheduler": self.mle_scheduler.state_dict(),
            "optimizer": self._optimizer_state(self.model, self.optimizer),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "discriminator_optimizer": self._optimizer_state(self.discriminator, self.discriminator_optimizer),
            "discriminator_scheduler": self.discriminator_scheduler.state_dict(),
            "rollout_model": None if self.rollout_model is None else self.rollout_model.state_dict(),
            "reward_baseline": self.reward_baseline,
            "phase_metrics": self.phase_metrics,
            "last_loss": self._last_loss,
        }

    def _save_seqgan_checkpoint(self) -> None:
        """Write `checkpoint-<step>/` (see `seqgan_hf.checkpoint` for its contents); only the main process writes."""
        args = self.args
        step = self.state.global_step
        final_dir = os.path.join(args.output_dir, f"checkpoint-{step}")
        tmp_dir = ckpt.temporary_dir(args.output_dir, step)
        # Every process's RNG states, gathered to the main process, which writes them all.
        from accelerate.utils import gather_object

        rng_states = gather_object([ckpt.rng_state(self._generators())])
        self.save_model(tmp_dir, _internal_call=True)  # weights are checked finite first; ends with a barrier
        seqgan_state = self._seqgan_state()  # on every process: a collective under FSDP2
        if args.should_save:
            torch.save(seqgan_state, os.path.join(tmp_dir, ckpt.SEQGAN_STATE_NAME))
            for rank, state in enumerate(rng_states):
                torch.save(state, ckpt.rng_file(tmp_dir, rank))
            for cb in [cb for cb in self.callback_handler.callbacks + [self.control] if isinstance(cb, ExportableState)]:
                self.state.stateful_callbacks[cb.__class__.__name__] = cb.state()
            self.state.save_to_json(os.path.join(tmp_dir, "trainer_state.json"))
            ckpt.finalize(tmp_dir, final_dir)
            rotate_checkpoints(args.output_dir, args.save_total_limit)
        self.accelerator.wait_for_everyone()
        if args.push_to_hub:
            self._push_from_checkpoint(final_dir)

    def _resolve_checkpoint(self, resume_from_checkpoint: str | bool | None) -> str | None:
        if resume_from_checkpoint is None:
            # `seqgan-hf train --resume_from_checkpoint true|latest|<path>` (the TrainingArguments field).
            resume_from_checkpoint = self.args.resume_from_checkpoint
            if isinstance(resume_from_checkpoint, str) and resume_from_checkpoint.lower() in ("true", "latest"):
                resume_from_checkpoint = True
        if resume_from_checkpoint is None or resume_from_checkpoint is False or resume_from_checkpoint == "":
            return None
        if resume_from_checkpoint is True:
            found = get_last_checkpoint(self.args.output_dir) if os.path.isdir(self.args.output_dir) else None
            if found is None:
                raise ValueError(
                    f"resume_from_checkpoint=True but {self.args.output_dir} holds no checkpoint-<step> directory. "
                    "Set save_strategy='steps' and save_steps to write checkpoints, or pass a checkpoint path."
                )
            return found
        path = str(resume_from_checkpoint)
        if not os.path.isfile(os.path.join(path, ckpt.SEQGAN_STATE_NAME)):
            raise ValueError(
                f"{path} is not a SeqGANTrainer checkpoint (no {ckpt.SEQGAN_STATE_NAME}); pass a "
                f"{self.args.output_dir}/checkpoint-<step> directory or resume_from_checkpoint=True."
            )
        return path

    def _load_seqgan_checkpoint(self, checkpoint: str, mle_loader) -> None:
        """Restore models, optimizers, schedulers, progress and (now or at the resume point) RNG states."""
        with parallel.deepspeed_safe_globals() if self.is_deepspeed_enabled else contextlib.nullcontext():
            state = ckpt.load_state(os.path.join(checkpoint, ckpt.SEQGAN_STATE_NAME))
        args = self.args
        if state["mle_steps"] != self._mle_steps or state["discriminator_pretrain_rounds"] != \
                args.discriminator_pretrain_rounds:
            raise ValueError(
                f"{checkpoint} was taken with {state['mle_steps']} MLE batches and "
                f"{state['discriminator_pretrain_rounds']} discriminator pretraining rounds, but this configuration "
                f"has {self._mle_steps} and {args.discriminator_pretrain_rounds}. Resume with the configuration "
                "(mle_epochs, batch size, data, number of processes) of the interrupted run."
            )
        if state["world_size"] != args.world_size:
            logger.warning(
                "%s was written by %d processes and is resumed on %d: training continues, but not bitwise "
                "as the interrupted run would have.", checkpoint, state["world_size"], args.world_size,
            )
        layout = self._optimizer_layout()
        written = state.get("optimizer_layout", parallel.PLAIN)
        if written != layout:
            raise ValueError(
                f"{checkpoint} holds optimizer states of {parallel.LAYOUT_NAMES.get(written, written)} run, and this "
                f"is {parallel.LAYOUT_NAMES[layout]} run: resume it with the accelerate config it was written with."
            )
        self._generator_optimizer_phase = state.get("generator_optimizer_phase")
        self._load_model_weights(self.model, checkpoint)
        self._load_model_weights(self.discriminator, os.path.join(checkpoint, "discriminator"))
        self._load_optimizer_state(self.model, self.mle_optimizer, state["mle_optimizer"])
        self.mle_scheduler.load_state_dict(state["mle_scheduler"])
        self._load_optimizer_state(self.model, self.optimizer, state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        self._load_optimizer_state(self.discriminator, self.discriminator_optimizer, state["discriminator_optimizer"])
        self.discriminator_scheduler.load_state_dict(state["discriminator_scheduler"])
        if state["rollout_model"] is not None:
            if self.rollout_model is None:
                self.rollout_model = copy.deepcopy(self._full_model("generator")).eval().requires_grad_(False)
            self.rollout_model.load_state_dict(state["rollout_model"])
        baseline = state["reward_baseline"]
        self.reward_baseline = None if baseline is None else baseline.to(self.args.device)
        self.phase_metrics = dict(state["phase_metrics"])
        self._last_loss = state["last_loss"]
        self._phase = state["phase"]

        saved = TrainerState.load_from_json(os.path.join(checkpoint, "trainer_state.json"))
        for name in ("global_step", "epoch", "log_history", "total_flos", "best_metric", "best_global_step",
                     "best_model_checkpoint", "stateful_callbacks"):
            setattr(self.state, name, getattr(saved, name))
        # Mid-epoch MLE checkpoints: the RNGs are restored after the epoch's first batches are replayed, where
        # the interrupted run stood; everywhere else, right now.
        self._resume_rng = checkpoint
        global_step = self.state.global_step
        if mle_loader is not None and global_step < self._mle_steps and global_step % len(mle_loader):
            return
        self._restore_deferred_rng()

    def _restore_deferred_rng(self) -> None:
        if self._resume_rng is None:
            return
        path = ckpt.rng_file(self._resume_rng, self.args.process_index)
        self._resume_rng = None
        if not os.path.isfile(path):
            logger.warning("%s is missing: RNG states not restored, results will differ from an uninterrupted run.",
                           path)
            return
        ckpt.set_rng_state(ckpt.load_state(path), self._generators())

    # ---- saving and pushing -------------------------------------------------------------------------------

    def _check_weights_finite(self, where: str) -> None:
        bad = [f"generator.{n}" for n in ckpt.non_finite_parameters(self._full_model("generator"))]
        bad += [f"discriminator.{n}" for n in ckpt.non_finite_parameters(self._full_model("discriminator"))]
        if bad:
            raise NonFiniteError(
                f"Refusing to {where}: non-finite values in {bad[:5]}{' ...' if len(bad) > 5 else ''}. Nothing was "
                "written; the last checkpoint (if any) holds the last finite weights."
            )

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """Save the generator (and tokenizer) to `output_dir` and the discriminator to `output_dir/discriminator`.

        The paper's models (`LSTMForCausalLM`, `CNNForSequenceClassification`) are saved with their modeling
        file and an `auto_map`, so `from_pretrained(..., trust_remote_code=True)` loads them without
        `seqgan_hf`. Weights holding a NaN/inf are never written (`NonFiniteError`). Safe to call repeatedly.
        With `push_to_hub=True`, a user call (not a checkpoint) also pushes, as `Trainer.save_model` does.
        """
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        self._check_weights_finite(f"save to {output_dir}")
        generator_code = declare_remote_code(self.model)
        discriminator_code = declare_remote_code(self.discriminator)
        if self._is_fsdp2():
            # The full weights are the replicas', current after the finite check above. (Not the Trainer's FSDP
            # save: accelerate gathers with cpu_offload=True, whose tensors safetensors rejects on CPU processes
            # with "Attempted to access the data pointer on an invalid python storage".)
            self._save(output_dir, state_dict=self._full_model("generator").state_dict())
            if self.args.should_save:
                parallel.fix_architectures(os.path.join(output_dir, "config.json"), self.model)
            discriminator_state = self._full_model("discriminator").state_dict()
        else:
            super().save_model(output_dir, _internal_call=True)
            # Full (gathered) weights of D: a collective under FSDP, so every process takes part.
            discriminator_state = self.accelerator.get_state_dict(
                getattr(self, "discriminator_wrapped", self.discriminator)
            )
        if self.args.should_save:
            if generator_code is not None:
                shutil.copyfile(generator_code, os.path.join(output_dir, os.path.basename(generator_code)))
            discriminator_dir = os.path.join(output_dir, "discriminator")
            self.accelerator.unwrap_model(self.discriminator).save_pretrained(
                discriminator_dir, state_dict=discriminator_state
            )
            if self._is_fsdp2():
                parallel.fix_architectures(os.path.join(discriminator_dir, "config.json"), self.discriminator)
            if discriminator_code is not None:
                # In discriminator/ (a self-contained model folder) and at the root: transformers resolves remote
                # code at the repo root even when loading with subfolder="discriminator".
                for folder in (discriminator_dir, output_dir):
                    shutil.copyfile(discriminator_code, os.path.join(folder, os.path.basename(discriminator_code)))
            if self.discriminator_processing_class is not None:
                self.discriminator_processing_class.save_pretrained(discriminator_dir)
        self.accelerator.wait_for_everyone()
        if self.args.push_to_hub and not _internal_call:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)


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
