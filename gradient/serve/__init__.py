"""``gradient serve``: an OpenAI-compatible HTTP server for any model ``gradient.hub.load``
takes (Hugging Face directories, hub ids, GGUF files).

Example::

    $ gradient serve SmolLM2-135M-Instruct.Q4_1.gguf --port 8000
    >>> from openai import OpenAI
    >>> client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="none")
    >>> client.chat.completions.create(model="SmolLM2-135M-Instruct.Q4_1",
    ...                                messages=[{"role": "user", "content": "Hi"}])

Up to ``--max-batch`` sequences (default 8) are decoded together, joining and leaving the
batch between steps (continuous batching, :mod:`.batching`); ``--draft`` (a smaller model) or
``--prompt-lookup N`` (n-gram drafts from the text) adds speculative decoding for a greedy
request while it runs alone.
"""

from __future__ import annotations

import os

from .outbox import STREAM_INTERVAL

__all__ = ["create_app", "serve", "model_name", "STOP_SECONDS"]

#: How long a stopped server waits for the replies it is writing before it cancels them.
STOP_SECONDS = 5
#: How long before then the replies still written are ended with an error that says the
#: server stops (a stream's last event; a whole reply's 503), so that they end in order.
END_REPLIES_BEFORE = 0.5


def create_app(model, tokenizer, model_id: str, max_queue: int = 64, draft=None,
               max_batch: int = 8, prompt_lookup: int = 0, api_key: str | None = None,
               stream_interval: float = STREAM_INTERVAL):
    """The ASGI app serving ``model`` as ``model_id`` (see :mod:`.app`); ``max_batch``
    sequences are decoded together; ``draft`` (a smaller model of the same vocabulary) or
    ``prompt_lookup`` (n-gram drafts from the text) drafts tokens for greedy requests;
    ``api_key``: what ``/v1/`` requests must bring (``Authorization: Bearer KEY``); a
    stream's tokens after its first are written together every ``stream_interval``
    seconds (0: each as it comes)."""
    from .app import create_app as make
    return make(model, tokenizer, model_id, max_queue, draft, max_batch, prompt_lookup, api_key,
                stream_interval)


def model_name(source: str) -> str:
    """The name a model is served under: its file's or folder's name without ``.gguf``, or the
    hub id as given."""
    base = os.path.basename(os.path.normpath(source)) if os.path.exists(source) else source
    return base[:-5] if base.endswith(".gguf") else base


def serve(model, tokenizer, model_id: str, host: str = "127.0.0.1", port: int = 8000,
          max_queue: int = 64, draft=None, max_batch: int = 8, prompt_lookup: int = 0,
          api_key: str | None = None, warm_up: bool = True,
          stream_interval: float = STREAM_INTERVAL) -> None:
    """Serve a loaded ``model`` as ``model_id`` until interrupted (uvicorn); first, with
    ``warm_up``, answer a short chat of its own (:meth:`Engine.warm_up`)."""
    import uvicorn

    model.eval()
    if draft is not None:
        draft.eval()
    app = create_app(model, tokenizer, model_id, max_queue, draft, max_batch, prompt_lookup,
                     api_key, stream_interval)
    if warm_up:
        app.state.engine.warm_up()
    print(f"gradient serve: {model_id} on http://{host}:{port}/v1 (Ctrl-C stops)", flush=True)
    # stopped (Ctrl-C, SIGTERM), the server lets the replies being written finish for a few
    # seconds, then ends them: a reply of thousands of tokens does not hold the stop
    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            timeout_graceful_shutdown=STOP_SECONDS)
    _stopping_server(config, app.state.stop_replies).run()


def _stopping_server(config, stop_replies):
    """uvicorn's server for ``config`` that, once stopped, waits for the replies being written
    until :data:`END_REPLIES_BEFORE` seconds before :data:`STOP_SECONDS`, then ends them with
    ``stop_replies()`` (an error event closing each stream). uvicorn's own end for them,
    cancelling their tasks, closes a stream's connection mid-reply: the ``openai`` client then
    raises a bare "Connection error.", and a reader of the events that does not check for
    ``[DONE]`` takes what came for the whole reply."""
    import asyncio

    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None):
            timer = asyncio.get_running_loop().call_later(STOP_SECONDS - END_REPLIES_BEFORE,
                                                          stop_replies)
            try:
                await super().shutdown(sockets)
            finally:
                timer.cancel()

    return Server(config)
