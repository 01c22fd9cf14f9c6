"""A stand-in for huggingface.co on 127.0.0.1: just the part of the Hub's HTTP API that
``huggingface_hub.snapshot_download`` (2.x) uses to fetch a public model repo, so tests can run
huggingface_hub's real download code (httpx, metadata requests, cache writing) with no network.

What it serves (``org/name`` is a repo id, ``REV`` a branch or a 40-hex commit, URL-quoted):

* ``GET /api/models/org/name[/revision/REV]`` -- model info: ``id``, ``sha`` (the commit REV
  resolves to), ``siblings`` ... (``HfApi.model_info``, which ``snapshot_download`` calls to
  resolve a branch to a commit).
* ``GET /api/models/org/name/tree/REV[/path]?recursive=..&expand=..`` -- the file listing, as the
  Hub gives it (``type``, ``oid``, ``size``, ``path``, ``lfs`` for LFS files), a few entries per
  page with the next page in a ``Link: <...>; rel="next"`` header (``HfApi.list_repo_tree``).
* ``HEAD``/``GET /org/name/resolve/REV/path`` -- a regular (git) file: ``200`` with
  ``ETag: "<git blob sha1>"``, ``X-Repo-Commit``, ``Content-Length``. An LFS file (weights):
  ``302`` to the "CDN" (a second server on another port, so huggingface_hub treats it as off-Hub
  and takes the metadata from the redirect) with ``X-Linked-Etag: "<sha256>"``,
  ``X-Linked-Size`` and ``Location``.
* ``HEAD``/``GET /lfs/<sha256>`` on the CDN -- the LFS file's bytes.
* Errors as the Hub sends them: an unknown repo is ``401`` with ``X-Error-Code: RepoNotFound``, an
  unknown revision ``404 RevisionNotFound``, an unknown file ``404 EntryNotFound``.

No Xet headers (``X-Xet-Hash``, ``Link: rel="xet-auth"``) and no ``xetHash`` in listings, so
huggingface_hub downloads everything over plain HTTP even with ``hf_xet`` installed. Every request
is logged (``FakeHub.requests``) so tests can check what was and was not fetched.

Example::

    >>> with FakeHub() as hub:
    ...     hub.add_repo("org/tiny", {"c" * 40: {"config.json": b"{}"}}, refs={"main": "c" * 40})
    ...     env = dict(os.environ, HF_ENDPOINT=hub.endpoint)   # for a subprocess
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".msgpack", ".h5", ".onnx", ".gguf", ".pt")
PAGE_SIZE = 3  # tree entries per page: small, so listing a repo takes several pages


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a file's content (what the Hub sends as a regular file's ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class RepoFileData:
    path: str
    data: bytes

    @property
    def is_lfs(self) -> bool:
        return self.path.endswith(LFS_SUFFIXES)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def etag(self) -> str:
        """The name huggingface_hub gives the file's blob in its cache."""
        return self.sha256 if self.is_lfs else git_blob_sha1(self.data)

    def tree_entry(self) -> dict:
        if not self.is_lfs:
            return {"type": "file", "oid": git_blob_sha1(self.data), "size": len(self.data),
                    "path": self.path}
        pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
                   f"size {len(self.data)}\n").encode()
        return {"type": "file", "oid": git_blob_sha1(pointer), "size": len(self.data),
                "path": self.path,
                "lfs": {"oid": self.sha256, "size": len(self.data), "pointerSize": len(pointer)}}


@dataclass(frozen=True)
class Request:
    server: str   # "hub" or "cdn"
    method: str
    path: str     # unquoted, without the query string
    query: dict   # parsed query string (values are lists)
    headers: dict  # lower-cased names


class FakeHub:
    """The hub and its CDN, each a ``ThreadingHTTPServer`` on 127.0.0.1 in a daemon thread.

    ``add_repo(repo_id, commits, refs)`` serves ``commits`` (commit sha -> {path: bytes}) with
    ``refs`` (branch -> commit sha). ``endpoint`` is the value for ``HF_ENDPOINT``; ``requests``
    the log of every request received, in order. Files named in ``unavailable`` get a 503 with
    ``Retry-After: 0``, as from a hub that is down after answering the listing.
    """

    def __init__(self):
        self.repos: dict[str, dict] = {}
        self.requests: list[Request] = []
        self.unavailable: set[str] = set()
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []

    # -- content
    def add_repo(self, repo_id: str, commits: dict, refs: dict) -> None:
        self.repos[repo_id] = {
            "commits": {sha: {p: RepoFileData(p, d) for p, d in files.items()}
                        for sha, files in commits.items()},
            "refs": dict(refs)}

    def lfs_blob(self, sha256: str) -> RepoFileData | None:
        for repo in self.repos.values():
            for files in repo["commits"].values():
                for f in files.values():
                    if f.is_lfs and f.sha256 == sha256:
                        return f
        return None

    # -- lifecycle
    def start(self) -> "FakeHub":
        for role in ("hub", "cdn"):
            server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            server.daemon_threads = True
            server.hub, server.role = self, role
            threading.Thread(target=server.serve_forever, args=(0.05,),  # quick shutdown
                             name=f"fake-{role}", daemon=True).start()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _url(self, role: str) -> str:
        server = self._servers[("hub", "cdn").index(role)]
        return f"http://127.0.0.1:{server.server_address[1]}"

    @property
    def endpoint(self) -> str:
        return self._url("hub")

    @property
    def cdn(self) -> str:
        return self._url("cdn")

    def log(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects: every reply has Content-Length

    def log_message(self, *args):  # quiet: the request log is FakeHub.requests
        pass

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_GET(self):
        self._dispatch("GET")

    # -- routing
    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)  # path still quoted: a revision may hold "/"
        hub: FakeHub = self.server.hub
        hub.log(Request(self.server.role, method, unquote(path), query,
                        {k.lower(): v for k, v in self.headers.items()}))
        if self.server.role == "cdn":
            blob = hub.lfs_blob(path[len("/lfs/"):]) if path.startswith("/lfs/") else None
            if blob is None:
                return self._error(404, "EntryNotFound", "Entry not found", method)
            return self._send(200, blob.data, method, {"ETag": f'"{blob.sha256}"',
                                                       "Content-Type": "application/octet-stream"})
        if path.startswith("/api/models/"):
            return self._api(path[len("/api/models/"):], url.query, query, method)
        if "/resolve/" in path:
            repo_id, _, rest = path.lstrip("/").partition("/resolve/")
            revision, _, filename = rest.partition("/")
            return self._resolve(unquote(repo_id), unquote(revision), unquote(filename), method)
        self._error(404, None, "Not found", method)

    def _commit(self, repo_id: str, revision: str, method: str):
        """(commit sha, files) for a revision, or None after sending the Hub's error."""
        repo = self.server.hub.repos.get(repo_id)
        if repo is None:
            self._error(401, "RepoNotFound", "Repository not found", method)
            return None
        sha = repo["refs"].get(revision, revision)
        if sha not in repo["commits"]:
            self._error(404, "RevisionNotFound", "Invalid rev id: " + revision, method)
            return None
        return sha, repo["commits"][sha]

    def _api(self, rest: str, raw_query: str, query: dict, method: str) -> None:
        if "/tree/" in rest:
            repo_id, _, rest = rest.partition("/tree/")
            revision, _, folder = rest.partition("/")
            found = self._commit(unquote(repo_id), unquote(revision), method)
            if found:
                self._tree(found[1], unquote(folder), query, raw_query, method)
            return
        repo_id, _, revision = rest.partition("/revision/")
        repo_id = unquote(repo_id)
        found = self._commit(repo_id, unquote(revision) or "main", method)
        if found:
            sha, files = found
            info = {"_id": hashlib.md5(repo_id.encode()).hexdigest()[:24], "id": repo_id,
                    "modelId": repo_id, "author": repo_id.partition("/")[0], "sha": sha,
                    "lastModified": "2024-02-19T10:57:45.000Z", "private": False,
                    "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
                    "library_name": "transformers", "pipeline_tag": "text-generation",
                    "siblings": [{"rfilename": p} for p in sorted(files)]}
            self._json(info, method)

    def _tree(self, files: dict, folder: str, query: dict, raw_query: str, method: str) -> None:
        recursive = query.get("recursive", ["False"])[0].lower() == "true"
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        entries, folders = [], set()
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            parts = path[len(prefix):].split("/")
            for depth in range(1, len(parts)):  # the folders on the way, listed once each
                sub = prefix + "/".join(parts[:depth])
                if sub not in folders and (recursive or depth == 1):
                    folders.add(sub)
                    entries.append({"type": "directory", "oid": git_blob_sha1(sub.encode()),
                                    "size": 0, "path": sub})
            if recursive or len(parts) == 1:
                entries.append(files[path].tree_entry())
        if prefix and not entries:
            return self._error(404, "EntryNotFound", f"{folder} does not exist", method)
        start = int(query.get("cursor", ["0"])[0])
        page, headers = entries[start:start + PAGE_SIZE], {}
        if start + PAGE_SIZE < len(entries):
            params = {k: v[0] for k, v in parse_qs(raw_query).items() if k != "cursor"}
            params["cursor"] = start + PAGE_SIZE
            headers["Link"] = (f'<{self.server.hub.endpoint}{urlsplit(self.path).path}?'
                               f'{urlencode(params)}>; rel="next"')
        self._json(page, method, headers)

    def _resolve(self, repo_id: str, revision: str, filename: str, method: str) -> None:
        found = self._commit(repo_id, revision, method)
        if not found:
            return
        sha, files = found
        if filename in self.server.hub.unavailable:
            # Retry-After 0: huggingface_hub retries after 1 s instead of its backoff's 23 s
            return self._error(503, None, "Service Unavailable", method, {"Retry-After": "0"})
        f = files.get(filename)
        if f is None:
            return self._error(404, "EntryNotFound", f"{filename} does not exist", method,
                               {"X-Repo-Commit": sha})
        headers = {"X-Repo-Commit": sha, "Accept-Ranges": "bytes"}
        if f.is_lfs:  # the Hub redirects LFS files to its CDN, with the metadata on the redirect
            headers.update({"Location": f"{self.server.hub.cdn}/lfs/{f.sha256}",
                            "X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(len(f.data)),
                            "ETag": f'"{f.tree_entry()["oid"]}"'})
            return self._send(302, b"", method, headers)
        headers.update({"ETag": f'"{f.etag}"', "Content-Type": "text/plain; charset=utf-8"})
        self._send(200, f.data, method, headers)

    # -- replies
    def _json(self, value, method: str, headers=None) -> None:
        self._send(200, json.dumps(value).encode(), method,
                   {"Content-Type": "application/json; charset=utf-8", **(headers or {})})

    def _error(self, status: int, code: str | None, message: str, method: str,
               headers=None) -> None:
        headers = {**(headers or {}), "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), method,
                   {"Content-Type": "application/json; charset=utf-8", **headers})

    def _send(self, status: int, body: bytes, method: str, headers: dict) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)
