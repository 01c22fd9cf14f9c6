"""gradient.hub.load online: huggingface_hub's real HTTP code against a local stand-in for the Hub.

A :class:`~tests.hub.fake_hub_server.FakeHub` on 127.0.0.1 serves ``openai-community/gpt2``
(the small test GPT-2 on ``main``, the other-weights one on branch ``v2``) next to files gradient
must not fetch (pickles, Flax weights, an ONNX folder, README). ``gradient.hub.load("gpt2")`` runs
in a subprocess with ``HF_ENDPOINT`` pointing at it, so huggingface_hub reads its settings from
the environment at import as it does for a user, and its own code does the work: the model-info
and paginated tree requests, HEAD metadata, the redirect to the "CDN", blobs/snapshots/refs.
The tests then check what was fetched (in the server's log and the cache), and that later
processes load the same model from that cache without a request, with ``HF_HUB_OFFLINE=1`` or with
the hub unreachable.
"""

import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradient

from .fake_hub_server import PAGE_SIZE, FakeHub, RepoFileData

REPO = "openai-community/gpt2"  # what the short name "gpt2" resolves to
MAIN = "e7da7f221d5bf496a48136c0cd264e630fe9fcc8"
V2 = "0123456789abcdef0123456789abcdef01234567"
NEEDED = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
          "tokenizer_config.json"}
NOT_NEEDED = {"pytorch_model.bin": b"\x80\x04 a pickle gradient must never fetch",
              "flax_model.msgpack": b"\x82\xa4flax weights",
              "onnx/model.safetensors": b"matches *.safetensors, but sits in a subfolder",
              "README.md": b"# gpt2\n", ".gitattributes": b"*.safetensors filter=lfs\n"}
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120

# Run in the child process after load, and in this process on the local checkpoint.
PROBE = '''
def probe(model, tokenizer):
    import gradient
    ids = tokenizer.encode("Hello, my dog")
    out = model.generate(gradient.tensor([ids]), max_new_tokens=8, eos_token_id=[])
    logits = model(gradient.tensor([ids])).logits[0, -1]
    return {"tokens": out[0].tolist()[len(ids):], "logits": logits.detach().numpy().tolist()}
'''
CHILD = PROBE + '''
import json, sys
import gradient
name, kwargs = sys.argv[1], json.loads(sys.argv[2])
try:
    model, tokenizer = gradient.hub.load(name, **kwargs)
except gradient.hub.ModelNotFoundError as e:
    print(json.dumps({"error": str(e)}))
else:
    print(json.dumps({"snapshot": model.name_or_path, "version": gradient.__version__,
                      **probe(model, tokenizer)}))
'''


def probe(model, tokenizer) -> dict:
    namespace = {}
    exec(PROBE, namespace)
    return namespace["probe"](model, tokenizer)


def run_load(home, endpoint, name="gpt2", offline=False, **kwargs) -> dict:
    """``gradient.hub.load(name, **kwargs)`` in a fresh Python, as a user would run it: the hub
    settings come from the environment only (no token, no proxy, no other HF_* variable)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "HUGGINGFACE_")) and k != "TRANSFORMERS_OFFLINE"
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(home), HF_HUB_DISABLE_TELEMETRY="1",
               NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run([sys.executable, "-c", CHILD, name, json.dumps(kwargs)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["stderr"] = done.stderr
    return result


def files_of(directory) -> dict:
    return {name: (Path(directory) / name).read_bytes() for name in os.listdir(directory)}


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def hub(gpt2_dir, gpt2_dir_b):
    server = FakeHub()
    server.add_repo(REPO, {MAIN: {**files_of(gpt2_dir), **NOT_NEEDED},
                           V2: {**files_of(gpt2_dir_b), **NOT_NEEDED}},
                    refs={"main": MAIN, "v2": V2})
    assert set(files_of(gpt2_dir)) == NEEDED  # else NEEDED below says the wrong thing
    with server:
        yield server


@pytest.fixture(scope="module")
def expected(gpt2_dir):
    return probe(*gradient.hub.load(gpt2_dir))


@pytest.fixture(scope="module")
def online(hub, tmp_path_factory):
    """One online ``load("gpt2")`` into an empty HF_HOME: its result, cache and requests."""
    home = tmp_path_factory.mktemp("hf_home")
    start = len(hub.requests)
    result = run_load(home, hub.endpoint)
    return {"result": result, "cache": home / "hub", "requests": hub.requests[start:]}


# ----------------------------------------------------------------------------- tests
def test_load_gpt2_downloads_it_and_generates_as_the_local_checkpoint(online, expected):
    result = online["result"]
    assert "error" not in result, result.get("error")
    snapshot = online["cache"] / f"models--{REPO.replace('/', '--')}" / "snapshots" / MAIN
    assert os.path.samefile(result["snapshot"], snapshot)
    assert result["tokens"] == expected["tokens"] and len(result["tokens"]) == 8
    np.testing.assert_allclose(result["logits"], expected["logits"], rtol=1e-6, atol=1e-6)
    assert f"Fetching {len(NEEDED)} files" in result["stderr"]  # huggingface_hub's progress bar


def test_only_the_files_a_model_needs_are_requested(online, hub):
    requests = online["requests"]
    weights = hub.repos[REPO]["commits"][MAIN]["model.safetensors"]
    resolve = f"/{REPO}/resolve/{MAIN}/"
    info = [r for r in requests if r.path == f"/api/models/{REPO}/revision/main"]
    tree = [r for r in requests if r.path == f"/api/models/{REPO}/tree/{MAIN}"]
    heads = {r.path[len(resolve):] for r in requests if r.method == "HEAD"}
    hub_gets = {r.path[len(resolve):] for r in requests
                if r.server == "hub" and r.method == "GET" and r.path.startswith(resolve)}
    cdn_gets = [r.path for r in requests if r.server == "cdn"]
    assert len(info) == 1
    # the whole recursive listing, page after page (5 + 5 files and the onnx/ folder)
    assert all(r.query.get("recursive") == ["true"] for r in tree)
    assert len(tree) == math.ceil((len(NEEDED) + len(NOT_NEEDED) + 1) / PAGE_SIZE) > 1
    assert heads == NEEDED and all(r.server == "hub" for r in requests if r.method == "HEAD")
    assert hub_gets == NEEDED - {"model.safetensors"}  # the weights come from the CDN
    assert cdn_gets == [f"/lfs/{weights.sha256}"]
    assert len(requests) == len(info) + len(tree) + len(heads) + len(hub_gets) + len(cdn_gets)
    assert not [(r.method, r.path) for r in requests for name in NOT_NEEDED if name in r.path]
    version = online["result"]["version"]
    for r in requests:  # library_name reached huggingface_hub; no token was sent
        assert f"gradient/{version}" in r.headers.get("user-agent", ""), r
        assert "authorization" not in r.headers, r


def test_the_cache_has_huggingface_hubs_layout(online, gpt2_dir):
    import huggingface_hub

    cache = online["cache"]
    repo = cache / f"models--{REPO.replace('/', '--')}"
    assert (repo / "refs" / "main").read_text() == MAIN
    snapshot, source = repo / "snapshots" / MAIN, files_of(gpt2_dir)
    blobs = {RepoFileData(name, data).etag: data for name, data in source.items()}
    assert {p.name: p.read_bytes() for p in (repo / "blobs").iterdir()} == blobs
    assert sorted(os.listdir(snapshot)) == sorted(NEEDED)
    for name, data in source.items():
        link = snapshot / name
        assert link.is_symlink() and not os.path.isabs(os.readlink(link))
        assert os.readlink(link) == os.path.join("..", "..", "blobs", RepoFileData(name, data).etag)
        assert link.read_bytes() == data

    info = huggingface_hub.scan_cache_dir(cache)
    assert not info.warnings, info.warnings
    (cached,) = info.repos
    assert (cached.repo_id, cached.repo_type) == (REPO, "model")
    (revision,) = cached.revisions
    assert revision.commit_hash == MAIN and revision.refs == frozenset({"main"})
    assert {f.file_name for f in revision.files} == NEEDED


@pytest.fixture
def refused_endpoint():
    """An endpoint on 127.0.0.1 that refuses connections: a port held bound, never listening."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE=1", "hub unreachable"])
def test_a_later_process_loads_the_populated_cache_without_a_request(online, hub, expected,
                                                                     refused_endpoint, how):
    before = len(hub.requests)
    if how == "HF_HUB_OFFLINE=1":  # the hub is up, but must not be asked
        result = run_load(online["cache"].parent, hub.endpoint, offline=True)
    else:                          # online mode, no connection: huggingface_hub falls back
        result = run_load(online["cache"].parent, refused_endpoint)
    assert hub.requests[before:] == []
    assert "error" not in result, result.get("error")
    assert os.path.samefile(result["snapshot"], online["result"]["snapshot"])
    assert result["tokens"] == expected["tokens"]
    np.testing.assert_allclose(result["logits"], expected["logits"], rtol=1e-6, atol=1e-6)


def test_revision_fetches_another_branch(hub, gpt2_dir_b, expected, tmp_path):
    expected_b = probe(*gradient.hub.load(gpt2_dir_b))
    assert not np.allclose(expected_b["logits"], expected["logits"])  # the revisions differ
    result = run_load(tmp_path, hub.endpoint, revision="v2")
    assert "error" not in result, result.get("error")
    repo = tmp_path / "hub" / f"models--{REPO.replace('/', '--')}"
    assert os.path.samefile(result["snapshot"], repo / "snapshots" / V2)
    assert (repo / "refs" / "v2").read_text() == V2 and not (repo / "refs" / "main").exists()
    assert result["tokens"] == expected_b["tokens"]
    np.testing.assert_allclose(result["logits"], expected_b["logits"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,kwargs,message", [
    ("org/absent", {}, r"no model repo 'org/absent' on the hub"),
    ("gpt2", {"revision": "v9"}, r"openai-community/gpt2 has no revision 'v9'"),
])
def test_hub_errors_become_model_not_found(hub, tmp_path, name, kwargs, message):
    before = len(hub.requests)
    result = run_load(tmp_path, hub.endpoint, name=name, **kwargs)
    assert re.search(message, result.get("error", "")), result
    assert len(hub.requests) > before  # the hub said no: it was asked
    assert not list((tmp_path / "hub").glob("models--*/snapshots/*"))


def test_a_hub_that_fails_mid_download_is_named_in_the_error(hub, tmp_path):
    hub.unavailable = {"model.safetensors"}
    try:
        result = run_load(tmp_path, hub.endpoint)
    finally:
        hub.unavailable = set()
    error = result.get("error", "")
    assert f"could not fetch {REPO} (revision main) from the hub at {hub.endpoint}" in error, result
    # huggingface_hub wrote refs/main and the small files before the weights failed: a
    # partial snapshot, which is not offered as a cached revision
    assert (tmp_path / "hub" / f"models--{REPO.replace('/', '--')}" / "refs" / "main").exists()
    assert "the cache holds revisions" not in error
