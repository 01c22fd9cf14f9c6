"""gradient.kernels.rows_alone: set within the block, nested blocks, exceptions, and threads
(a server's worker thread sets it for its own forwards only)."""

import threading

import pytest

from gradient.kernels import rows_alone, rows_alone_required


def test_within_the_block_and_not_after_it_even_after_an_error():
    assert not rows_alone_required()
    with rows_alone():
        assert rows_alone_required()
        with rows_alone():
            assert rows_alone_required()
        assert rows_alone_required()            # the inner block left the outer one's
    assert not rows_alone_required()
    with pytest.raises(KeyError):
        with rows_alone():
            raise KeyError("x")
    assert not rows_alone_required()


def test_another_thread_is_not_in_this_threads_block():
    inside, seen = threading.Event(), []

    def worker():
        inside.wait(10)
        seen.append(rows_alone_required())
    thread = threading.Thread(target=worker)
    thread.start()                  # running before the block, alongside it
    with rows_alone():
        inside.set()
        thread.join()
    assert seen == [False]
