"""Tests of the offline Hub (tests/hub_server.py): Hub API calls in-process, and transformers round trips.

The transformers round trips run in subprocesses whose environment comes from ``HubServer.child_env``:
``huggingface_hub`` reads ``HF_ENDPOINT`` (and ``HF_HUB_OFFLINE``, which ``make test`` sets) at import time, so
the test process itself cannot be re-pointed at the server. Every child imports torch + transformers (a few
seconds each), so the children are few and shared through module-scoped fixtures.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, hf_hub_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors.torch import load, load_file

from tests.hub_server import HubServer, git_blob_sha1

TOKEN = "test"
CHILD_TIMEOUT_S = 180

# -- child scripts (argv[1] is an output folder) ------------------------------------------------------------------

_CHILD_COMMON = """
import json, sys
from pathlib import Path
import torch
from safetensors.torch import save_file
from transformers import GPT2Config

out = Path(sys.argv[1])
CONFIG = dict(n_layer=1, n_head=2, n_embd=16, vocab_size=64, n_positions=32)

def save_state(model, name):
    # Tied weights share storage, which safetensors refuses: clone every tensor.
    save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, out / name)
"""

# Pushes a tiny GPT-2 (with the auto-generated card), a tokenizer, a ModelCard and a discriminator in a subfolder.
PUSH_TINY = (
    _CHILD_COMMON
    + """
from huggingface_hub import HfApi, ModelCard, ModelCardData
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import GPT2ForSequenceClassification, GPT2LMHeadModel, PreTrainedTokenizerFast

torch.manual_seed(0)
model = GPT2LMHeadModel(GPT2Config(**CONFIG))
model.push_to_hub("user/tiny", token="test", commit_message="Upload tiny generator")
save_state(model, "generator.safetensors")

vocab = {f"w{i}": i for i in range(62)} | {"[UNK]": 62, "[PAD]": 63}
backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
backend.pre_tokenizer = pre_tokenizers.Whitespace()
PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]").push_to_hub(
    "user/tiny", token="test"
)

card = ModelCard.from_template(ModelCardData(license="apache-2.0", tags=["seqgan"]), model_id="tiny")
card.push_to_hub("user/tiny", token="test")

disc = GPT2ForSequenceClassification(GPT2Config(**CONFIG, num_labels=2, pad_token_id=63))
disc.save_pretrained(out / "disc")
HfApi().upload_folder(
    repo_id="user/tiny", folder_path=out / "disc", path_in_repo="discriminator", token="test",
    commit_message="Upload discriminator",
)
save_state(disc, "discriminator.safetensors")
"""
)

# Pulls everything back in a fresh process (empty HF_HOME): nothing can come from a local cache.
PULL_TINY = (
    _CHILD_COMMON
    + """
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

save_state(AutoModelForCausalLM.from_pretrained("user/tiny"), "generator.safetensors")
save_state(AutoModelForSequenceClassification.from_pretrained("user/tiny", subfolder="discriminator"),
           "discriminator.safetensors")
tokenizer = AutoTokenizer.from_pretrained("user/tiny")
(out / "tokens.json").write_text(json.dumps(tokenizer("w1 w2 unknown")["input_ids"]))
"""
)

# Pushes twice (weights changed in between), then loads both revisions back by commit sha / branch.
PUSH_TWICE = (
    _CHILD_COMMON
    + """
from transformers import AutoModelForCausalLM, GPT2LMHeadModel

torch.manual_seed(1)
model = GPT2LMHeadModel(GPT2Config(**CONFIG))
first = model.push_to_hub("user/twice", token="test", commit_message="first push")
save_state(model, "first.safetensors")
with torch.no_grad():
    for p in model.parameters():
        p.add_(1.0)
second = model.push_to_hub("user/twice", token="test", commit_message="second push")
save_state(model, "second.safetensors")
(out / "commits.json").write_text(json.dumps([first.oid, second.oid]))

save_state(AutoModelForCausalLM.from_pretrained("user/twice", revision=first.oid), "pulled_first.safetensors")
save_state(AutoModelForCausalLM.from_pretrained("user/twice"), "pulled_main.safetensors")
"""
)

# Pushes while the server injects a commit failure; reports the exception instead of crashing.
PUSH_FAILING = (
    _CHILD_COMMON
    + """
from transformers import GPT2LMHeadModel

try:
    GPT2LMHeadModel(GPT2Config(**CONFIG)).push_to_hub("user/broken", token="test")
except Exception as err:
    report = {"mro": [c.__name__ for c in type(err).__mro__], "message": str(err),
              "status": getattr(getattr(err, "response", None), "status_code", None)}
else:
    report = {"mro": [], "message": "push_to_hub did not raise"}
(out / "error.json").write_text(json.dumps(report))
"""
)


def run_child(hub: HubServer, script: str, workdir: Path) -> Path:
    """Run ``script`` in a fresh interpreter pointed at ``hub``; returns its output folder."""
    out = workdir / "out"
    out.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        env=hub.child_env(workdir / "hf_home"),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    assert proc.returncode == 0, (
        f"child failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    return out


def assert_same_tensors(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name, tensor in expected.items():
        torch.testing.assert_close(actual[name], tensor, rtol=0, atol=0, msg=lambda m, n=name: f"{n}: {m}")


# -- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


@pytest.fixture(scope="module")
def tiny_roundtrip(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Output folders of the push child and of the pull child for ``user/tiny``."""
    pushed = run_child(hub, PUSH_TINY, tmp_path_factory.mktemp("push"))
    pulled = run_child(hub, PULL_TINY, tmp_path_factory.mktemp("pull"))
    return pushed, pulled


@pytest.fixture
def api(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> HfApi:
    # `make test` sets HF_HUB_OFFLINE=1, read by huggingface_hub at import: lift it for in-process calls.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


# -- transformers round trips (subprocesses) -----------------------------------------------------------------------


def test_push_to_hub_stores_model_tokenizer_card_and_subfolder(
    hub: HubServer, tiny_roundtrip: tuple[Path, Path]
) -> None:
    files = hub.files("user/tiny")
    expected = {
        ".gitattributes",
        "README.md",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "discriminator/config.json",
        "discriminator/model.safetensors",
    }
    assert expected <= files.keys()
    assert json.loads(files["config.json"])["n_embd"] == 16
    readme = files["README.md"].decode()
    assert readme.startswith("---\n") and "license: apache-2.0" in readme and "seqgan" in readme
    titles = [c.title for c in hub.commits("user/tiny")]
    assert titles[0] == "Upload discriminator" and titles[-1] == "initial commit"
    assert "Upload tiny generator" in titles
    # Every write carried the token.
    writes = [r for r in hub.requests if r.method == "POST" and "/commit/" in r.path]
    assert writes and all(r.authorized for r in writes)


def test_from_pretrained_in_fresh_process_gets_the_pushed_weights(
    hub: HubServer, tiny_roundtrip: tuple[Path, Path]
) -> None:
    pushed, pulled = tiny_roundtrip
    assert_same_tensors(
        load_file(pulled / "generator.safetensors"), load_file(pushed / "generator.safetensors")
    )
    # The stored file itself holds the same values (tied lm_head is not serialized).
    stored = load(hub.files("user/tiny")["model.safetensors"])
    original = load_file(pushed / "generator.safetensors")
    assert stored and all(torch.equal(stored[k], original[k]) for k in stored)


def test_from_pretrained_subfolder_and_tokenizer(tiny_roundtrip: tuple[Path, Path]) -> None:
    pushed, pulled = tiny_roundtrip
    assert_same_tensors(
        load_file(pulled / "discriminator.safetensors"), load_file(pushed / "discriminator.safetensors")
    )
    assert json.loads((pulled / "tokens.json").read_text()) == [1, 2, 62]  # "unknown" -> [UNK]


def test_second_push_creates_a_new_commit_and_old_revision_stays_loadable(
    hub: HubServer, tmp_path: Path
) -> None:
    out = run_child(hub, PUSH_TWICE, tmp_path)
    first, second = json.loads((out / "commits.json").read_text())
    history = hub.commits("user/twice")
    assert [c.oid for c in history[:2]] == [second, first]
    assert [c.title for c in history[:2]] == ["second push", "first push"]
    assert hub.head("user/twice") == second
    # model.safetensors changed; config.json did not (and was not re-sent: preupload reported its oid).
    assert hub.files("user/twice", first)["model.safetensors"] != hub.files("user/twice")["model.safetensors"]
    assert hub.files("user/twice", first)["config.json"] == hub.files("user/twice")["config.json"]
    assert_same_tensors(load_file(out / "pulled_first.safetensors"), load_file(out / "first.safetensors"))
    assert_same_tensors(load_file(out / "pulled_main.safetensors"), load_file(out / "second.safetensors"))


def test_push_with_injected_commit_failure_raises_hf_hub_http_error(hub: HubServer, tmp_path: Path) -> None:
    hub.fail_next_commits = 1
    try:
        out = run_child(hub, PUSH_FAILING, tmp_path)
    finally:
        hub.fail_next_commits = 0
    report = json.loads((out / "error.json").read_text())
    assert "HfHubHTTPError" in report["mro"], report
    assert report["status"] == 500
    assert "500" in report["message"] and "Injected failure" in report["message"]
    # Nothing was committed: the repo only has its initial commit.
    assert [c.title for c in hub.commits("user/broken")] == ["initial commit"]


# -- Hub API, in-process -------------------------------------------------------------------------------------------


def test_create_repo_exist_ok_and_conflict(api: HfApi, hub: HubServer) -> None:
    url = api.create_repo("user/api-repo")
    assert url.repo_id == "user/api-repo" and url.endpoint == hub.endpoint
    assert api.create_repo("user/api-repo", exist_ok=True).repo_id == "user/api-repo"
    with pytest.raises(HfHubHTTPError) as exc_info:
        api.create_repo("user/api-repo")
    assert exc_info.value.response.status_code == 409
    assert api.create_repo("nonamespace").repo_id == "user/nonamespace"  # default namespace = hub.username


def test_commit_listing_and_download_routes(api: HfApi, hub: HubServer, tmp_path: Path) -> None:
    api.create_repo("user/files", exist_ok=True)
    first = api.create_commit(
        "user/files",
        [
            CommitOperationAdd("a.txt", b"hello"),
            CommitOperationAdd("sub/b.txt", b"b"),
            CommitOperationAdd("sub/deep/c.txt", b"c"),
        ],
        commit_message="add files",
    )
    assert len(first.oid) == 40 and first.commit_url.endswith(first.oid)
    assert api.list_repo_files("user/files") == [".gitattributes", "a.txt", "sub/b.txt", "sub/deep/c.txt"]
    top = {(type(e).__name__, e.path) for e in api.list_repo_tree("user/files")}
    assert top == {("RepoFolder", "sub"), ("RepoFile", ".gitattributes"), ("RepoFile", "a.txt")}
    (entry,) = [e for e in api.list_repo_tree("user/files") if e.path == "a.txt"]
    assert entry.size == 5 and entry.blob_id == git_blob_sha1(b"hello")
    assert api.file_exists("user/files", "sub/deep/c.txt")
    assert not api.file_exists("user/files", "missing.txt")
    assert not api.file_exists("user/missing", "a.txt")
    info = api.model_info("user/files")
    assert info.sha == first.oid and api.repo_info("user/files").sha == first.oid
    assert "sub/b.txt" in {s.rfilename for s in info.siblings}

    api.create_commit(
        "user/files",
        [CommitOperationDelete("sub/"), CommitOperationAdd("a.txt", b"changed")],
        commit_message="update",
    )
    files = hub.files("user/files")
    assert sorted(files) == [".gitattributes", "a.txt"] and files["a.txt"] == b"changed"
    # Commit-sha revisions still serve the old snapshot.
    old = hf_hub_download(
        "user/files", "a.txt", revision=first.oid, cache_dir=tmp_path, endpoint=hub.endpoint
    )
    assert Path(old).read_bytes() == b"hello"
    new = hf_hub_download("user/files", "a.txt", cache_dir=tmp_path, endpoint=hub.endpoint)
    assert Path(new).read_bytes() == b"changed"


def test_errors_map_to_huggingface_hub_exceptions(api: HfApi, hub: HubServer, tmp_path: Path) -> None:
    api.create_repo("user/errors", exist_ok=True)
    kwargs = {"cache_dir": tmp_path, "endpoint": hub.endpoint}
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("user/does-not-exist", "config.json", **kwargs)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("user/errors", "adapter_config.json", **kwargs)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("user/errors", ".gitattributes", revision="no-such-branch", **kwargs)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("user/does-not-exist")


def test_stop_releases_port_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    threads_before = set(threading.enumerate())
    with HubServer() as hub:
        port = hub.port
        HfApi(endpoint=hub.endpoint, token=TOKEN).create_repo("user/x")  # leaves a keep-alive connection open
        assert hub.repo_exists("user/x")
    assert set(threading.enumerate()) <= threads_before
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
