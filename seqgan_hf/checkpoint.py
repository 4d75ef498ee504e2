"""Checkpoints of `SeqGANTrainer`: what a checkpoint holds, writing it atomically, resuming from it.

A checkpoint `output_dir/checkpoint-<global_step>/` holds:

* the generator (and its tokenizer) at its root and the discriminator under `discriminator/`, exactly as
  `save_model` writes them (so a checkpoint is itself a loadable model);
* `seqgan_state.pt`: phase and position in it, both optimizers and schedulers of the generator (MLE and
  adversarial), the discriminator's optimizer and scheduler, the delayed rollout policy (if used), the moving
  reward baseline (if used), and the metrics evaluated at the end of each phase. Under FSDP2 the optimizer
  states are gathered whole from every process (keyed by parameter name) and each process takes back its shard
  on resume;
* `rng_state_<rank>.pth` for every process: Python, NumPy, torch CPU (and CUDA) RNG states and the trainer's
  own sampling / data RNGs. All of it is gathered to, and written by, the main process only;
* `trainer_state.json` (the Trainer's `TrainerState`, log history included).

The trainer keeps no negatives buffer: every discriminator round draws fresh negatives from G, so a checkpoint
needs none. A checkpoint is written to `tmp-checkpoint-<step>/` and renamed into place once complete, so a
process killed while saving leaves the previous checkpoint as the latest complete one.

[`CheckpointMixin`] holds the trainer's side: saving, finding and loading checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil

import numpy as np
import torch

from . import parallel

logger = logging.getLogger("seqgan_hf.trainer")  # the trainer's logger: users filter one name

SEQGAN_STATE_NAME = "seqgan_state.pt"
TMP_PREFIX = "tmp-checkpoint-"


class NonFiniteError(RuntimeError):
    """A loss, reward or weight became NaN or infinite; raised before anything non-finite is applied or saved."""


def rng_state(rngs: dict[str, torch.Generator]) -> dict:
    """This process's RNG states: Python, NumPy, torch CPU (+ CUDA) and the named torch RNGs."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (kind, keys.tolist(), position, has_gauss, cached),
        "cpu": torch.random.get_rng_state(),
        "rngs": {name: rng.get_state() for name, rng in rngs.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict, rngs: dict[str, torch.Generator]) -> None:
    """Restore what `rng_state` captured (on the process that is to continue from it)."""
    random.setstate(_as_python_state(state["python"]))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.random.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
    saved = state.get("rngs", state.get("generators", {}))  # "generators": checkpoints before 0.2
    for name, rng in rngs.items():
        if name in saved:
            rng.set_state(saved[name].to(rng.get_state().device))


def _as_python_state(state):
    # torch.save / torch.load(weights_only=True) turns the tuple of ints into lists: random.setstate needs tuples.
    version, internal, gauss = state
    return (version, tuple(internal), gauss)


def rng_file(checkpoint_dir: str, process_index: int) -> str:
    return os.path.join(checkpoint_dir, f"rng_state_{process_index}.pth")


def temporary_dir(output_dir: str, step: int) -> str:
    return os.path.join(output_dir, f"{TMP_PREFIX}{step}")


def finalize(tmp_dir: str, final_dir: str) -> None:
    """Move a completely written checkpoint into place (atomic rename on one filesystem)."""
    if os.path.isdir(final_dir):
        shutil.rmtree(final_dir)
    os.replace(tmp_dir, final_dir)


def remove_stale_temporaries(output_dir: str) -> None:
    """Remove half-written checkpoints left by a killed run."""
    if not os.path.isdir(output_dir):
        return
    for name in os.listdir(output_dir):
        if name.startswith(TMP_PREFIX):
            shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)


def non_finite_parameters(module: torch.nn.Module) -> list[str]:
    """Names of parameters (and floating buffers) holding a NaN or an infinity."""
    bad = []
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad.append(name)
    return bad


def checkpoint_run_id(checkpoint: str) -> str | None:
    """The id of the run that wrote `checkpoint` (None for checkpoints written before runs had ids)."""
    try:
        with parallel.deepspeed_safe_globals() if _has_deepspeed() else contextlib.nullcontext():
            return load_state(os.path.join(checkpoint, SEQGAN_STATE_NAME)).get("run_id")
    except Exception:  # noqa: BLE001 (checked whole by `_resolve_checkpoint`; any failure: treat as unknown)
        return None


def _has_deepspeed() -> bool:
    import importlib.util

    return importlib.util.find_spec("deepspeed") is not None


def load_state(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


class CheckpointMixin:
    """The checkpoint side of [`~seqgan_hf.SeqGANTrainer`] (mixed in before `transformers.Trainer`)."""

    def _rngs(self) -> dict[str, torch.Generator]:
        return {"sampling": self.sampling_rng, "data": self.data_rng}

    def _optimizer_names(self) -> list[str]:
        return ["mle", "generator"] + (["discriminator"] if self.discriminator is not None else [])

    def _check_weights_finite(self, where: str) -> None:
        bad = [f"generator.{n}" for n in non_finite_parameters(self.full_model("generator"))]
        if self.discriminator is not None:
            bad += [f"discriminator.{n}" for n in non_finite_parameters(self.full_model("discriminator"))]
        if bad:
            raise NonFiniteError(
                f"Refusing to {where}: non-finite values in {bad[:5]}{' ...' if len(bad) > 5 else ''}. Nothing was "
                "written; the last checkpoint (if any) holds the last finite weights."
            )

    def _seqgan_state(self) -> dict:
        """Everything besides weights and RNGs that the run needs to continue.

        Under FSDP2 the optimizer states are gathered whole (a collective: every process calls this; only the
        main process's return value holds them); under DeepSpeed, every process's ZeRO partition (a collective)."""
        runtime, algorithm = self.runtime, self.algorithm
        state = {
            "format": 1,
            "global_step": self.state.global_step,
            "phase": self._phase,
            "mle_steps": self._mle_steps,
            "discriminator_pretrain_rounds": self.args.discriminator_pretrain_rounds,
            "world_size": self.args.world_size,
            "optimizer_layout": runtime.layout,
            **runtime.state(),
            "rollout_model": None if algorithm.rollout_model is None else algorithm.rollout_model.state_dict(),
            "reference_model": None if algorithm.reference_model is None else algorithm.reference_model.state_dict(),
            "reward_baseline": algorithm.baseline.value,
            "phase_metrics": self.phase_metrics,
            "last_loss": self._last_loss,
            "run_id": self.run_id,
            "settings": self._result_settings(),
        }
        for name in self._optimizer_names():
            state[_OPTIMIZER_KEYS[name]] = runtime.optimizer_state(name)
            state[_SCHEDULER_KEYS[name]] = runtime.schedulers[name].state_dict()
        return state

    def _save_seqgan_checkpoint(self) -> None:
        """Write `checkpoint-<step>/` (see the module docstring for its contents); only the main process writes."""
        from accelerate.utils import gather_object
        from transformers.trainer_callback import ExportableState
        from transformers.trainer_utils import rotate_checkpoints

        args = self.args
        step = self.state.global_step
        final_dir = os.path.join(args.output_dir, f"checkpoint-{step}")
        tmp_dir = temporary_dir(args.output_dir, step)
        # Every process's RNG states, gathered to the main process, which writes them all.
        rng_states = gather_object([rng_state(self._rngs())])
        self.save_model(tmp_dir, _internal_call=True)  # weights are checked finite first; ends with a barrier
        seqgan_state = self._seqgan_state()  # on every process: a collective under FSDP2
        if args.should_save:
            torch.save(seqgan_state, os.path.join(tmp_dir, SEQGAN_STATE_NAME))
            for rank, state in enumerate(rng_states):
                torch.save(state, rng_file(tmp_dir, rank))
            for cb in [cb for cb in self.callback_handler.callbacks + [self.control] if isinstance(cb, ExportableState)]:
                self.state.stateful_callbacks[cb.__class__.__name__] = cb.state()
            self.state.save_to_json(os.path.join(tmp_dir, "trainer_state.json"))
            finalize(tmp_dir, final_dir)
            rotate_checkpoints(args.output_dir, args.save_total_limit)
        self.accelerator.wait_for_everyone()
        if args.push_to_hub:
            self._push_from_checkpoint(final_dir)

    def _resolve_checkpoint(self, resume_from_checkpoint: str | bool | None) -> str | None:
        """The checkpoint to resume from: a path (checked whole), or with True/"latest" the newest checkpoint in
        `output_dir` whose files are all whole (damaged ones are passed over with a warning naming the file)."""
        from .run_dir import checkpoint_problem, checkpoints

        if resume_from_checkpoint is None:
            # `seqgan-hf train --resume_from_checkpoint true|latest|<path>` (the TrainingArguments field).
            resume_from_checkpoint = self.args.resume_from_checkpoint
            if isinstance(resume_from_checkpoint, str) and resume_from_checkpoint.lower() in ("true", "latest"):
                resume_from_checkpoint = True
        if resume_from_checkpoint is None or resume_from_checkpoint is False or resume_from_checkpoint == "":
            return None
        world_size = self.args.world_size
        if resume_from_checkpoint is True:
            found = checkpoints(self.args.output_dir)
            if not found:
                raise ValueError(
                    f"resume_from_checkpoint=True but {self.args.output_dir} holds no checkpoint-<step> directory. "
                    "Set save_strategy='steps' and save_steps to write checkpoints, or pass a checkpoint path."
                )
            problems = []
            for path in reversed(found):
                problem = checkpoint_problem(path, SEQGAN_STATE_NAME, world_size)
                if problem is None:
                    if problems:
                        logger.warning("Resuming from %s: the newer checkpoints are damaged (%s).", path,
                                       "; ".join(problems))
                    return path
                problems.append(problem)
            raise ValueError(f"resume_from_checkpoint=True but every checkpoint in {self.args.output_dir} is damaged: "
                             f"{'; '.join(problems)}. Start a new run (another output_dir).")
        path = str(resume_from_checkpoint)
        if not os.path.isfile(os.path.join(path, SEQGAN_STATE_NAME)):
            raise ValueError(
                f"resume_from_checkpoint={path!r} is not a SeqGANTrainer checkpoint (no {SEQGAN_STATE_NAME}); pass a "
                f"{self.args.output_dir}/checkpoint-<step> directory or resume_from_checkpoint=True."
            )
        problem = checkpoint_problem(path, SEQGAN_STATE_NAME, world_size)
        if problem is not None:
            raise ValueError(f"resume_from_checkpoint={path!r} is damaged: {problem}. Resume from an earlier "
                             "checkpoint, or with resume_from_checkpoint=True (the newest whole one).")
        return path

    def _load_seqgan_checkpoint(self, checkpoint: str, mle_loader) -> None:
        """Restore models, optimizers, schedulers, progress and (now or at the resume point) RNG states."""
        from transformers import TrainerState

        runtime, algorithm = self.runtime, self.algorithm
        deepspeed = runtime.layout == parallel.DEEPSPEED
        with parallel.deepspeed_safe_globals() if deepspeed else contextlib.nullcontext():
            state = load_state(os.path.join(checkpoint, SEQGAN_STATE_NAME))
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
        self._check_settings(checkpoint, state.get("settings"))
        written = state.get("optimizer_layout", parallel.PLAIN)
        if written != runtime.layout:
            raise ValueError(
                f"{checkpoint} holds optimizer states of {parallel.LAYOUT_NAMES.get(written, written)} run, and this "
                f"is {parallel.LAYOUT_NAMES[runtime.layout]} run: resume it with the accelerate config it was "
                "written with."
            )
        runtime.load_state(state)
        runtime.load_weights("generator", checkpoint)
        if self.discriminator is not None:
            runtime.load_weights("discriminator", os.path.join(checkpoint, "discriminator"))
        for name in self._optimizer_names():
            runtime.load_optimizer_state(name, state[_OPTIMIZER_KEYS[name]])
            runtime.schedulers[name].load_state_dict(state[_SCHEDULER_KEYS[name]])
        if (state["rollout_model"] is None) != (algorithm.rollout_model is None):
            raise ValueError(
                f"{checkpoint} was taken with rollout_policy="
                f"{'generator' if state['rollout_model'] is None else 'delayed'!r}, and this run has "
                f"{args.rollout_policy!r}: resume with the rollout policy of the interrupted run."
            )
        if state["rollout_model"] is not None:
            algorithm.rollout_model.load_state_dict(state["rollout_model"])
        if state.get("reference_model") is not None:  # taken as adversarial training started: restore it
            algorithm.start_reference_policy(runtime.full_model("generator"))
            algorithm.reference_model.load_state_dict(state["reference_model"])
        baseline = state["reward_baseline"]
        algorithm.baseline.value = None if baseline is None else baseline.to(args.device)
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

    def _result_settings(self) -> dict:
        """Everything that changes results and must not change on resume (see `RESUME_SAFE` for what may)."""
        args = self.args
        settings = {name: _plain(getattr(args, name)) for name in RESUME_CHECKED}
        settings["generator"] = _shapes(self.model)
        settings["discriminator"] = _shapes(self.discriminator) if self.discriminator is not None else None
        settings["num_real_sequences"] = len(self.real)
        settings["reward"] = getattr(self.reward, "name", None)
        return settings

    def _check_settings(self, checkpoint: str, saved: dict | None) -> None:
        """Refuse a resume whose result-changing settings differ from the checkpoint's, listing old vs new."""
        if saved is None:  # written before settings were recorded
            logger.warning("%s records no settings: cannot check that this run's settings match it.", checkpoint)
            return
        current = self._result_settings()
        changed = [name for name in current if name in saved and saved[name] != current[name]]
        if changed:
            details = "; ".join(_difference(name, saved[name], current[name]) for name in changed)
            raise ValueError(
                f"{checkpoint} was written with other settings than this run's ({details}). A resume continues the "
                "same run: use the interrupted run's settings, or start a new run in another output_dir. Safe to "
                f"change on resume: {', '.join(RESUME_SAFE)}."
            )

    def _restore_deferred_rng(self) -> None:
        if self._resume_rng is None:
            return
        path = rng_file(self._resume_rng, self.args.process_index)
        self._resume_rng = None
        if not os.path.isfile(path):
            logger.warning("%s is missing: RNG states not restored, results will differ from an uninterrupted run.",
                           path)
            return
        set_rng_state(load_state(path), self._rngs())


# Names in `seqgan_state.pt` of each optimizer's state and its scheduler's (kept from the first format).
_OPTIMIZER_KEYS = {"mle": "mle_optimizer", "generator": "optimizer", "discriminator": "discriminator_optimizer"}
_SCHEDULER_KEYS = {"mle": "mle_scheduler", "generator": "lr_scheduler", "discriminator": "discriminator_scheduler"}


#: Settings compared on resume (besides model shapes, the data size and the reward): any difference is refused.
RESUME_CHECKED = (
    "sequence_length", "temperature", "top_k", "top_p", "bos_token_id", "disable_dropout", "sequence_overflow", "seed",
    "append_eos", "max_prompt_length", "prompt_overflow", "reward_stride",
    "per_device_train_batch_size", "learning_rate", "mle_learning_rate", "lr_scheduler_type", "lr_scheduler_kwargs",
    "warmup_steps", "weight_decay", "optim", "optim_args", "adam_beta1", "adam_beta2", "adam_epsilon",
    "max_grad_norm", "mle_epochs", "discriminator_pretrain_rounds", "discriminator_pretrain_epochs",
    "num_negatives", "discriminator_learning_rate", "discriminator_weight_decay", "discriminator_batch_size",
    "discriminator_max_length", "g_steps", "d_steps", "d_epochs", "rollout_num", "rollout_policy",
    "rollout_update_rate", "reward_baseline", "baseline_decay", "reward_weights", "beta", "bf16", "fp16",
    "gradient_accumulation_steps", "average_tokens_across_devices",
)
#: Settings that may change on resume: they change neither the models' path nor the data.
RESUME_SAFE = (
    "adversarial_iterations (to extend training)", "output and logging settings (logging_steps, eval_steps, "
    "save_steps, save_total_limit, report_to, disable_tqdm)", "push_to_hub and hub_* settings",
    "rollout_batch_size and score_batch_size (memory only)", "discriminator_prefix_cache (speed only)",
    "dataloader_num_workers",
)


def _plain(value):
    """A setting as plain JSON-like data (enums by value), comparable across processes and versions."""
    value = getattr(value, "value", value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _shapes(model) -> dict[str, list[int]]:
    """Parameter names and shapes of a model (under FSDP2 the full shapes)."""
    return {name: list(param.shape) for name, param in model.state_dict().items()}  # a DTensor's shape is whole


def _difference(name: str, old, new) -> str:
    """`name: old -> new`, for model shapes the first tensor that differs."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return f"{name} shape of {key}: {old.get(key, 'absent')} -> {new.get(key, 'absent')}"
    return f"{name}: {old!r} -> {new!r}"
