"""Fetching a model from the Hugging Face hub into the standard cache, and nothing more.

Everything goes through :func:`huggingface_hub.snapshot_download`, so gradient shares the cache
other libraries use (``~/.cache/huggingface/hub``, moved by ``HF_HOME`` or ``HF_HUB_CACHE``),
obeys ``HF_HUB_OFFLINE=1``, finds the token ``hf auth login`` stored (or ``HF_TOKEN``), and shows
huggingface_hub's progress bars (``HF_HUB_DISABLE_PROGRESS_BARS=1`` hides them). Only the files
a model needs are fetched: its config, safetensors weights and tokenizer (:data:`ALLOW_PATTERNS`),
never a repo's PyTorch pickles, ONNX exports or GGUF variants.

Example::

    >>> directory = download_model("gpt2")          # openai-community/gpt2, cached after the first call
    >>> sorted(os.listdir(directory))[:3]
    ['config.json', 'generation_config.json', 'merges.txt']
"""

from __future__ import annotations

import os
import re

from ..errors import ModelNotFoundError, UnsupportedWeightsError

__all__ = ["download_model", "resolve_repo_id", "MODEL_ALIASES", "ALLOW_PATTERNS"]

# Short names people type, and the repos they live in now (the hub moved the un-namespaced
# GPT-2 repos under organisations; the cache is keyed by the full id, so resolve before looking).
MODEL_ALIASES = {
    "gpt2": "openai-community/gpt2",
    "gpt2-medium": "openai-community/gpt2-medium",
    "gpt2-large": "openai-community/gpt2-large",
    "gpt2-xl": "openai-community/gpt2-xl",
    "distilgpt2": "distilbert/distilgpt2",
}

ALLOW_PATTERNS = [
    "config.json", "generation_config.json",
    "*.safetensors", "model.safetensors.index.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "vocab.json", "merges.txt", "chat_template.jinja",
]
# Top-level files only: subfolders hold other formats (onnx/, original/, gguf/) that would match
# "*.safetensors" or weigh gigabytes for nothing.
IGNORE_PATTERNS = ["*/*"]

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_REPO_ID = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?")


def resolve_repo_id(name: str) -> str:
    """The hub repo id for a model name: a short alias (``"gpt2"``) becomes its repo
    (``"openai-community/gpt2"``); an ``org/name`` id is returned as given.

    Example: ``resolve_repo_id("distilgpt2") == "distilbert/distilgpt2"``
    """
    name = str(name)
    repo_id = MODEL_ALIASES.get(name, name)
    if not _REPO_ID.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id:
        raise ModelNotFoundError(
            f"{name!r} is neither a local directory nor a hub repo id: expected 'org/name' (such "
            f"as 'HuggingFaceTB/SmolLM2-135M-Instruct'), a short name ({', '.join(MODEL_ALIASES)}), "
            "a directory holding config.json, or a .gguf file")
    return repo_id


def is_offline() -> bool:
    """Whether huggingface_hub is in offline mode (``HF_HUB_OFFLINE=1``, read at its import)."""
    from huggingface_hub import constants
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def cache_location(cache_dir=None) -> str:
    """The hub cache in use: ``cache_dir``, else huggingface_hub's (``HF_HUB_CACHE``/``HF_HOME``)."""
    from huggingface_hub import constants
    return os.fspath(cache_dir) if cache_dir is not None else constants.HF_HUB_CACHE


def download_model(repo_id: str, revision: str | None = None, token: str | bool | None = None,
                   cache_dir=None, local_files_only: bool = False, **snapshot_kwargs) -> str:
    """Make sure a hub model's config, safetensors weights and tokenizer are in the local cache
    and return the snapshot directory that holds them.

    ``repo_id`` is ``"org/name"`` or a short alias (:data:`MODEL_ALIASES`); ``revision`` a
    branch, tag or commit (default ``"main"``); ``token`` a hub token (default: the stored one,
    or ``HF_TOKEN``). With ``HF_HUB_OFFLINE=1`` or ``local_files_only=True`` nothing is
    downloaded and the cached snapshot is used. Other keyword arguments go to
    :func:`huggingface_hub.snapshot_download` (``endpoint``, ``max_workers`` ...).

    Raises :class:`ModelNotFoundError` when the repo (or revision) does not exist or is not
    cached while offline, and :class:`UnsupportedWeightsError` when it has only pickle weights.

    Example: ``path = download_model("HuggingFaceTB/SmolLM2-135M", revision="main")``
    """
    from huggingface_hub import snapshot_download

    repo_id = resolve_repo_id(repo_id)
    errors = _hub_errors()
    try:
        directory = snapshot_download(
            repo_id, revision=revision, token=token, cache_dir=cache_dir,
            local_files_only=local_files_only, allow_patterns=ALLOW_PATTERNS,
            ignore_patterns=IGNORE_PATTERNS, library_name="gradient",
            library_version=_gradient_version(), **snapshot_kwargs)
    except errors["gated"] as e:
        raise ModelNotFoundError(
            f"{repo_id} is a gated repo: accept its terms on https://huggingface.co/{repo_id}, "
            f"then log in (`hf auth login`), set HF_TOKEN, or pass token=... "
            f"({type(e).__name__})") from e
    except errors["revision"] as e:
        raise ModelNotFoundError(
            f"{repo_id} has no revision {revision!r}: pass an existing branch, tag or commit "
            f"hash ({type(e).__name__})") from e
    except errors["repository"] as e:
        raise ModelNotFoundError(
            f"no model repo {repo_id!r} on the hub (or it is private: log in with "
            f"`hf auth login`, set HF_TOKEN, or pass token=...). Check the spelling on "
            f"https://huggingface.co/models ({type(e).__name__})") from e
    except errors["local"] as e:
        raise ModelNotFoundError(_not_cached_message(repo_id, revision, cache_dir,
                                                     local_files_only, e)) from e
    directory = os.fspath(directory)
    _check_snapshot(directory, repo_id, revision, token, cache_dir)
    return directory


# ----------------------------------------------------------------------------- helpers
def _hub_errors() -> dict:
    """huggingface_hub's exception classes (in ``errors`` since 0.24, in ``utils`` before)."""
    try:
        from huggingface_hub import errors as m
    except ImportError:  # pragma: no cover - old huggingface_hub
        from huggingface_hub import utils as m
    local = (m.LocalEntryNotFoundError,)
    if hasattr(m, "IncompleteSnapshotError"):  # a partial snapshot while offline
        local += (m.IncompleteSnapshotError,)
    return {"gated": m.GatedRepoError, "revision": m.RevisionNotFoundError,
            "repository": m.RepositoryNotFoundError, "local": local}


def _gradient_version() -> str:
    from ..version import __version__
    return __version__


def _not_cached_message(repo_id, revision, cache_dir, local_files_only, error) -> str:
    cache = cache_location(cache_dir)
    where = f"{repo_id} (revision {revision or 'main'})"
    cached = _cached_revisions(repo_id, cache)
    have = (f"; the cache holds revisions {cached} of it" if cached else "")
    if is_offline() or local_files_only:
        why = ("downloads are off (HF_HUB_OFFLINE=1)" if is_offline()
               else "downloads are off (local_files_only=True)")
        return (f"{where} is not in the Hugging Face cache at {cache}{have}, and {why}. Download "
                f"it once with network access (`hf download {repo_id}`, or run this again with "
                "HF_HUB_OFFLINE unset), point HF_HOME or HF_HUB_CACHE at a cache that holds it, or "
                "pass a local directory with config.json")
    from huggingface_hub import constants
    # the hub may have answered (a 5xx, a mirror without the Hub's headers): name the endpoint
    return (f"could not fetch {where} from the hub at {constants.ENDPOINT}, and it is not in "
            f"the cache at {cache}{have}: check the network connection and HF_ENDPOINT, or pass "
            f"a local directory ({type(error).__name__}: {error})")


def _cached_revisions(repo_id: str, cache: str) -> list[str]:
    """Branch/tag names under ``refs/`` of a cached repo whose snapshot holds a model (empty
    when it is not cached). huggingface_hub writes a ref, and the snapshot file by file, as it
    downloads, so a download that failed leaves a ref to a partial snapshot: not a revision
    that loads."""
    repo = os.path.join(cache, "models--" + repo_id.replace("/", "--"))
    refs = os.path.join(repo, "refs")
    found = []
    for root, _, files in os.walk(refs):
        for f in files:
            path = os.path.join(root, f)
            with open(path) as fh:
                commit = fh.read().strip()
            snapshot = os.path.join(repo, "snapshots", commit)
            if os.path.isdir(snapshot) and _holds_a_model(set(os.listdir(snapshot))):
                found.append(os.path.relpath(path, refs).replace(os.sep, "/"))
    return sorted(found)


def _holds_a_model(files: set) -> bool:
    """Whether a snapshot's top-level ``files`` are what ``from_pretrained`` needs."""
    return "config.json" in files and any(f.endswith(".safetensors") for f in files)


def _check_snapshot(directory, repo_id, revision, token, cache_dir) -> None:
    """Fail early, and say why, when a snapshot lacks what ``from_pretrained`` needs: the
    usual cause is a repo with only pickle weights, which the allow-list did not fetch."""
    present = set(os.listdir(directory))
    if _holds_a_model(present):
        return
    has_weights = any(f.endswith(".safetensors") for f in present)
    repo_files = _repo_files(repo_id, revision, token, cache_dir)
    everything = sorted(present | set(repo_files or ()))
    pickles = [f for f in everything if f.endswith(_PICKLE_SUFFIXES)]
    ggufs = [f for f in everything if f.endswith(".gguf")]
    at = f"{repo_id} (revision {revision or 'main'})"
    if not has_weights and pickles:
        raise UnsupportedWeightsError(
            f"{at} has only PyTorch pickle weights ({', '.join(pickles[:4])}); gradient never "
            "unpickles, since loading a pickle can run arbitrary code. Use a repo (or a "
            "'refs/pr/N' revision) with safetensors weights, or convert once with transformers: "
            "AutoModelForCausalLM.from_pretrained(...).save_pretrained(dir) writes safetensors")
    if not has_weights:
        hint = (f"; it holds GGUF files ({', '.join(ggufs[:4])}): download one and pass its "
                "path" if ggufs else "")
        listing = (f"; files: {everything[:20]}" if repo_files is not None else
                   f"; the cached snapshot holds {sorted(present)}")
        raise UnsupportedWeightsError(f"{at} has no safetensors weights{hint}{listing}")
    raise ModelNotFoundError(f"{at} has no config.json at its top level, so it is not a "
                             f"transformers-layout model; files: {everything[:20]}")


def _repo_files(repo_id, revision, token, cache_dir) -> list[str] | None:
    """Every file of the repo at ``revision``: asked of the hub when online, read from the
    cached tree listing when offline; None when neither can tell."""
    try:
        if not is_offline():
            from huggingface_hub import HfApi
            return HfApi(token=token).list_repo_files(repo_id, revision=revision)
        from huggingface_hub import get_cached_repo_tree  # huggingface_hub >= 1.x
        return [f.path for f in get_cached_repo_tree(repo_id, revision=revision,
                                                     cache_dir=cache_dir)]
    except Exception:  # the listing only improves a message: never fail because of it
        return None
