"""Pushing a SeqGAN run to the Hub: both models, their code, a model card, and failures that never lose work.

[`HubMixin`] holds `SeqGANTrainer`'s overrides of the Trainer's Hub methods (`push_to_hub`,
`create_model_card`, `_push_from_checkpoint`); `declare_remote_code` makes the paper's models loadable with
`trust_remote_code=True` by someone without `seqgan_hf`.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from concurrent.futures import Future
from pathlib import Path

from torch import nn

from . import checkpoint as ckpt
from . import parallel

logger = logging.getLogger("seqgan_hf.trainer")  # the trainer's logger: users filter one name


class HubPushError(RuntimeError):
    """Pushing to the Hub failed; the local output directory is left as it was."""


class HubMixin:
    """The Hub side of [`~seqgan_hf.SeqGANTrainer`] (mixed in before `transformers.Trainer`).

    `output_dir` holds the generator (and tokenizer) at its root and the discriminator under `discriminator/`;
    pushes upload that folder, so the repo has the same layout.
    """

    _model_card_kwargs: dict = {}  # replaced (never mutated) by push_to_hub

    def push_to_hub(self, commit_message: str | None = "End of training", blocking: bool = True, token: str | None = None,
                    revision: str | None = None, private: bool | None = None, **kwargs):
        """Push the generator and tokenizer (repo root), the discriminator (`discriminator/`) and a model card
        generated from the run. Safe to call repeatedly (unchanged files are not re-sent). A failed push raises
        `HubPushError` and leaves `output_dir` as saved; call `push_to_hub()` again to retry.

        With `blocking=False` the upload runs in the background and a `concurrent.futures.Future` is returned:
        its `result()` is the commit, or raises `HubPushError` if the upload failed (the failure is also logged as
        a warning, so it is never silent when nobody waits on the future). The next push waits for it.

        `kwargs` go to `create_model_card` (e.g. `dataset=`, `license=`, `tags=`, `language=`); they are
        remembered, so later pushes (checkpoints, `save_model`) write the same card."""
        kwargs = {**self._model_card_kwargs, **kwargs}
        self._model_card_kwargs = dict(kwargs)
        try:
            pushed = super().push_to_hub(
                commit_message=commit_message, blocking=blocking, token=token, revision=revision, private=private,
                **kwargs,
            )
        except (OSError, ValueError) as err:  # HfHubHTTPError is an OSError (requests' HTTPError)
            raise HubPushError(self._push_failure_message(err)) from err
        if isinstance(pushed, Future):  # blocking=False, on the process that pushes
            return self._watch_push(pushed)
        return pushed

    def _watch_push(self, upload: Future) -> Future:
        """A future mirroring a background `upload`, whose failure is logged and becomes a `HubPushError`. It is
        registered as the push in progress, so the Trainer's next push waits for it."""
        from transformers.utils.hub import PushInProgress

        watched: Future = Future()

        def settle(done: Future) -> None:
            if done.cancelled():
                watched.cancel()
                return
            err = done.exception()
            if err is None:
                watched.set_result(done.result())
                return
            message = self._push_failure_message(err)
            logger.warning("Background push failed. %s", message)
            failure = HubPushError(message)
            failure.__cause__ = err
            watched.set_exception(failure)

        upload.add_done_callback(settle)
        in_progress = getattr(self, "push_in_progress", None)
        if in_progress is None or in_progress.is_done():
            self.push_in_progress = PushInProgress([watched])
        else:
            in_progress.jobs.append(watched)
        return watched

    def _push_failure_message(self, err: Exception) -> str:
        from huggingface_hub import constants

        repo = getattr(self, "hub_model_id", None) or self.args.hub_model_id
        return (
            f"Pushing {self.args.output_dir} to the Hub repo {repo!r} at {constants.ENDPOINT} failed: {err}. The "
            f"local output is intact (generator in {self.args.output_dir}, discriminator in "
            f"{os.path.join(self.args.output_dir, 'discriminator')}); retry with trainer.push_to_hub()."
        )

    def create_model_card(self, language=None, license=None, tags=None, model_name=None, finetuned_from=None,
                          tasks=None, dataset_tags=None, dataset=None, dataset_args=None, **kwargs) -> None:
        """Write `output_dir/README.md`: the SeqGAN model card (phases, configuration, metrics, citation)."""
        if not self.is_world_process_zero():
            return
        from .model_card import build_model_card

        name_or_path = finetuned_from or getattr(self.model.config, "_name_or_path", "") or ""
        base_model = name_or_path if name_or_path and not os.path.exists(name_or_path) and \
            not name_or_path.startswith((".", "/", "~")) else None
        replicas = getattr(self.runtime, "replicas", {})
        card = build_model_card(
            model_name=model_name or Path(self.args.output_dir).name,
            # Under FSDP2 the replicas (their class is the model's own, not FSDP's; no collective needed here).
            generator=replicas.get("generator", self.model),
            discriminator=replicas.get("discriminator", self.discriminator),
            reward_name=getattr(self.reward, "name", None),
            args=self.args,
            phase_metrics=self.phase_metrics,
            base_model=base_model,
            dataset=dataset or dataset_tags,
            dataset_description=self._dataset_description(),
            num_train_sequences=len(self.real),
            trust_remote_code=declare_remote_code(self.model) is not None,
            global_step=self.state.global_step if self.state is not None else None,
            license=license,
            language=language,
            tags=[tags] if isinstance(tags, str) else tags,
            repo_id=getattr(self, "hub_model_id", None) or self.args.hub_model_id,
            adapter=_adapter_facts(self.model),
        )
        os.makedirs(self.args.output_dir, exist_ok=True)
        card.save(os.path.join(self.args.output_dir, "README.md"))

    def _dataset_description(self) -> str | None:
        from .oracle import OracleEvaluator

        if isinstance(self.evaluator, OracleEvaluator):
            config = self.evaluator.task.oracle.config
            return (f"samples of a randomly initialised oracle LSTM (vocabulary {config.vocab_size}, hidden size "
                    f"{config.hidden_dim}, length {self.args.sequence_length}): SeqGAN's synthetic benchmark")
        return None

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """`hub_strategy` "every_save" / "checkpoint" / "all_checkpoints": push the checkpoint's models (both),
        code and tokenizer with a fresh model card; for the last two also the checkpoint itself (as
        `last-checkpoint/` or `checkpoint-<step>/`).

        The push runs on the main process while training waits. A failed push does not stop training (as with
        transformers' background pushes; on several processes, stopping the main one alone would leave the others
        waiting in a collective): it is logged as a warning, the checkpoint and `output_dir` stay intact locally,
        and the next checkpoint push or `push_to_hub()` uploads the current files."""
        from transformers.trainer_utils import HubStrategy

        if not self.is_world_process_zero() or self.args.hub_strategy == HubStrategy.END:
            return
        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        output_dir = self.args.output_dir
        for name in os.listdir(checkpoint_folder):
            if name in (ckpt.SEQGAN_STATE_NAME, "trainer_state.json") or name.startswith("rng_state_"):
                continue
            source, target = os.path.join(checkpoint_folder, name), os.path.join(output_dir, name)
            if os.path.isdir(source):
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                shutil.copyfile(source, target)
        self.create_model_card(**{
            "model_name": (self.args.hub_model_id or Path(output_dir).name).split("/")[-1], **self._model_card_kwargs
        })
        api = _hf_api()
        message = f"Training in progress, step {self.state.global_step}"
        try:
            api.upload_folder(
                repo_id=self.hub_model_id, folder_path=output_dir, commit_message=message, token=self.args.hub_token,
                ignore_patterns=["_*", "checkpoint-*", f"{ckpt.TMP_PREFIX}*"], revision=self.args.hub_revision,
            )
            if self.args.hub_strategy in (HubStrategy.CHECKPOINT, HubStrategy.ALL_CHECKPOINTS):
                path_in_repo = ("last-checkpoint" if self.args.hub_strategy == HubStrategy.CHECKPOINT
                                else Path(checkpoint_folder).name)
                api.upload_folder(
                    repo_id=self.hub_model_id, folder_path=checkpoint_folder, path_in_repo=path_in_repo,
                    commit_message=message + ", checkpoint", token=self.args.hub_token,
                    revision=self.args.hub_revision,
                )
        except (OSError, ValueError) as err:
            logger.warning(
                "Pushing %s (step %d) to the Hub failed; training continues. %s", checkpoint_folder,
                self.state.global_step, self._push_failure_message(err),
            )


def _hf_api():
    try:
        from transformers.utils.hub import hf_api

        return hf_api()
    except ImportError:  # older transformers
        from huggingface_hub import HfApi

        return HfApi()


def declare_remote_code(model: nn.Module) -> str | None:
    """For the paper's models: set `config.auto_map` (Auto class -> `<file>.<class>`) and return the modeling
    file to ship next to the weights, so `trust_remote_code=True` loads them without `seqgan_hf`. The modeling
    files import only torch, numpy and transformers."""
    from .models import CNNForSequenceClassification, LSTMForCausalLM

    auto_classes = {LSTMForCausalLM: "AutoModelForCausalLM", CNNForSequenceClassification: "AutoModelForSequenceClassification"}
    model = getattr(model, "module", model)
    model_class = parallel.model_class(model)
    auto_class = auto_classes.get(model_class)
    if auto_class is None:
        return None
    source = sys.modules[model_class.__module__].__file__
    stem = Path(source).stem
    model.config.auto_map = {
        "AutoConfig": f"{stem}.{type(model.config).__name__}",
        auto_class: f"{stem}.{model_class.__name__}",
    }
    return source


def _adapter_facts(model) -> dict | None:
    """For a peft generator: its adapter type and the base model it was built on (None otherwise)."""
    peft_config = getattr(model, "peft_config", None)
    if not isinstance(peft_config, dict) or not peft_config:
        return None
    config = next(iter(peft_config.values()))
    adapter_type = getattr(config, "peft_type", "adapter")
    return {"type": getattr(adapter_type, "value", adapter_type), "base": config.base_model_name_or_path}

