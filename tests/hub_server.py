"""A small, in-memory, Hub-compatible HTTP server for offline tests (standard library only).

It answers only what ``huggingface_hub`` 2.4 / ``transformers`` 5.x send in this project's tests; each route
below lists the tests that reach it (found by logging the routes hit while running tests/test_hub.py and
tests/test_hub_server.py):

* ``POST /api/repos/create`` (``create_repo``; 409 + ``{"url"}`` when the repo exists, which
  ``exist_ok=True`` reads): every push in both files; ``test_create_repo_exist_ok_and_conflict``,
  ``test_stop_releases_port_and_threads``.
* ``POST /api/validate-yaml`` (a model card's metadata, checked before it is pushed; everything is accepted):
  every transformers push, e.g. ``test_push_to_hub_stores_model_tokenizer_card_and_subfolder``,
  ``test_push_puts_generator_tokenizer_and_code_at_root_and_discriminator_in_subfolder``.
* ``GET /api/models/{repo}`` and ``.../revision/{rev}`` (``model_info`` / ``repo_info``):
  ``test_commit_listing_and_download_routes``, ``test_errors_map_to_huggingface_hub_exceptions``, the transformers
  pushes and pulls (``test_push_to_hub_stores_model_tokenizer_card_and_subfolder``,
  ``test_push_puts_generator_tokenizer_and_code_at_root_and_discriminator_in_subfolder``, ...).
* ``GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=`` (``list_repo_files`` / ``list_repo_tree``, and
  ``AutoTokenizer`` looking for ``additional_chat_templates/``): ``test_commit_listing_and_download_routes``,
  ``test_push_to_hub_stores_model_tokenizer_card_and_subfolder``,
  ``test_fresh_process_without_seqgan_hf_loads_both_models_with_trust_remote_code``.
* ``POST /api/models/{repo}/preupload/{rev}`` and ``POST .../commit/{rev}`` (NDJSON ``file`` and
  ``deletedFolder`` operations; failures injected here): every push and ``create_commit``;
  ``test_push_with_injected_commit_failure_raises_hf_hub_http_error``,
  ``test_failed_push_raises_clear_error_and_keeps_local_output``,
  ``test_failed_background_pushes_warn_and_non_blocking_push_fails_with_clear_error``.
* ``HEAD|GET /{repo}/resolve/{rev}/{path}`` (``hf_hub_download`` / ``from_pretrained``; ``rev`` is ``main`` or a
  commit sha): ``test_commit_listing_and_download_routes``, ``test_errors_map_to_huggingface_hub_exceptions``,
  ``test_second_push_creates_a_new_commit_and_old_revision_stays_loadable``, the pulls.

Only model repos named ``namespace/name`` and the ``main`` branch exist. Anything else answers 404 "Route not
implemented", so a client that starts to need more fails loudly rather than silently.

Usage::

    with HubServer() as hub:                      # binds 127.0.0.1 on a free port, serves in a thread
        env = hub.child_env(tmp_path / "hf_home")  # environment for a subprocess that talks to it
        subprocess.run([sys.executable, "push.py"], env=env, check=True)
        assert "model.safetensors" in hub.files("user/tiny")

``huggingface_hub`` reads ``HF_ENDPOINT`` (and ``HF_HUB_OFFLINE``) once, at import, and ``transformers`` calls
the Hub through a shared ``HfApi()``: run ``push_to_hub`` / ``from_pretrained`` in a fresh subprocess with
:meth:`HubServer.child_env`; in the test process use ``HfApi(endpoint=hub.endpoint)`` after
``monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)``.

Protocol notes (``huggingface_hub/utils/_http.py::hf_raise_for_status``, ``file_download.py``):

* Errors carry ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) and
  ``X-Error-Message``: the client maps the code to its exception classes.
* ``resolve`` must answer ``X-Repo-Commit``, an ``ETag`` (git blob sha1) and ``Content-Length``.
* ``preupload`` answers ``"regular"`` for every file, with the ``oid`` of the file already in the repo, so the
  client leaves unchanged files out of the commit (and makes no commit when nothing changed), like the real Hub.
* The commit route is called without retries, so an injected HTTP 500 surfaces at once as ``HfHubHTTPError``;
  other routes are retried on 5xx for ~20 s: inject failures into commits only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger(__name__)

#: The real Hub starts every new repo with a commit holding this ``.gitattributes`` (tests check the history).
_INITIAL_GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"

#: Removed from a child's environment by :meth:`HubServer.child_env`: offline switches (they block every
#: request), cache locations that would override ``HF_HOME``, and real credentials.
_CHILD_ENV_DROP = (
    "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
    "HF_ASSETS_CACHE", "HUGGINGFACE_ASSETS_CACHE", "HF_XET_CACHE", "HF_MODULES_CACHE", "TRANSFORMERS_CACHE",
    "HF_DATASETS_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HUGGINGFACE_CO_STAGING",
)


def git_blob_sha1(content: bytes) -> str:
    """Git object id of a blob: what the Hub uses as ETag/oid of a regular (non-LFS) file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class Commit:
    """One commit: a full snapshot of the repo's files (contents are shared between snapshots, not copied)."""

    oid: str
    parent: str | None
    title: str
    files: Mapping[str, bytes]


@dataclass
class Repo:
    """A model repo: its commits by oid and the head of its only branch, ``main``."""

    commits: dict[str, Commit] = field(default_factory=dict)
    main: str = ""

    def resolve(self, revision: str) -> Commit | None:
        """The commit for ``main`` or a full commit sha (what the tests' clients send)."""
        return self.commits.get(self.main if revision == "main" else revision.lower())


@dataclass(frozen=True)
class RequestRecord:
    """One answered request (tests assert, e.g., that every commit carried a token)."""

    method: str
    path: str  # without the query string, still URL-quoted
    status: int
    authorized: bool  # whether an ``Authorization: Bearer ...`` header was sent


class HubError(Exception):
    """Raised by route handlers; answered as an HTTP error with Hub-style error headers."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 body: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.body = dict(body or {})  # extra fields of the JSON error body


class HubServer:
    """In-memory Hub on ``127.0.0.1``, served by a background thread. Use as a context manager.

    Attributes (settable while serving):
        username: namespace of repos created without one, e.g. ``create_repo("tiny")`` -> ``"user/tiny"``.
        fail_next_commits: the next N commit requests answer HTTP 500 (see also :meth:`failing_commits`).
        requests: log of answered requests, oldest first.
    """

    def __init__(self, *, username: str = "user") -> None:
        self.username = username
        self.fail_commits = False
        self.fail_next_commits = 0
        self.requests: list[RequestRecord] = []
        self._repos: dict[str, Repo] = {}
        self._lock = threading.RLock()
        self._oid_counter = itertools.count()
        self._httpd: _HubHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def failing_commits(self) -> Iterator[None]:
        """Every commit fails with HTTP 500 inside the block; commits work again after it."""
        self.fail_commits = True
        try:
            yield
        finally:
            self.fail_commits = False

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> HubServer:
        """Bind a free port and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("HubServer is already running")
        self._httpd = _HubHTTPServer(("127.0.0.1", 0), _HubRequestHandler, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="hub-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection, and join all server threads."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        httpd.shutdown()  # returns once serve_forever has exited
        thread.join()
        httpd.close_connections()  # wakes handler threads blocked on idle keep-alive connections
        httpd.server_close()  # closes the listening socket, joins handler threads
        self._httpd = self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("HubServer is not running")
        return self._httpd.server_address[1]

    @property
    def endpoint(self) -> str:
        """Base URL to use as ``HF_ENDPOINT`` / ``HfApi(endpoint=...)``, e.g. ``http://127.0.0.1:40123``."""
        return f"http://127.0.0.1:{self.port}"

    def child_env(self, hf_home: str | os.PathLike[str], **extra: str) -> dict[str, str]:
        """Environment for a subprocess whose ``huggingface_hub``/``transformers`` must talk to this server.

        ``os.environ`` without ``_CHILD_ENV_DROP``, plus ``HF_ENDPOINT``, a private ``HF_HOME``, switches that
        turn telemetry, progress bars, update checks and Xet off, and ``extra``.
        """
        env = {key: value for key, value in os.environ.items() if key not in _CHILD_ENV_DROP}
        env.update(
            HF_ENDPOINT=self.endpoint, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_UPDATE_CHECK="1", HF_HUB_DISABLE_XET="1",
        )
        env.update(extra)
        return env

    # -- inspection helpers for tests ----------------------------------------------------------------------------

    def repo_exists(self, repo_id: str) -> bool:
        with self._lock:
            return repo_id in self._repos

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """Files of ``repo_id`` at ``revision`` (``main`` or a commit sha): path -> content."""
        with self._lock:
            return dict(self._commit(self._repo(repo_id), revision).files)

    def commits(self, repo_id: str, revision: str = "main") -> list[Commit]:
        """History of ``revision``, newest first; the last item is the repo's initial commit."""
        with self._lock:
            repo = self._repo(repo_id)
            history = [self._commit(repo, revision)]
            while history[-1].parent is not None:
                history.append(repo.commits[history[-1].parent])
            return history

    def head(self, repo_id: str) -> str:
        """Commit sha that ``main`` points to."""
        return self.commits(repo_id)[0].oid

    # -- storage primitives (call with the lock held) ------------------------------------------------------------

    def _repo(self, repo_id: str) -> Repo:
        repo = self._repos.get(repo_id)
        if repo is None:
            raise HubError(404, f"Repository Not Found: '{repo_id}' does not exist.", "RepoNotFound")
        return repo

    @staticmethod
    def _commit(repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _new_commit(self, repo: Repo, parent: Commit | None, title: str, files: Mapping[str, bytes]) -> Commit:
        """Store a commit on ``main``; its oid is unique (a counter) and 40 hex digits, like a git sha."""
        digest = hashlib.sha1(f"{parent.oid if parent else ''}\0{title}\0{next(self._oid_counter)}".encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + git_blob_sha1(files[path]).encode())
        commit = Commit(digest.hexdigest(), parent.oid if parent else None, title, dict(files))
        repo.commits[commit.oid] = commit
        repo.main = commit.oid
        return commit


class _HubHTTPServer(ThreadingHTTPServer):
    """Threading server that knows its :class:`HubServer` and tracks its connections and handler threads, so
    that ``stop`` can close the former and join the latter (``test_stop_releases_port_and_threads``).

    Handler threads are daemons, so a server that is never stopped cannot hang interpreter exit; the stock
    ``block_on_close`` only joins non-daemon threads, hence the explicit tracking.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], hub: HubServer) -> None:
        self.hub = hub
        self._connections: set[socket.socket] = set()
        self._handler_threads: list[threading.Thread] = []
        self._tracking_lock = threading.Lock()
        self._closing = False
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address),
            name=f"hub-server-connection-{client_address[1]}", daemon=True,
        )
        with self._tracking_lock:
            self._handler_threads = [t for t in self._handler_threads if t.is_alive()] + [thread]
        thread.start()

    def track(self, conn: socket.socket, opened: bool) -> None:
        with self._tracking_lock:
            if not opened:
                self._connections.discard(conn)
            elif self._closing:  # accepted just before shutdown: do not serve it
                _shutdown_socket(conn)
            else:
                self._connections.add(conn)

    def close_connections(self) -> None:
        with self._tracking_lock:
            self._closing = True
            for conn in self._connections:
                _shutdown_socket(conn)

    def server_close(self) -> None:
        super().server_close()
        with self._tracking_lock:
            threads = list(self._handler_threads)
        for thread in threads:
            thread.join()


def _shutdown_socket(conn: socket.socket) -> None:
    """Shut a connection down so that a handler blocked reading it wakes up (and then ends)."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer


class _HubRequestHandler(BaseHTTPRequestHandler):
    """Routes requests to the Hub API implementation. One instance per connection (keep-alive, HTTP/1.1)."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds an idle keep-alive connection may stay open
    server: _HubHTTPServer
    query: dict[str, list[str]]  # parsed query string of the current request
    body: bytes  # body of the current request

    # -- plumbing ------------------------------------------------------------------------------------------------

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, opened=True)

    def finish(self) -> None:
        self.server.track(self.connection, opened=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # (parameter name imposed by the base class)
        logger.debug("hub-server: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query, keep_blank_values=True)
        # Always consume the body, so the keep-alive stream stays in sync (the clients send Content-Length).
        self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        segments = [unquote(s) for s in url.path.split("/")[1:]]  # split first: a quoted "/" stays in its segment
        try:
            self._route(segments)
        except HubError as err:
            self._send_error(err)
        except Exception as err:
            # A bug in this server: answer 500 with the reason rather than leave the client hanging.
            logger.exception("hub-server: unhandled error on %s %s", self.command, self.path)
            self._send_error(HubError(500, f"HubServer internal error: {type(err).__name__}: {err}"))

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/json",
              headers: Mapping[str, str] | None = None) -> None:
        # Log first: once the client has the answer, a test may look at `hub.requests` right away.
        authorized = self.headers.get("Authorization", "").startswith("Bearer ")
        with self.hub._lock:
            self.hub.requests.append(RequestRecord(self.command, urlsplit(self.path).path, status, authorized))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, data: Any) -> None:
        self._send(200, json.dumps(data).encode())

    def _send_error(self, err: HubError) -> None:
        headers = {"X-Error-Message": err.message.encode("ascii", "replace").decode()}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send(err.status, json.dumps({"error": err.message, **err.body}).encode(), headers=headers)

    # -- routing -------------------------------------------------------------------------------------------------

    def _route(self, segs: list[str]) -> None:
        method = self.command
        if segs == ["api", "repos", "create"] and method == "POST":
            return self._create_repo()
        if segs == ["api", "validate-yaml"] and method == "POST":
            return self._send_json({"errors": [], "warnings": []})
        if segs[:2] == ["api", "models"] and len(segs) >= 4:
            repo_id, route, args = "/".join(segs[2:4]), segs[4] if len(segs) > 4 else "", segs[5:]
            if method == "GET" and not route:
                return self._repo_info(repo_id, "main")
            if method == "GET" and route == "revision" and len(args) == 1:
                return self._repo_info(repo_id, args[0])
            if method == "GET" and route == "tree" and args:
                return self._tree(repo_id, args[0], "/".join(args[1:]).strip("/"))
            if method == "POST" and route == "preupload" and len(args) == 1:
                return self._preupload(repo_id, args[0])
            if method == "POST" and route == "commit" and len(args) == 1:
                return self._create_commit(repo_id, args[0])
        # /{namespace}/{name}/resolve/{revision}/{path...}
        if method in ("GET", "HEAD") and len(segs) >= 5 and segs[2] == "resolve":
            return self._resolve("/".join(segs[:2]), segs[3], "/".join(segs[4:]))
        raise HubError(404, f"Route not implemented by HubServer: {method} {self.path}")

    # -- routes --------------------------------------------------------------------------------------------------

    def _create_repo(self) -> None:
        payload = json.loads(self.body or b"{}")
        name = payload.get("name")
        if not name or "/" in name or (payload.get("type") or "model") != "model":
            raise HubError(400, f"HubServer only creates model repos with a plain name, not {payload!r}")
        repo_id = f"{payload.get('organization') or self.hub.username}/{name}"
        url = f"{self.hub.endpoint}/{repo_id}"
        with self.hub._lock:
            if repo_id in self.hub._repos:
                # `create_repo(exist_ok=True)` reads the repo URL from the body of the 409 answer.
                raise HubError(409, "You already created this model repo", body={"url": url})
            repo = self.hub._repos[repo_id] = Repo()
            self.hub._new_commit(repo, None, "initial commit", {".gitattributes": _INITIAL_GITATTRIBUTES})
        self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def _repo_info(self, repo_id: str, revision: str) -> None:
        with self.hub._lock:
            commit = self.hub._commit(self.hub._repo(repo_id), revision)
        self._send_json({"id": repo_id, "modelId": repo_id, "sha": commit.oid, "private": False,
                         "siblings": [{"rfilename": path} for path in sorted(commit.files)]})

    def _resolve(self, repo_id: str, revision: str, path: str) -> None:
        """``HEAD``/``GET /{repo}/resolve/{revision}/{path}``: file metadata and content."""
        with self.hub._lock:
            commit = self.hub._commit(self.hub._repo(repo_id), revision)
        content = commit.files.get(path)
        if content is None:
            raise HubError(404, "Entry not found", "EntryNotFound")
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{git_blob_sha1(content)}"'}
        self._send(200, content, content_type="application/octet-stream", headers=headers)

    def _tree(self, repo_id: str, revision: str, path: str) -> None:
        """``GET /api/models/{repo}/tree/{revision}[/{path}]?recursive=``: one page, folders first."""
        with self.hub._lock:
            commit = self.hub._commit(self.hub._repo(repo_id), revision)
        prefix = f"{path}/" if path else ""
        below = [p[len(prefix):] for p in commit.files if p.startswith(prefix)]
        if path and not below:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        recursive = self.query.get("recursive", ["false"])[-1].lower() in ("1", "true")
        paths: set[str] = set()
        for rel in below:
            parts = rel.split("/")
            # The entry itself, and (when recursive) every folder on the way.
            paths.update(prefix + "/".join(parts[: i + 1]) for i in range(len(parts) if recursive else 1))
        entries = []
        for entry in sorted(paths, key=lambda p: (p in commit.files, p)):
            if entry in commit.files:
                content = commit.files[entry]
                entries.append({"type": "file", "oid": git_blob_sha1(content), "size": len(content), "path": entry})
            else:  # a folder's oid: any stable digest (no client checks it)
                oid = hashlib.sha1(entry.encode()).hexdigest()
                entries.append({"type": "directory", "oid": oid, "size": 0, "path": entry})
        self._send_json(entries)

    def _preupload(self, repo_id: str, revision: str) -> None:
        """Every file is "regular" (committed inline, base64); ``oid`` lets the client drop unchanged files."""
        with self.hub._lock:
            commit = self.hub._commit(self.hub._repo(repo_id), revision)
        files = []
        for item in json.loads(self.body or b"{}").get("files", []):
            existing = commit.files.get(item["path"])
            oid = git_blob_sha1(existing) if existing is not None else None
            files.append({"path": item["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": oid})
        self._send_json({"files": files, "commitOid": commit.oid})

    def _create_commit(self, repo_id: str, revision: str) -> None:
        """NDJSON body: a header line (``summary``), then one line per ``file`` / ``deletedFolder`` operation."""
        with self.hub._lock:
            # Injected failures come first: nothing gets stored.
            if self.hub.fail_commits or self.hub.fail_next_commits > 0:
                self.hub.fail_next_commits = max(self.hub.fail_next_commits - 1, 0)
                raise HubError(500, "Injected failure: the commit endpoint answered HTTP 500 (HubServer)")
            repo = self.hub._repo(repo_id)
            if revision != "main":
                raise HubError(404, f"Invalid rev id: {revision} (HubServer only has main)", "RevisionNotFound")
            lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
            if not lines or lines[0].get("key") != "header":
                raise HubError(400, "Commit payload must start with a 'header' line")
            base = self.hub._commit(repo, "main")
            files = dict(base.files)
            for line in lines[1:]:
                _apply_operation(files, line.get("key"), line.get("value") or {})
            commit = self.hub._new_commit(repo, base, lines[0]["value"].get("summary") or "", files)
        self._send_json({"success": True, "commitOid": commit.oid,
                         "commitUrl": f"{self.hub.endpoint}/{repo_id}/commit/{commit.oid}"})


def _apply_operation(files: dict[str, bytes], key: str | None, value: dict[str, Any]) -> None:
    """Apply one commit operation to ``files`` (path -> content), in place."""
    path = str(value.get("path", "")).strip("/")
    if key == "file" and path:
        files[path] = base64.b64decode(value.get("content", ""))
    elif key == "deletedFolder" and path:
        under = [p for p in files if p.startswith(path + "/")]
        if not under:
            raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
        for p in under:
            del files[p]
    else:
        raise HubError(400, f"HubServer does not support the commit operation {key!r} (path {path!r})")


__all__ = ["Commit", "HubServer", "RequestRecord", "git_blob_sha1"]
