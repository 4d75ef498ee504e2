"""A small, in-memory, Hub-compatible HTTP server for offline tests.

It implements the subset of the Hugging Face Hub HTTP API that ``huggingface_hub`` 2.4 and ``transformers`` 5.x
use to push a model (``create_repo`` + ``create_commit`` / ``upload_folder`` / ``push_to_hub``) and to pull it
back (``hf_hub_download``, ``snapshot_download``, ``from_pretrained``). Standard library only.

Usage::

    with HubServer() as hub:                      # binds 127.0.0.1 on a free port, serves in a thread
        env = hub.child_env(tmp_path / "hf_home")  # environment for a subprocess that talks to it
        subprocess.run([sys.executable, "push.py"], env=env, check=True)
        assert "model.safetensors" in hub.files("user/tiny")

Pointing clients at the server
------------------------------
``huggingface_hub`` reads ``HF_ENDPOINT`` once, at import time (``constants.ENDPOINT``, and derived module-level
values such as the resolve-URL template and the set of trusted Hub origins), and ``transformers`` routes every
Hub call through a shared ``HfApi()`` built without an explicit endpoint. So:

* ``from_pretrained`` / ``push_to_hub`` / ``snapshot_download``: run them in a **fresh subprocess** whose
  environment comes from :meth:`HubServer.child_env` (sets ``HF_ENDPOINT``, a private ``HF_HOME``,
  ``HF_HUB_DISABLE_TELEMETRY=1``, and removes ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``, which ``make test``
  sets and which make ``huggingface_hub`` refuse every HTTP request).
* In the test process itself, use ``HfApi(endpoint=hub.endpoint)`` and ``hf_hub_download(..., endpoint=...)``.
  If ``HF_HUB_OFFLINE=1`` was set when ``huggingface_hub`` was imported, also
  ``monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)``.

Routes (``{type}s`` is ``models``, ``datasets`` or ``spaces``; revisions are branches, ``refs/pr/N`` or shas)
------------------------------------------------------------------------------------------------------------
* ``POST /api/repos/create`` (409 + ``{"url"}`` if it exists), ``DELETE /api/repos/delete``,
  ``GET /api/whoami-v2``, ``POST /api/validate-yaml`` (accepts everything)
* ``GET /api/{type}s/{repo}`` and ``.../revision/{rev}`` (model_info / repo_info; ``?blobs=1`` adds sizes)
* ``GET /api/{type}s/{repo}/tree/{rev}[/{path}]?recursive=&expand=``, ``POST .../paths-info/{rev}``
* ``POST /api/{type}s/{repo}/preupload/{rev}``, ``POST .../commit/{rev}[?create_pr=1]`` (NDJSON: ``file``,
  ``deletedFile``, ``deletedFolder``), ``POST|DELETE .../branch/{name}``, ``GET .../refs``, ``GET .../commits/{rev}``
* ``HEAD|GET /[datasets/|spaces/]{repo}/resolve/{rev}/{path}`` (single ``Range`` supported)

Every new repo gets an initial commit holding a ``.gitattributes`` file, as on the real Hub.

Protocol notes (see ``huggingface_hub/utils/_http.py::hf_raise_for_status`` and ``file_download.py``)
--------------------------------------------------------------------------------------------------------
* Errors carry ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) and
  ``X-Error-Message`` headers, plus a ``{"error": ...}`` JSON body; the client maps the code to
  ``RepositoryNotFoundError`` / ``RevisionNotFoundError`` / ``RemoteEntryNotFoundError``.
* ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` must answer ``X-Repo-Commit`` (else ``FileMetadataError``), an
  ``ETag`` (git blob sha1 for regular files) and ``Content-Length``. A 404 ``EntryNotFound`` also carries
  ``X-Repo-Commit`` so the client can cache the file's absence.
* The preupload route answers ``"regular"`` for every file (no LFS/Xet), with the ``oid`` (git blob sha1) of the
  file already in the repo, so that the client skips unchanged files like the real Hub.
* ``create_repo(exist_ok=True)`` swallows the 409 and then reads ``url`` from the 409's JSON body.
* The commit route is called *without* retries, so an injected HTTP 500 surfaces immediately as
  ``HfHubHTTPError``. Most other routes use ``http_backoff`` which retries 5xx for ~20 s: only inject failures
  into commits.
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
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger(__name__)

#: Repo types, as named in ``/api/{type}s/...`` routes and in ``/{prefix}/{repo_id}/resolve/...`` URLs.
_API_REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}

#: Words that follow a repo id in ``/api/{type}s/{repo_id}/...`` routes.
_REPO_SUBROUTES = {"revision", "tree", "paths-info", "preupload", "commit", "branch", "refs", "commits"}

#: Content of the ``.gitattributes`` file of the initial commit (the real Hub creates one on every new repo).
_INITIAL_GITATTRIBUTES = (
    b"*.bin filter=lfs diff=lfs merge=lfs -text\n"
    b"*.pt filter=lfs diff=lfs merge=lfs -text\n"
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
)

#: Environment variables removed from a child's environment by :meth:`HubServer.child_env`: offline switches
#: (they block every request), cache locations that would override ``HF_HOME``, and real credentials.
_CHILD_ENV_DROP = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_HUB_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "HF_ASSETS_CACHE",
    "HUGGINGFACE_ASSETS_CACHE",
    "HF_XET_CACHE",
    "HF_MODULES_CACHE",
    "TRANSFORMERS_CACHE",
    "HF_DATASETS_CACHE",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_TOKEN_PATH",
    "HUGGINGFACE_CO_STAGING",
)


def git_blob_sha1(content: bytes) -> str:
    """Git object id of a blob: what the Hub uses as ETag/oid of a regular (non-LFS) file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# ---------------------------------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    """One commit: a full snapshot of the repo's files (contents are shared between snapshots, not copied)."""

    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    files: Mapping[str, bytes]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    # Branches ("main", ...) and PR refs ("refs/pr/1", ...) -> commit oid.
    refs: dict[str, str] = field(default_factory=dict)
    num_prs: int = 0

    def resolve(self, revision: str) -> Commit | None:
        """Commit for a branch/PR ref name, a full commit sha, or an unambiguous sha prefix (>= 7 chars)."""
        if revision in self.refs:
            return self.commits[self.refs[revision]]
        revision = revision.lower()
        if revision in self.commits:
            return self.commits[revision]
        if len(revision) >= 7:
            matches = [oid for oid in self.commits if oid.startswith(revision)]
            if len(matches) == 1:
                return self.commits[matches[0]]
        return None

    def history(self, head: Commit) -> Iterator[Commit]:
        """``head`` and its ancestors, newest first."""
        commit: Commit | None = head
        while commit is not None:
            yield commit
            commit = self.commits[commit.parent] if commit.parent else None


@dataclass(frozen=True)
class RequestRecord:
    """One request the server answered (for assertions such as "a token was sent" or "no commit was tried")."""

    method: str
    path: str  # without the query string, still URL-quoted
    status: int
    authorized: bool  # whether an ``Authorization: Bearer ...`` header was sent


class HubError(Exception):
    """Raised by route handlers; turned into an HTTP error response with Hub-style error headers."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.body = dict(body or {})  # extra fields of the JSON error body


# ---------------------------------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------------------------------


class HubServer:
    """In-memory Hub on ``127.0.0.1``, served by a background thread. Use as a context manager.

    Args:
        username: namespace used for repo ids without one (``create_repo("tiny")`` -> ``"user/tiny"``) and the
            name answered by ``whoami``.
        require_token: if True, write routes answer 401 without an ``Authorization: Bearer`` header (any token
            value is accepted). Reads never need a token.

    Attributes (settable while serving):
        fail_commits: while True, every commit request answers HTTP ``fail_status``.
        fail_next_commits: the next N commit requests answer HTTP ``fail_status``.
        fail_status: status code of injected failures (default 500).
        requests: log of answered requests, oldest first.
    """

    def __init__(self, *, username: str = "user", require_token: bool = False) -> None:
        self.username = username
        self.require_token = require_token
        self.fail_commits = False
        self.fail_next_commits = 0
        self.fail_status = 500
        self.requests: list[RequestRecord] = []
        self._repos: dict[tuple[str, str], Repo] = {}
        self._lock = threading.RLock()
        self._oid_counter = itertools.count()
        self._httpd: _HubHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def failing_commits(self) -> Iterator[None]:
        """Every commit fails (HTTP ``fail_status``) inside the block; commits work again after it."""
        self.fail_commits = True
        try:
            yield
        finally:
            self.fail_commits = False

    # -- lifecycle -----------------------------------------------------------------------------------------------

    def start(self) -> HubServer:
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

    def child_env(
        self, hf_home: str | os.PathLike[str], base: Mapping[str, str] | None = None, **extra: str
    ) -> dict[str, str]:
        """Environment for a subprocess whose ``huggingface_hub``/``transformers`` must talk to this server.

        Starts from ``base`` (default ``os.environ``), drops offline switches, cache overrides and tokens (see
        ``_CHILD_ENV_DROP``), then sets ``HF_ENDPOINT``, ``HF_HOME`` (its ``hub/`` cache is private to the test),
        switches that turn telemetry, progress bars, update checks and Xet off, and ``extra``.
        """
        env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _CHILD_ENV_DROP}
        env.update(
            HF_ENDPOINT=self.endpoint,
            HF_HOME=str(hf_home),
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            HF_HUB_DISABLE_UPDATE_CHECK="1",
            HF_HUB_DISABLE_XET="1",
        )
        env.update(extra)
        return env

    # -- inspection helpers for tests ----------------------------------------------------------------------------

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """Files of ``repo_id`` at ``revision`` (branch or commit sha): path -> content."""
        with self._lock:
            return dict(self._commit(self._repo(repo_type, repo_id), revision).files)

    def commits(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[Commit]:
        """History of ``revision``, newest first; the last item is the repo's initial commit."""
        with self._lock:
            repo = self._repo(repo_type, repo_id)
            return list(repo.history(self._commit(repo, revision)))

    def head(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> str:
        """Commit sha that ``revision`` points to."""
        return self.commits(repo_id, revision, repo_type)[0].oid

    # -- storage primitives (call with the lock held) ------------------------------------------------------------

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(
                404, f"Repository Not Found: {repo_type} '{repo_id}' does not exist.", "RepoNotFound"
            )
        return repo

    @staticmethod
    def _commit(repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _new_commit(
        self, repo: Repo, parent: Commit | None, title: str, message: str, files: Mapping[str, bytes]
    ) -> Commit:
        digest = hashlib.sha1()
        for part in (
            repo.repo_type,
            repo.repo_id,
            parent.oid if parent else "",
            title,
            str(next(self._oid_counter)),
        ):
            digest.update(part.encode() + b"\0")
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + git_blob_sha1(files[path]).encode())
        commit = Commit(
            digest.hexdigest(), parent.oid if parent else None, title, message, _now_iso(), dict(files)
        )
        repo.commits[commit.oid] = commit
        return commit


class _HubHTTPServer(ThreadingHTTPServer):
    """Threading server that knows its :class:`HubServer`, and tracks its connections and handler threads so that
    ``stop`` can close the former and join the latter.

    Handler threads are daemons, so a server that is never stopped cannot hang interpreter exit. (The stock
    ``block_on_close`` machinery only joins non-daemon threads, hence the explicit tracking.)
    """

    daemon_threads = True
    block_on_close = False

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], hub: HubServer
    ) -> None:
        self.hub = hub
        self._connections: set[socket.socket] = set()
        self._handler_threads: list[threading.Thread] = []
        self._tracking_lock = threading.Lock()
        self._closing = False
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"hub-server-connection-{client_address[1]}",
            daemon=True,
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

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers, then the final empty line
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query, keep_blank_values=True)
        self.body = self._read_body()  # always consume the body, so the keep-alive stream stays in sync
        # Split *before* unquoting: revisions like "refs%2Fpr%2F1" are one quoted segment.
        segments = [unquote(s) for s in url.path.split("/")[1:]]
        try:
            self._route(segments)
        except HubError as err:
            self._send_error(err)
        except Exception as err:
            # A bug in this server: answer 500 with the reason rather than leave the client hanging.
            logger.exception("hub-server: unhandled error on %s %s", self.command, self.path)
            self._send_error(HubError(500, f"HubServer internal error: {type(err).__name__}: {err}"))

    def _send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        # Log first: once the client has the answer, a test may look at `hub.requests` right away.
        authorized = self.headers.get("Authorization", "").startswith("Bearer ")
        with self.hub._lock:
            self.hub.requests.append(
                RequestRecord(self.command, urlsplit(self.path).path, status, authorized)
            )
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers=headers)

    def _send_error(self, err: HubError) -> None:
        headers = {"X-Error-Message": err.message.encode("ascii", "replace").decode(), **err.headers}
        if err.code:
            headers["X-Error-Code"] = err.code
        self._send(err.status, json.dumps({"error": err.message, **err.body}).encode(), headers=headers)

    def _require_write_auth(self) -> None:
        if self.hub.require_token and not self.headers.get("Authorization", "").startswith("Bearer "):
            raise HubError(401, "Invalid credentials in Authorization header")

    def _json_body(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError as err:
            raise HubError(400, f"Invalid JSON body: {err}") from err

    def _flag(self, name: str) -> bool:
        """Boolean query parameter (``httpx`` sends ``true``/``false``; the Hub also accepts ``1``)."""
        values = self.query.get(name)
        return bool(values) and values[-1].lower() in ("1", "true", "yes")

    # -- routing -------------------------------------------------------------------------------------------------

    def _route(self, segs: list[str]) -> None:
        method = self.command
        if segs[:1] == ["api"]:
            api = segs[1:]
            if api == ["whoami-v2"] and method == "GET":
                return self._whoami()
            if api == ["validate-yaml"] and method == "POST":
                return self._send_json({"errors": [], "warnings": []})
            if api == ["repos", "create"] and method == "POST":
                return self._create_repo()
            if api == ["repos", "delete"] and method == "DELETE":
                return self._delete_repo()
            if len(api) >= 2 and api[0] in _API_REPO_TYPES:
                return self._route_repo_api(_API_REPO_TYPES[api[0]], api[1:])
        elif "resolve" in segs[1:4] and method in ("GET", "HEAD"):
            # /[datasets/|spaces/]{namespace}/{name}/resolve/{revision}/{path...}
            repo_type = "model"
            if segs[0] in ("datasets", "spaces"):
                repo_type, segs = _API_REPO_TYPES[segs[0]], segs[1:]
            idx = segs.index("resolve")
            if 1 <= idx <= 2 and len(segs) >= idx + 3:
                return self._resolve(
                    repo_type, "/".join(segs[:idx]), segs[idx + 1], "/".join(segs[idx + 2 :])
                )
        raise HubError(404, f"Route not implemented by HubServer: {method} {self.path}")

    def _split_repo_id(self, repo_type: str, rest: list[str]) -> tuple[str, list[str]]:
        """Split ``rest`` into a repo id ("ns/name" or "name") and the sub-route that follows it."""
        with self.hub._lock:
            if len(rest) >= 2 and (repo_type, f"{rest[0]}/{rest[1]}") in self.hub._repos:
                return f"{rest[0]}/{rest[1]}", rest[2:]
            if (repo_type, rest[0]) in self.hub._repos:
                return rest[0], rest[1:]
        if len(rest) >= 2 and rest[1] not in _REPO_SUBROUTES:
            return f"{rest[0]}/{rest[1]}", rest[2:]
        return rest[0], rest[1:]

    @staticmethod
    def _split_revision(parts: list[str]) -> tuple[str, list[str]]:
        """First item is the revision, unless the client sent an unquoted ``refs/pr/N``-like ref."""
        if len(parts) >= 3 and parts[0] == "refs":
            return "/".join(parts[:3]), parts[3:]
        return parts[0], parts[1:]

    def _route_repo_api(self, repo_type: str, rest: list[str]) -> None:
        repo_id, sub = self._split_repo_id(repo_type, rest)
        method = self.command
        if not sub and method == "GET":
            return self._repo_info(repo_type, repo_id, "main")
        route, args = sub[0] if sub else "", sub[1:]
        if route == "revision" and args and method == "GET":
            return self._repo_info(repo_type, repo_id, "/".join(args))
        if route == "tree" and args and method == "GET":
            revision, path = self._split_revision(args)
            return self._tree(repo_type, repo_id, revision, "/".join(path).strip("/"))
        if route == "paths-info" and args and method == "POST":
            return self._paths_info(repo_type, repo_id, "/".join(args))
        if route == "preupload" and args and method == "POST":
            return self._preupload(repo_type, repo_id, "/".join(args))
        if route == "commit" and args and method == "POST":
            return self._create_commit(repo_type, repo_id, "/".join(args))
        if route == "branch" and args and method in ("POST", "DELETE"):
            return self._branch(repo_type, repo_id, "/".join(args))
        if route == "refs" and not args and method == "GET":
            return self._refs(repo_type, repo_id)
        if route == "commits" and args and method == "GET":
            return self._list_commits(repo_type, repo_id, "/".join(args))
        raise HubError(404, f"Route not implemented by HubServer: {method} {self.path}")

    # -- account / repo management -------------------------------------------------------------------------------

    def _whoami(self) -> None:
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            raise HubError(401, "Invalid credentials in Authorization header")
        name = self.hub.username
        self._send_json(
            {
                "type": "user",
                "id": hashlib.sha1(name.encode()).hexdigest()[:24],
                "name": name,
                "fullname": name,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
            }
        )

    def _repo_url(self, repo: Repo) -> str:
        return f"{self.hub.endpoint}/{_URL_PREFIXES[repo.repo_type]}{repo.repo_id}"

    def _create_repo(self) -> None:
        self._require_write_auth()
        payload = self._json_body()
        name = payload.get("name")
        if not name or "/" in name:
            raise HubError(400, f"Invalid repo name: {name!r}")
        repo_id = f"{payload.get('organization') or self.hub.username}/{name}"
        repo_type = payload.get("type") or "model"
        if repo_type not in _URL_PREFIXES:
            raise HubError(400, f"Unsupported repo type: {repo_type!r}")
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        with self.hub._lock:
            if (repo_type, repo_id) in self.hub._repos:
                # `create_repo(exist_ok=True)` reads the repo URL from the body of the 409 answer.
                existing_url = self._repo_url(self.hub._repos[(repo_type, repo_id)])
                raise HubError(409, f"You already created this {repo_type} repo", body={"url": existing_url})
            repo = Repo(repo_type, repo_id, private, _now_iso())
            initial = self.hub._new_commit(
                repo, None, "initial commit", "", {".gitattributes": _INITIAL_GITATTRIBUTES}
            )
            repo.refs["main"] = initial.oid
            self.hub._repos[(repo_type, repo_id)] = repo
        self._send_json({"url": self._repo_url(repo), "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> None:
        self._require_write_auth()
        payload = self._json_body()
        repo_id = f"{payload.get('organization') or self.hub.username}/{payload.get('name')}"
        with self.hub._lock:
            self.hub._repo(payload.get("type") or "model", repo_id)  # 404 if missing
            del self.hub._repos[(payload.get("type") or "model", repo_id)]
        self._send_json({})

    def _branch(self, repo_type: str, repo_id: str, branch: str) -> None:
        self._require_write_auth()
        with self.hub._lock:
            repo = self.hub._repo(repo_type, repo_id)
            if self.command == "DELETE":
                if branch not in repo.refs or branch == "main":
                    raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
                del repo.refs[branch]
                return self._send_json({})
            if branch in repo.refs:
                raise HubError(409, f"Reference already exists: refs/heads/{branch}")
            start = self._json_body().get("startingPoint") or "main"
            repo.refs[branch] = self.hub._commit(repo, start).oid
        self._send_json({})

    def _refs(self, repo_type: str, repo_id: str) -> None:
        include_prs = self._flag("include_prs")
        with self.hub._lock:
            repo = self.hub._repo(repo_type, repo_id)
            branches, prs = [], []
            for name, oid in sorted(repo.refs.items()):
                if name.startswith("refs/pr/"):
                    prs.append({"name": name, "ref": name, "targetCommit": oid})
                else:
                    branches.append({"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid})
        data: dict[str, Any] = {"branches": branches, "converts": [], "tags": []}
        if include_prs:
            data["pullRequests"] = prs
        self._send_json(data)

    def _list_commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        with self.hub._lock:
            repo = self.hub._repo(repo_type, repo_id)
            history = list(repo.history(self.hub._commit(repo, revision)))
        self._send_json(
            [
                {
                    "id": c.oid,
                    "title": c.title,
                    "message": c.message,
                    "date": c.date,
                    "authors": [{"user": self.hub.username}],
                }
                for c in history
            ]
        )

    # -- read routes ---------------------------------------------------------------------------------------------

    def _repo_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        with self.hub._lock:
            repo = self.hub._repo(repo_type, repo_id)
            commit = self.hub._commit(repo, revision)
        with_blobs = self._flag("blobs")
        siblings = []
        for path in sorted(commit.files):
            sibling: dict[str, Any] = {"rfilename": path}
            if with_blobs:
                sibling.update(size=len(commit.files[path]), blobId=git_blob_sha1(commit.files[path]))
            siblings.append(sibling)
        author = repo_id.split("/")[0] if "/" in repo_id else None
        self._send_json(
            {
                "_id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
                "id": repo_id,
                **({"modelId": repo_id} if repo_type == "model" else {}),
                "author": author,
                "sha": commit.oid,
                "lastModified": commit.date,
                "createdAt": repo.created_at,
                "private": repo.private,
                "disabled": False,
                "gated": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
                "usedStorage": sum(len(c) for c in commit.files.values()),
            }
        )

    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        """``HEAD``/``GET /{repo}/resolve/{revision}/{path}``: file metadata and content."""
        with self.hub._lock:
            repo = self.hub._repo(repo_type, repo_id)
            commit = self.hub._commit(repo, revision)
        content = commit.files.get(path)
        if content is None:
            raise HubError(404, "Entry not found", "EntryNotFound", headers={"X-Repo-Commit": commit.oid})
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{git_blob_sha1(content)}"',
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'inline; filename="{path.rsplit("/", 1)[-1]}"',
        }
        status, body = 200, content
        byte_range = self.headers.get("Range")
        if byte_range and byte_range.startswith("bytes=") and "," not in byte_range:
            # Single range only: what `http_get` sends to resume an interrupted download.
            first, _, last = byte_range[len("bytes=") :].partition("-")
            if first:
                start, end = int(first), int(last) if last else len(content) - 1
            else:  # suffix range "bytes=-N": the last N bytes
                start, end = max(len(content) - int(last), 0), len(content) - 1
            if start >= len(content) or start > end:
                raise HubError(
                    416,
                    "Requested range not satisfiable",
                    headers={"Content-Range": f"bytes */{len(content)}"},
                )
            end = min(end, len(content) - 1)
            status, body = 206, content[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
        self._send(status, body, content_type="application/octet-stream", headers=headers)

    def _entries(self, repo: Repo, commit: Commit, paths: list[str], *, expand: bool) -> list[dict[str, Any]]:
        """Tree entries (files and folders) for ``paths`` of ``commit``, as the tree/paths-info routes answer."""
        entries = []
        for path in paths:
            if path in commit.files:
                content = commit.files[path]
                entry: dict[str, Any] = {
                    "type": "file",
                    "oid": git_blob_sha1(content),
                    "size": len(content),
                    "path": path,
                }
            else:
                under = sorted(p for p in commit.files if p.startswith(path + "/"))
                # Folder oid: stable digest of what it contains (not a real git tree hash; no client checks it).
                digest = hashlib.sha1(
                    b"tree\0" + "\0".join(f"{p}:{git_blob_sha1(commit.files[p])}" for p in under).encode()
                )
                entry = {"type": "directory", "oid": digest.hexdigest(), "size": 0, "path": path}
            if expand:
                last = self._last_commit_touching(repo, commit, path)
                entry["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
            entries.append(entry)
        return entries

    @staticmethod
    def _last_commit_touching(repo: Repo, head: Commit, path: str) -> Commit:
        """Newest commit in ``head``'s history that changed the file ``path`` or anything under the folder ``path``."""

        def view(commit: Commit) -> dict[str, bytes]:
            return {p: c for p, c in commit.files.items() if p == path or p.startswith(path + "/")}

        last = head
        for commit in repo.history(head):
            parent = repo.commits[commit.parent] if commit.parent else None
            last = commit
            if parent is None or view(parent) != view(commit):
                break
        return last

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        """``GET /api/{type}s/{repo}/tree/{revision}[/{path}]?recursive=&expand=``: one page, no pagination."""
        with self.hub._lock:
            repo = self.hub._repo(repo_type, repo_id)
            commit = self.hub._commit(repo, revision)
        prefix = f"{path}/" if path else ""
        below = [p[len(prefix) :] for p in commit.files if p.startswith(prefix)]
        if path and not below:
            raise HubError(
                404, f"Entry not found: {path}", "EntryNotFound", headers={"X-Repo-Commit": commit.oid}
            )
        recursive = self._flag("recursive")
        paths: set[str] = set()
        for rel in below:
            parts = rel.split("/")
            depth = len(parts) if recursive else 1
            # Every folder on the way (when recursive) and the entry itself.
            paths.update(prefix + "/".join(parts[: i + 1]) for i in range(depth))
        # Folders first, then files, each sorted: like the Hub.
        ordered = sorted(paths, key=lambda p: (p in commit.files, p))
        with self.hub._lock:
            entries = self._entries(repo, commit, ordered, expand=self._flag("expand"))
        self._send_json(entries)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        """``POST /api/{type}s/{repo}/paths-info/{revision}`` (form: ``paths``, ``expand``); unknown paths are skipped."""
        form = parse_qs(self.body.decode(), keep_blank_values=True)
        expand = form.get("expand", ["false"])[-1].lower() in ("1", "true")
        with self.hub._lock:
            repo = self.hub._repo(repo_type, repo_id)
            commit = self.hub._commit(repo, revision)
            known = [
                p.strip("/")
                for p in form.get("paths", [])
                if p.strip("/") in commit.files or any(f.startswith(p.strip("/") + "/") for f in commit.files)
            ]
            entries = self._entries(repo, commit, known, expand=expand)
        self._send_json(entries)

    # -- write routes --------------------------------------------------------------------------------------------

    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        """``POST /api/{type}s/{repo}/preupload/{revision}``: every file is "regular" (committed inline, base64)."""
        self._require_write_auth()
        payload = self._json_body()
        with self.hub._lock:
            repo = self.hub._repo(repo_type, repo_id)
            # A new branch / PR does not exist yet: compare against main then.
            commit = repo.resolve(revision) or self.hub._commit(repo, "main")
        files = []
        for item in payload.get("files", []):
            existing = commit.files.get(item["path"])
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    # Lets the client drop unchanged files from the commit, as with the real Hub.
                    "oid": git_blob_sha1(existing) if existing is not None else None,
                }
            )
        self._send_json({"files": files, "commitOid": commit.oid})

    def _create_commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        """``POST /api/{type}s/{repo}/commit/{revision}``: NDJSON body (header line, then one line per operation)."""
        self._require_write_auth()
        with self.hub._lock:
            # Injected failures are checked first: nothing gets stored.
            if self.hub.fail_commits or self.hub.fail_next_commits > 0:
                self.hub.fail_next_commits = max(self.hub.fail_next_commits - 1, 0)
                status = self.hub.fail_status
                raise HubError(
                    status,
                    f"Injected failure: the commit endpoint answered HTTP {status} (HubServer failure injection)",
                )
            repo = self.hub._repo(repo_type, repo_id)
            lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
            if not lines or lines[0].get("key") != "header":
                raise HubError(400, "Commit payload must start with a 'header' line")
            header = lines[0]["value"]

            create_pr = self._flag("create_pr")
            if create_pr:
                base = self.hub._commit(repo, revision)
                repo.num_prs += 1
                target = f"refs/pr/{repo.num_prs}"
            elif revision in repo.refs:
                base, target = self.hub._commit(repo, revision), revision
            else:
                raise HubError(
                    404, f"Invalid rev id: {revision} (commits go to an existing branch)", "RevisionNotFound"
                )
            parent_commit = header.get("parentCommit")
            if parent_commit and parent_commit != base.oid:
                raise HubError(
                    412,
                    f"A commit has happened since. Parent commit {parent_commit} is not the head ({base.oid}).",
                )

            files = dict(base.files)
            for line in lines[1:]:
                self._apply_operation(files, line.get("key"), line.get("value") or {})
            commit = self.hub._new_commit(
                repo, base, header.get("summary") or "", header.get("description") or "", files
            )
            repo.refs[target] = commit.oid

        prefix = _URL_PREFIXES[repo_type]
        data: dict[str, Any] = {
            "success": True,
            "commitOid": commit.oid,
            "commitUrl": f"{self.hub.endpoint}/{prefix}{repo_id}/commit/{commit.oid}",
        }
        if create_pr:
            data["pullRequestUrl"] = f"{self.hub.endpoint}/{prefix}{repo_id}/discussions/{repo.num_prs}"
        self._send_json(data)

    @staticmethod
    def _apply_operation(files: dict[str, bytes], key: str | None, value: dict[str, Any]) -> None:
        path = str(value.get("path", "")).strip("/")
        if not path:
            raise HubError(400, f"Commit operation {key!r} without a path")
        if key == "file":
            if value.get("encoding", "base64") != "base64":
                raise HubError(400, f"Unsupported encoding {value.get('encoding')!r} for {path}")
            files[path] = base64.b64decode(value.get("content", ""))
        elif key == "deletedFile":
            if path not in files:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            del files[path]
        elif key == "deletedFolder":
            under = [p for p in files if p.startswith(path + "/")]
            if not under:
                raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
            for p in under:
                del files[p]
        elif key == "lfsFile":
            # Never happens with this server: preupload answers "regular" for every file.
            raise HubError(400, f"HubServer does not support LFS uploads (file {path})")
        else:
            raise HubError(400, f"Unknown commit operation {key!r}")


def hub_server_fixture() -> Iterator[HubServer]:
    """Body of a pytest fixture: a running :class:`HubServer`, stopped (threads joined) afterwards.

    Wire it in ``conftest.py`` with ``hub_server = pytest.fixture(hub_server_fixture)`` (or
    ``pytest.fixture(scope="module")(hub_server_fixture)`` to share one server between a module's tests).
    """
    with HubServer() as hub:
        yield hub


__all__ = ["Commit", "HubServer", "RequestRecord", "git_blob_sha1", "hub_server_fixture"]
