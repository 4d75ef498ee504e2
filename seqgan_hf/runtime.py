"""The runtime: where the generator and discriminator live, and how they are updated, under every launch setup.

`SeqGANTrainer` picks one `Runtime` at setup (`select_runtime`) and the algorithm (`seqgan_hf.algorithm`) only
talks to it. It covers:

* [`Runtime`]: one process or DDP: every process holds whole models; the Trainer's accelerator wraps them;
* [`FSDP2Runtime`]: `fully_shard`: parameters are sharded; sampling, rollouts, scoring and evaluation run on
  full-parameter replicas refreshed after each update;
* [`DeepSpeedRuntime`]: ZeRO-1/2: one engine per model, one optimizer per engine (G's engine steps the MLE and
  the adversarial optimizer in turn).

Each one gives: `prepare` (wrap the models and their optimizers), the model views (`training_model`, `model`,
`full_model`), one update (`step`), the non-finite guard, and optimizer-state and weight I/O for checkpoints
(the layouts themselves: `seqgan_hf.parallel`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Callable, Sequence

import torch
from torch import nn

from . import parallel
from .checkpoint import NonFiniteError

logger = logging.getLogger("seqgan_hf.trainer")  # the trainer's logger: users filter one name

#: Which model each optimizer updates.
OPTIMIZER_MODELS = {"mle": "generator", "generator": "generator", "discriminator": "discriminator"}


class Runtime:
    """One process or DDP: every process holds the whole models and optimizer states.

    Args:
        accelerator: the Trainer's `accelerate.Accelerator`.
        max_grad_norm: gradient-norm clip of every update (0 or None: no clipping).
        describe_position: where training is, in words, for error messages.
    """

    layout = parallel.PLAIN

    def __init__(self, accelerator, max_grad_norm: float | None, describe_position: Callable[[], str] = str):
        self.accelerator = accelerator
        self.device = accelerator.device
        self.max_grad_norm = max_grad_norm
        self.describe_position = describe_position
        self.models: dict[str, nn.Module] = {}  # unwrapped
        self.wrapped: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict = {}

    # ---- setup ---------------------------------------------------------------------------------------

    def prepare(self, models: dict[str, nn.Module], optimizers: dict, schedulers: dict) -> None:
        """Wrap `models` ("generator", optional "discriminator") and their `optimizers` ("mle", "generator",
        "discriminator"), one model per `accelerator.prepare` call (FSDP2 accepts no more)."""
        self.schedulers = dict(schedulers)
        for name, model in models.items():
            names = [key for key, owner in OPTIMIZER_MODELS.items() if owner == name and key in optimizers]
            wrapped, *prepared = self._prepare_one(model, [optimizers[key] for key in names])
            self.wrapped[name] = wrapped
            self.models[name] = self.accelerator.unwrap_model(wrapped)
            self.optimizers.update(zip(names, prepared))

    def _prepare_one(self, model: nn.Module, optimizers: list) -> list:
        return list(self.accelerator.prepare(model, *optimizers))

    def autocast(self):
        return self.accelerator.autocast()

    # ---- model views ---------------------------------------------------------------------------------

    def training_model(self, name: str) -> nn.Module:
        """The model to run forward + backward on: wrapped for gradient synchronisation."""
        return self.wrapped[name]

    def model(self, name: str) -> nn.Module:
        """The trained model, unwrapped."""
        return self.models[name]

    def full_model(self, name: str) -> nn.Module:
        """The model with full, current parameters (here: the model itself)."""
        return self.models[name]

    # ---- one update ----------------------------------------------------------------------------------

    def step(self, optimizer_name: str, loss: torch.Tensor | Sequence[Callable[[], torch.Tensor]],
             what: str) -> torch.Tensor:
        """Backward, clip, step `optimizer_name` ("mle", "generator" or "discriminator") and its scheduler.

        `loss` is the update's loss, or (gradient accumulation) functions computing micro-batch losses that add up
        to it, each computed and backpropagated in turn (only the last one synchronises gradients across
        processes); returns the update's loss. A non-finite loss or gradient norm stops training
        (`NonFiniteError`) before the optimizer steps, so the weights never take a non-finite value."""
        model = self.wrapped[OPTIMIZER_MODELS[optimizer_name]]
        optimizer = self.optimizers[optimizer_name]
        parts = [lambda: loss] if isinstance(loss, torch.Tensor) else list(loss)
        total = torch.zeros((), device=self.device)
        for index, compute in enumerate(parts):
            last = index == len(parts) - 1
            with contextlib.nullcontext() if last else self.accelerator.no_sync(model):
                micro_loss = compute()
                try:
                    self.check_finite(what, micro_loss)
                except NonFiniteError:
                    optimizer.zero_grad(set_to_none=True)  # earlier micro-batches' gradients go too
                    raise
                # accelerate divides every backward by gradient_accumulation_steps; the micro-batch losses here
                # already add up to the update's loss, so undo it.
                self.accelerator.backward(micro_loss * self.accelerator.gradient_accumulation_steps)
            total += micro_loss.detach().float()
        if self.max_grad_norm and self.max_grad_norm > 0:
            grad_norm = self.accelerator.clip_grad_norm_(model.parameters(), self.max_grad_norm)
        else:
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            grad_norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())
        try:
            self.check_finite(f"gradient norm of the {what}", grad_norm)
        except NonFiniteError:
            optimizer.zero_grad(set_to_none=True)
            raise
        optimizer.step()
        self.schedulers[optimizer_name].step()
        optimizer.zero_grad(set_to_none=True)
        self._updated(OPTIMIZER_MODELS[optimizer_name])
        return total

    def _updated(self, name: str) -> None:
        """Hook: model `name` has new parameters."""

    def mean_over_processes(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.accelerator.reduce(tensor, reduction="mean")

    def check_finite(self, what: str, *tensors: torch.Tensor) -> None:
        """Raise `NonFiniteError` on every process if any process holds a NaN/inf in `tensors`."""
        bad = any(not bool(torch.isfinite(parallel.full_tensor(t.detach())).all()) for t in tensors)
        if self.accelerator.num_processes > 1:  # every process must stop together, or the others hang
            flag = torch.tensor([1.0 if bad else 0.0], device=self.device)
            bad = bool(self.accelerator.reduce(flag, reduction="sum").item() > 0)
        if bad:
            raise NonFiniteError(
                f"Non-finite {what} (NaN or inf) in {self.describe_position()}; training stopped before applying "
                "it, so the weights and every checkpoint hold only finite values. Lower the learning rate, set "
                "max_grad_norm, or check the data and the discriminator's outputs; resume from the last checkpoint "
                "with train(resume_from_checkpoint=True)."
            )

    # ---- checkpoints ---------------------------------------------------------------------------------

    def optimizer_state(self, optimizer_name: str) -> dict:
        """The optimizer's state for a checkpoint, in this layout (a collective under FSDP2 / DeepSpeed)."""
        model = self.models[OPTIMIZER_MODELS[optimizer_name]]
        return parallel.optimizer_state(model, self.optimizers[optimizer_name], self.layout)

    def load_optimizer_state(self, optimizer_name: str, state: dict) -> None:
        model = self.models[OPTIMIZER_MODELS[optimizer_name]]
        parallel.load_optimizer_state(model, self.optimizers[optimizer_name], state, self.layout,
                                      self.accelerator.num_processes)

    def load_weights(self, name: str, folder: str) -> None:
        """Load `save_pretrained` weights from `folder` into model `name`, in place."""
        parallel.load_weights(self.models[name], folder, self.layout)
        self._updated(name)

    def state(self) -> dict:
        """Runtime state a checkpoint keeps besides optimizer states (none here)."""
        return {}

    def load_state(self, state: dict) -> None:
        pass


class FSDP2Runtime(Runtime):
    """FSDP2 (`fully_shard`): parameters and optimizer states are sharded DTensors.

    Everything that runs outside the models' forward() (sampling, Monte Carlo rollouts with the LSTM's
    prefix_states/step, scoring by D, evaluation, the delayed rollout policy's update, the finite check) uses
    full-parameter replicas: plain modules, never sharded, refreshed from the sharded models after their updates.
    No FSDP hook or collective runs inside a rollout."""

    layout = parallel.FSDP2

    def prepare(self, models, optimizers, schedulers) -> None:
        self.replicas = {
            name: copy.deepcopy(module).to(self.device).eval().requires_grad_(False)
            for name, module in models.items()
        }
        self.stale = set(models)
        super().prepare(models, optimizers, schedulers)

    def full_model(self, name: str) -> nn.Module:
        """A plain replica, refreshed from the sharded model when an update changed it since: a collective,
        which every process reaches at the same point because every process runs the same updates."""
        replica = self.replicas[name]
        if name in self.stale:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            full = get_model_state_dict(self.models[name], options=StateDictOptions(full_state_dict=True))
            replica.load_state_dict(full)
            self.stale = self.stale - {name}
        return replica

    def _updated(self, name: str) -> None:
        self.stale = self.stale | {name}


class DeepSpeedRuntime(Runtime):
    """DeepSpeed ZeRO-1/2: one engine per model, one optimizer per engine.

    G's engine has one optimizer for G's two: an update for "mle" runs it at the MLE scheduler's learning rate;
    the first update for "generator" starts it from an empty state, as the separate adversarial optimizer starts
    without DeepSpeed. The two optimizers have the same class and settings but the learning rate, so this is the
    same computation. The "mle" optimizer stays a plain optimizer that is never stepped: the MLE scheduler's
    holder of the MLE learning rate."""

    layout = parallel.DEEPSPEED

    def __init__(self, accelerator, max_grad_norm, describe_position=str):
        super().__init__(accelerator, max_grad_norm, describe_position)
        self.generator_optimizer_phase: str | None = None  # whose state G's engine optimizer holds

    def check_config(self, user_optimizer: bool) -> None:
        """Refuse DeepSpeed setups the trainer does not support, before any engine is built."""
        stage = self.accelerator.state.deepspeed_plugin.zero_stage
        if stage not in (1, 2):
            raise NotImplementedError(
                f"SeqGANTrainer runs under DeepSpeed ZeRO stages 1 and 2 (ZeRO optimizer, full parameters on every "
                f"process), not {stage}: sampling, Monte Carlo rollouts and D's scoring run the models outside their "
                "engines. Use zero_stage: 2 (recipes/accelerate/deepspeed_zero2.yaml) or FSDP2 (fsdp2.yaml)."
            )
        if self.accelerator.gradient_accumulation_steps > 1:
            raise NotImplementedError(
                "SeqGANConfig.gradient_accumulation_steps > 1 is not supported under DeepSpeed (its engines count "
                "micro-steps themselves, and a discriminator round's last update can have fewer micro-batches). "
                "Launch without DeepSpeed (DDP or FSDP2 accumulate), or raise the per-device batch sizes."
            )
        # DeepSpeed clips inside engine.step(), at its config's gradient_clipping ("auto": filled from
        # max_grad_norm by the Trainer); a different explicit value would silently clip elsewhere than asked.
        config = self.accelerator.state.deepspeed_plugin.deepspeed_config
        clip = config.get("gradient_clipping", "auto")
        wanted = float(self.max_grad_norm or 0.0)
        if clip != "auto" and float(clip) != wanted:
            raise ValueError(
                f"The DeepSpeed config clips gradients at {clip} (gradient_clipping) and max_grad_norm is {wanted}: "
                "set them equal, or leave gradient_clipping out of the accelerate config to take max_grad_norm."
            )
        config["gradient_clipping"] = wanted
        if user_optimizer:
            raise NotImplementedError(
                "SeqGANTrainer under DeepSpeed builds G's optimizer itself (args.optim): G's engine has one optimizer, "
                "which serves the MLE and the adversarial phase in turn. Pass optimizers=(None, None), or run without "
                "DeepSpeed."
            )

    def _prepare_one(self, model, optimizers):
        if len(optimizers) == 2:  # the generator: its engine takes the adversarial optimizer only
            mle_optimizer, optimizer = optimizers
            wrapped, optimizer = self.accelerator.prepare(model, optimizer)
            mle_optimizer._opt_called = True  # never stepped by design: no "scheduler before optimizer" warning
            return [wrapped, mle_optimizer, optimizer]
        return super()._prepare_one(model, optimizers)

    def step(self, optimizer_name: str, loss: torch.Tensor | Sequence[Callable[[], torch.Tensor]],
             what: str) -> torch.Tensor:
        """The engine backpropagates, reduces, clips (its gradient_clipping), steps and zeroes the gradients.

        A non-finite gradient norm makes DeepSpeed skip the step (fp32 and fp16; bf16 checks it only with
        `check_grad_overflow`); `NonFiniteError` follows, and no weights are saved after it. (`loss` may be one
        micro-batch loss function: gradient accumulation is refused under DeepSpeed, see `check_config`.)"""
        if not isinstance(loss, torch.Tensor):
            (compute,) = list(loss)
            loss = compute()
        self.check_finite(what, loss)
        engine = self.wrapped[OPTIMIZER_MODELS[optimizer_name]]
        scheduler = self.schedulers[optimizer_name]
        optimizer = self.optimizers[optimizer_name]
        if optimizer_name != "discriminator":
            if optimizer_name != self.generator_optimizer_phase:
                if self.generator_optimizer_phase is not None:
                    parallel.base_optimizer(self.optimizers["generator"]).state.clear()
                self.generator_optimizer_phase = optimizer_name
            optimizer = self.optimizers["generator"]
        # Schedulers write the learning rate into the wrapped torch optimizer's param groups (the same dicts
        # DeepSpeed steps with); the MLE scheduler writes into its own, copied here.
        for group, lr in zip(parallel.base_optimizer(optimizer).param_groups, scheduler.get_last_lr()):
            group["lr"] = lr
        engine.backward(loss)
        engine.step()
        grad_norm = engine.get_global_grad_norm()
        self.check_finite(f"gradient norm of the {what}", torch.as_tensor(float(grad_norm or 0.0)))
        scheduler.step()
        return loss.detach()

    def state(self) -> dict:
        return {"generator_optimizer_phase": self.generator_optimizer_phase}

    def load_state(self, state: dict) -> None:
        self.generator_optimizer_phase = state.get("generator_optimizer_phase")


def select_runtime(accelerator, max_grad_norm: float | None, describe_position: Callable[[], str],
                   user_optimizer: bool = False) -> Runtime:
    """The runtime for this launch, after refusing launches accelerate would silently run as something else."""
    _check_launch(accelerator)
    if getattr(accelerator, "is_fsdp2", False):
        return FSDP2Runtime(accelerator, max_grad_norm, describe_position)
    if accelerator.state.deepspeed_plugin is not None:
        runtime = DeepSpeedRuntime(accelerator, max_grad_norm, describe_position)
        runtime.check_config(user_optimizer)
        return runtime
    return Runtime(accelerator, max_grad_norm, describe_position)


def _check_launch(accelerator) -> None:
    from accelerate.utils import DistributedType

    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if (launched > 1 and accelerator.num_processes != launched
            and accelerator.distributed_type == DistributedType.DEEPSPEED):
        raise RuntimeError(
            f"{launched} processes were launched (WORLD_SIZE={launched}) but accelerate set up "
            f"{accelerator.num_processes} under DeepSpeed: each process would train alone. On a machine "
            "without GPUs accelerate finds no distributed backend: set ddp_backend: gloo in the recipe (or "
            "--ddp_backend gloo); not ACCELERATE_USE_CPU=1, which turns DeepSpeed off."
        )
    if launched > 1 and accelerator.num_processes != launched:
        # E.g. a GPU config (multi_gpu.yaml, fsdp2.yaml) launched on a machine without GPUs: torchrun starts
        # the processes, but accelerate finds no device and makes each of them a lone process 0, which would
        # all train alone and all write output_dir.
        raise RuntimeError(
            f"{launched} processes were launched (WORLD_SIZE={launched}) but accelerate set up "
            f"{accelerator.num_processes} ({accelerator.distributed_type}): each process would train "
            "alone and write the same output_dir. On a machine without GPUs launch with ACCELERATE_USE_CPU=1 "
            "(or `--cpu`) and recipes/accelerate/cpu_2proc.yaml."
        )
    if (os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
            and accelerator.distributed_type != DistributedType.FSDP):
        # accelerate enables FSDP only for device process groups (MULTI_GPU/XPU/NPU/...), never MULTI_CPU.
        logger.warning(
            "An FSDP accelerate config was given, but accelerate runs this launch as %s (it enables FSDP only "
            "on accelerator devices, not with ACCELERATE_USE_CPU=1): models are NOT sharded; training proceeds "
            "as plain data parallelism.", accelerator.distributed_type,
        )
