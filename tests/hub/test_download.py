"""download_model through the real huggingface_hub code, against a fake offline cache."""

import os

import pytest

import gradient
from gradient.hub import ModelNotFoundError, UnsupportedWeightsError, download_model
from gradient.io import download as hub_download

from .checkpoints import add_to_cache

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


def test_fake_cache_has_huggingface_hubs_layout(hub_cache, gpt2_dir):
    import huggingface_hub

    add_to_cache(hub_cache, "org/tiny", gpt2_dir, commit=COMMIT_A, refs=("main", "v1"))
    info = huggingface_hub.scan_cache_dir(hub_cache)
    assert not info.warnings
    (repo,) = info.repos
    assert repo.repo_id == "org/tiny" and repo.repo_type == "model"
    (revision,) = repo.revisions
    assert revision.commit_hash == COMMIT_A and revision.refs == frozenset({"main", "v1"})
    assert {f.file_name for f in revision.files} == set(os.listdir(gpt2_dir))


def test_download_model_finds_the_cached_snapshot_offline(hub_cache, gpt2_dir):
    snapshot = add_to_cache(hub_cache, "org/tiny", gpt2_dir, commit=COMMIT_A)
    path = download_model("org/tiny")
    assert os.path.samefile(path, snapshot)
    assert os.path.isfile(os.path.join(path, "config.json"))


def test_short_names_resolve_to_their_repos(hub_cache, gpt2_dir):
    assert hub_download.resolve_repo_id("gpt2") == "openai-community/gpt2"
    assert hub_download.resolve_repo_id("gpt2-xl") == "openai-community/gpt2-xl"
    assert hub_download.resolve_repo_id("distilgpt2") == "distilbert/distilgpt2"
    assert hub_download.resolve_repo_id("org/name") == "org/name"
    snapshot = add_to_cache(hub_cache, "openai-community/gpt2", gpt2_dir)
    assert os.path.samefile(download_model("gpt2"), snapshot)


@pytest.mark.parametrize("bad", ["a/b/c", "org/na me", "", "org--x/y"])
def test_malformed_repo_ids_are_rejected_before_the_hub(bad):
    with pytest.raises(ModelNotFoundError, match="hub repo id"):
        hub_download.resolve_repo_id(bad)


def test_revisions_select_snapshots(hub_cache, gpt2_dir, gpt2_dir_b):
    a = add_to_cache(hub_cache, "org/tiny", gpt2_dir, commit=COMMIT_A, refs=("main",))
    b = add_to_cache(hub_cache, "org/tiny", gpt2_dir_b, commit=COMMIT_B, refs=("v2",))
    assert os.path.samefile(download_model("org/tiny"), a)
    assert os.path.samefile(download_model("org/tiny", revision="main"), a)
    assert os.path.samefile(download_model("org/tiny", revision="v2"), b)
    assert os.path.samefile(download_model("org/tiny", revision=COMMIT_B), b)


def test_cache_dir_argument_overrides_the_default_cache(hub_cache, gpt2_dir, tmp_path):
    other = tmp_path / "elsewhere"
    snapshot = add_to_cache(other, "org/tiny", gpt2_dir)
    with pytest.raises(ModelNotFoundError):
        download_model("org/tiny")                      # not in the default cache
    assert os.path.samefile(download_model("org/tiny", cache_dir=other), snapshot)


def test_repo_not_in_cache_offline_says_what_to_do(hub_cache):
    with pytest.raises(ModelNotFoundError) as info:
        download_model("org/absent")
    message = str(info.value)
    assert "org/absent" in message and "HF_HUB_OFFLINE" in message and str(hub_cache) in message
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, gradient.GradientError)


def test_unknown_revision_offline_lists_the_cached_ones(hub_cache, gpt2_dir):
    add_to_cache(hub_cache, "org/tiny", gpt2_dir, refs=("main", "v1"))
    with pytest.raises(ModelNotFoundError, match=r"revision v9.*\['main', 'v1'\]"):
        download_model("org/tiny", revision="v9")


def test_pickle_only_snapshot_is_refused(hub_cache, tmp_path):
    src = tmp_path / "bin-only"
    src.mkdir()
    (src / "config.json").write_text('{"model_type": "gpt2"}')
    (src / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    add_to_cache(hub_cache, "org/old", src)
    with pytest.raises(UnsupportedWeightsError, match=r"pickle.*pytorch_model\.bin.*never unpickles"):
        download_model("org/old")


def test_pickle_only_repo_is_refused_from_its_listing(hub_cache, tmp_path, monkeypatch):
    # The allow-list does not fetch *.bin, so the snapshot only shows the config: the listing
    # of the repo's files tells why there are no weights.
    src = tmp_path / "bin-only"
    src.mkdir()
    (src / "config.json").write_text('{"model_type": "gpt2"}')
    add_to_cache(hub_cache, "org/old", src)
    monkeypatch.setattr(hub_download, "_repo_files", lambda *a: ["config.json", "pytorch_model.bin"])
    with pytest.raises(UnsupportedWeightsError, match="only PyTorch pickle weights"):
        download_model("org/old")
    monkeypatch.setattr(hub_download, "_repo_files", lambda *a: ["config.json", "m-Q4_0.gguf"])
    with pytest.raises(UnsupportedWeightsError, match=r"no safetensors weights.*GGUF.*m-Q4_0\.gguf"):
        download_model("org/old")


def test_allow_patterns_fetch_only_what_a_model_needs():
    from huggingface_hub.utils import filter_repo_objects

    # openai-community/gpt2's files, plus what other repos carry
    repo = ["64-8bits.tflite", "config.json", "flax_model.msgpack", "generation_config.json",
            "merges.txt", "model.safetensors", "onnx/decoder_model.onnx", "pytorch_model.bin",
            "rust_model.ot", "tf_model.h5", "tokenizer.json", "tokenizer_config.json",
            "vocab.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
            "model.safetensors.index.json", "special_tokens_map.json", "chat_template.jinja",
            "original/consolidated.safetensors", "README.md", ".gitattributes", "x.gguf"]
    kept = set(filter_repo_objects(repo, allow_patterns=hub_download.ALLOW_PATTERNS,
                                   ignore_patterns=hub_download.IGNORE_PATTERNS))
    assert kept == {"config.json", "generation_config.json", "merges.txt", "model.safetensors",
                    "tokenizer.json", "tokenizer_config.json", "vocab.json",
                    "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                    "model.safetensors.index.json", "special_tokens_map.json",
                    "chat_template.jinja"}


def test_arguments_reach_snapshot_download(monkeypatch, gpt2_dir, no_network):
    import huggingface_hub

    seen = {}

    def fake_snapshot_download(repo_id, **kwargs):
        seen.update(kwargs, repo_id=repo_id)
        return gpt2_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    path = download_model("gpt2-medium", revision="r1", token="hf_x", cache_dir="/c",
                          max_workers=2)
    assert path == gpt2_dir
    assert seen["repo_id"] == "openai-community/gpt2-medium"
    assert (seen["revision"], seen["token"], seen["cache_dir"], seen["max_workers"]) == \
        ("r1", "hf_x", "/c", 2)
    assert seen["allow_patterns"] == hub_download.ALLOW_PATTERNS
    assert seen["ignore_patterns"] == hub_download.IGNORE_PATTERNS
    assert "tqdm_class" not in seen  # huggingface_hub's own progress bars


def _hub_error(cls):
    error = cls.__new__(cls)   # these need an HTTP response to construct normally
    Exception.__init__(error, "404 Client Error")
    return error


@pytest.mark.parametrize("name,match", [("RepositoryNotFoundError", "no model repo 'org/x'.*token"),
                                        ("GatedRepoError", "gated.*accept its terms"),
                                        ("RevisionNotFoundError", "no revision 'r9'")])
def test_hub_errors_become_gradient_errors(monkeypatch, no_network, name, match):
    import huggingface_hub
    from huggingface_hub import errors

    def fail(repo_id, **kwargs):
        raise _hub_error(getattr(errors, name))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fail)
    with pytest.raises(ModelNotFoundError, match=match):
        download_model("org/x", revision="r9")
