"""Keeping `output_dir` safe: one run per folder, one process at a time, saves that never leave half a model.

* **Run identity.** `_seqgan_run.json` names the run that owns the folder; its checkpoints carry the same id. A
  fresh run refuses a folder that holds another run's checkpoints or results (resume it, pick a new folder, or
  set `overwrite_output_dir=True`), so `resume_from_checkpoint="latest"` never picks up someone else's run.
* **Lock.** `_seqgan.lock` is held (`fcntl.flock`) by the main process for the whole of `train()`; a second
  process is refused with the holder's pid, host and start time, before it touches anything.
* **Writable.** The folder is created and test-written when the trainer is built, before any work.
* **Staged saves.** `save_model()` writes into `_tmp-save/` and then renames each entry into place, so a failed
  save (disk full, folder gone read-only) leaves the previous model intact and loadable.
* **Damaged checkpoints.** `checkpoint_problem` reads every file a resume needs; `latest` passes over a damaged
  checkpoint (with a warning naming the file) to the newest one that loads.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import socket
import uuid

logger = logging.getLogger("seqgan_hf.trainer")  # the trainer's logger: users filter one name

# A leading underscore keeps these local: Hub pushes of output_dir skip "_*".
RUN_FILE = "_seqgan_run.json"
LOCK_FILE = "_seqgan.lock"
STAGING_DIR = "_tmp-save"
CHECKPOINT_PREFIX = "checkpoint-"


class OutputDirError(RuntimeError):
    """`output_dir` cannot be used as asked: in use, holding another run, or not writable."""


def check_writable(output_dir: str) -> None:
    """Create `output_dir` if needed and write (then remove) a file in it."""
    probe = os.path.join(output_dir, f".write-test-{os.getpid()}")
    try:
        os.makedirs(output_dir, exist_ok=True)
        with open(probe, "w") as handle:
            handle.write("ok")
        os.remove(probe)
    except OSError as error:
        raise OutputDirError(
            f"output_dir {output_dir!r} is not writable ({error.strerror or error}): choose a folder you can write "
            "to (SeqGANConfig.output_dir / --output_dir)."
        ) from error


class RunLock:
    """An exclusive lock on `output_dir` for one training process (the main one), released on exit."""

    def __init__(self, output_dir: str):
        self.path = os.path.join(output_dir, LOCK_FILE)
        self.handle = None

    def acquire(self, run_id: str | None = None) -> None:
        import fcntl

        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise OutputDirError(
                f"output_dir {os.path.dirname(self.path)!r} is in use by {holder} ({LOCK_FILE}): wait for that run to "
                "end, or train into another output_dir."
            ) from None
        handle.seek(0)
        handle.truncate()
        started = datetime.datetime.now().isoformat(timespec="seconds")
        handle.write(f"process {os.getpid()} on {socket.gethostname()}, started {started}"
                     + (f", run {run_id}" if run_id else ""))
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            import fcntl

            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def checkpoints(output_dir: str) -> list[str]:
    """The `checkpoint-<step>` folders in `output_dir`, oldest first."""
    if not os.path.isdir(output_dir):
        return []
    found = [name for name in os.listdir(output_dir)
             if name.startswith(CHECKPOINT_PREFIX) and name[len(CHECKPOINT_PREFIX):].isdigit()]
    return [os.path.join(output_dir, name) for name in sorted(found, key=lambda n: int(n[len(CHECKPOINT_PREFIX):]))]


def read_run(output_dir: str) -> dict | None:
    path = os.path.join(output_dir, RUN_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {"run_id": "unreadable"}


def check_fresh(output_dir: str, overwrite: bool) -> None:
    """Refuse, without touching anything, a fresh run into a folder holding another run's checkpoints or results
    (unless `overwrite`)."""
    earlier = checkpoints(output_dir)
    if overwrite or not (earlier or read_run(output_dir)):
        return
    what = (f"checkpoints of an earlier run ({', '.join(os.path.basename(p) for p in earlier[-3:])})"
            if earlier else f"the results of an earlier run ({RUN_FILE})")
    raise OutputDirError(
        f"output_dir {output_dir!r} holds {what}. Resume it with resume_from_checkpoint=True "
        "(--resume_from_checkpoint latest), train into a new output_dir, or set overwrite_output_dir=True "
        "to delete its checkpoints and start over."
    )


def start_run(output_dir: str, resume_run_id: str | None, overwrite: bool) -> str:
    """The id of the run about to train into `output_dir`, recorded in `_seqgan_run.json`.

    A resume keeps its checkpoint's id. A fresh run refuses a folder holding another run's checkpoints or
    results, unless `overwrite` (then the earlier run's checkpoints are deleted; its saved model stays until this
    run saves its own over it)."""
    earlier = checkpoints(output_dir)
    if resume_run_id is None and (earlier or read_run(output_dir)):
        check_fresh(output_dir, overwrite)
        for path in earlier:
            shutil.rmtree(path)
        logger.warning("overwrite_output_dir: deleted %d checkpoints of the earlier run in %s.", len(earlier),
                       output_dir)
    run_id = resume_run_id or uuid.uuid4().hex
    record = {"run_id": run_id, "started": datetime.datetime.now().isoformat(timespec="seconds")}
    with open(os.path.join(output_dir, RUN_FILE), "w") as handle:
        json.dump(record, handle, indent=2)
    return run_id


#: The weights file of a peft adapter (`PeftModel.save_pretrained`).
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def checkpoint_problem(checkpoint: str, state_name: str, world_size: int) -> str | None:
    """What is wrong with `checkpoint` (the file and the problem), or None if every file a resume reads is whole.

    Weights: the safetensors header parses and the file holds every tensor it declares. `torch.save` files are
    zip archives: every member's CRC is checked (nothing is unpickled). JSON files parse."""
    import zipfile

    def weights(folder: str) -> str | None:
        single = os.path.join(folder, "model.safetensors")
        if not os.path.isfile(single) and os.path.isfile(os.path.join(folder, ADAPTER_WEIGHTS)):
            single = os.path.join(folder, ADAPTER_WEIGHTS)  # a peft generator: the adapter alone
        if not os.path.isfile(single):
            return None if os.path.isfile(single + ".index.json") else f"{single} is missing"
        try:
            size = os.path.getsize(single)
            with open(single, "rb") as raw:
                header = int.from_bytes(raw.read(8), "little")
                if not 0 < header <= size - 8:
                    return f"{single} is truncated or not a safetensors file"
                meta = json.loads(raw.read(header))
            needed = 8 + header + max((info["data_offsets"][1] for key, info in meta.items()
                                       if key != "__metadata__"), default=0)
        except (OSError, ValueError, KeyError, TypeError) as error:
            return f"{single} cannot be read ({error})"
        return f"{single} is truncated ({size} of {needed} bytes)" if needed > size else None

    problem = weights(checkpoint)
    if problem is None and os.path.isdir(os.path.join(checkpoint, "discriminator")):
        problem = weights(os.path.join(checkpoint, "discriminator"))
    if problem is not None:
        return problem
    for name in [state_name, "trainer_state.json"] + [f"rng_state_{rank}.pth" for rank in range(world_size)]:
        path = os.path.join(checkpoint, name)
        if not os.path.isfile(path):
            if name.startswith("rng_state_"):
                continue  # a missing RNG file only costs bitwise equality (warned at resume)
            return f"{path} is missing"
        try:
            if name.endswith(".json"):
                with open(path) as handle:
                    json.load(handle)
            else:
                with zipfile.ZipFile(path) as archive:
                    bad = archive.testzip()
                if bad is not None:
                    return f"{path} is damaged (member {bad} fails its checksum)"
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            return f"{path} cannot be read ({type(error).__name__}: {error})"
    return None


def staging_dir(output_dir: str) -> str:
    """An empty folder inside `output_dir` to save into before the files move into place."""
    path = os.path.join(output_dir, STAGING_DIR)
    if os.path.isdir(path):
        shutil.rmtree(path)
    return path


def move_into_place(staging: str, output_dir: str) -> None:
    """Move everything `staging` holds into `output_dir`, replacing what is there, then remove `staging`.

    Every entry is complete before the first move: a save that fails while writing (disk full) never gets here
    and leaves the previous model untouched. Files are replaced with `os.replace` (atomic on one filesystem);
    folders (`discriminator/`) are swapped in with two renames."""
    for name in sorted(os.listdir(staging)):
        source, target = os.path.join(staging, name), os.path.join(output_dir, name)
        if os.path.isdir(source):
            old = target + ".old"
            if os.path.isdir(old):
                shutil.rmtree(old)
            if os.path.isdir(target):
                os.replace(target, old)
            os.replace(source, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(source, target)
    os.rmdir(staging)
