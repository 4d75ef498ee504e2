"""Saving a trained pair: the generator (and tokenizer) at the root of a folder, the discriminator in
`discriminator/`, and the distribution training sampled from beside the generator.

[`SavingMixin`] is the trainer's side of `save_model`; checkpoints (`seqgan_hf.checkpoint`) and Hub pushes
(`seqgan_hf.hub`) write through it.
"""

from __future__ import annotations

import os
import shutil

from . import parallel, run_dir
from .hub import declare_remote_code
from .sampling import TRAINING_GENERATION_CONFIG


class SavingMixin:
    """`save_model` for `SeqGANTrainer`: both models, written aside and moved into place."""

    def training_generation_config(self):
        """The distribution training samples from, as a `GenerationConfig` (written beside every saved generator as
        `training_generation_config.json`; into its `generation_config.json` with `overwrite_generation_config`)."""
        from transformers import GenerationConfig

        return GenerationConfig(
            **self.rollout_engine.distribution.generation_kwargs(), max_new_tokens=self.args.sequence_length,
            bos_token_id=self.bos_token_id, eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id,
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
        if _internal_call:  # a checkpoint: written into a temporary checkpoint folder that is renamed when complete
            self._write_models(output_dir)
            return
        # Written aside, then moved into place: a failed save leaves the previous model whole.
        staging = run_dir.staging_dir(output_dir) if self.args.should_save else os.path.join(output_dir,
                                                                                              run_dir.STAGING_DIR)
        self._write_models(staging)
        if self.args.should_save:
            run_dir.move_into_place(staging, output_dir)
        self.accelerator.wait_for_everyone()
        if self.args.push_to_hub:
            self.push_to_hub(commit_message="Model save", revision=self.args.hub_revision)

    def _write_models(self, output_dir: str) -> None:
        """The generator (and tokenizer) to `output_dir`, the discriminator to `output_dir/discriminator`."""
        fsdp2 = self._prepared and self.runtime.layout == parallel.FSDP2
        generator_code = declare_remote_code(self.model)
        if fsdp2:
            # The full weights are the replicas', current after the finite check above. (Not the Trainer's FSDP
            # save: accelerate gathers with cpu_offload=True, whose tensors safetensors rejects on CPU processes
            # with "Attempted to access the data pointer on an invalid python storage".)
            self._save(output_dir, state_dict=self.full_model("generator").state_dict())
            if self.args.should_save:
                parallel.fix_architectures(os.path.join(output_dir, "config.json"), self.model)
        else:
            super().save_model(output_dir, _internal_call=True)
        if self.args.should_save:
            # The distribution training sampled from, beside the model's own generation_config (left as given).
            self.training_generation_config().save_pretrained(output_dir, config_file_name=TRAINING_GENERATION_CONFIG)
        if self.args.should_save and generator_code is not None:
            shutil.copyfile(generator_code, os.path.join(output_dir, os.path.basename(generator_code)))
        if self.discriminator is not None:
            self._save_discriminator(output_dir, fsdp2)
        self.accelerator.wait_for_everyone()

    def _save_discriminator(self, output_dir: str, fsdp2: bool) -> None:
        """The discriminator (and its own tokenizer, if any) to `output_dir/discriminator`."""
        discriminator_code = declare_remote_code(self.discriminator)
        if fsdp2:
            discriminator_state = self.full_model("discriminator").state_dict()
        else:
            # Full (gathered) weights of D: a collective under FSDP, so every process takes part.
            wrapped = self.runtime.training_model("discriminator") if self._prepared else self.discriminator
            discriminator_state = self.accelerator.get_state_dict(wrapped)
        if not self.args.should_save:
            return
        discriminator_dir = os.path.join(output_dir, "discriminator")
        self.accelerator.unwrap_model(self.discriminator).save_pretrained(discriminator_dir, state_dict=discriminator_state)
        if fsdp2:
            parallel.fix_architectures(os.path.join(discriminator_dir, "config.json"), self.discriminator)
        if discriminator_code is not None:
            # In discriminator/ (a self-contained model folder) and at the root: transformers resolves remote
            # code at the repo root even when loading with subfolder="discriminator".
            for folder in (discriminator_dir, output_dir):
                shutil.copyfile(discriminator_code, os.path.join(folder, os.path.basename(discriminator_code)))
        if self.discriminator_processing_class is not None:
            self.discriminator_processing_class.save_pretrained(discriminator_dir)
