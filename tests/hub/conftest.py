"""Fixtures for the hub tests: a fake, offline Hugging Face cache and no network at all."""

import os
import socket

import pytest

from .checkpoints import built


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError("a hub test tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch, no_network):
    """An empty hub cache under a fresh ``HF_HOME``, with ``HF_HUB_OFFLINE=1``.

    huggingface_hub reads these variables once, when it is imported, into
    ``huggingface_hub.constants``; its functions read the constants at call time, so both the
    environment (for subprocesses) and the constants (for this process) are patched.
    """
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    cache = home / "hub"
    cache.mkdir(parents=True)
    env = {"HF_HOME": str(home), "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


@pytest.fixture(scope="session")
def gpt2_dir(tmp_path_factory):
    return built("gpt2", tmp_path_factory)


@pytest.fixture(scope="session")
def gpt2_dir_b(tmp_path_factory):
    """A second GPT-2 with other weights, for the revision tests."""
    return built("gpt2-b", tmp_path_factory)


@pytest.fixture(scope="session")
def llama_dir(tmp_path_factory):
    import gradient.models
    if "llama" not in gradient.models.MODEL_TYPES:
        pytest.skip("gradient.models does not register the LLaMA family yet")
    return built("llama", tmp_path_factory)


def snapshot_env(cache) -> dict:
    """The environment a subprocess needs to see ``cache`` offline."""
    return dict(os.environ, HF_HOME=str(cache.parent), HF_HUB_CACHE=str(cache), HF_HUB_OFFLINE="1")
