"""Settings for the whole test session.

Compiled decode steps (gradient.capture.compiled) write their sources under
``GRADIENT_CACHE_DIR``; the tests give them a directory of their own, removed at the end, so
that a test run neither fills the user's cache nor finds steps an earlier run compiled (a
clean machine's time is what the suite measures). Child processes inherit it.

The ``gradient`` commands compile a decode loop in a background process
(gradient.capture.background); in the tests (which call the commands in-process and as
children) they compile where they run, so that no compile outlives its test or competes with
the next ones. The tests of the background compile turn it on themselves.
"""

import atexit
import os
import shutil
import tempfile

if "GRADIENT_CACHE_DIR" not in os.environ:
    _directory = tempfile.mkdtemp(prefix="gradient-tests-")
    os.environ["GRADIENT_CACHE_DIR"] = _directory
    atexit.register(shutil.rmtree, _directory, ignore_errors=True)

os.environ.setdefault("GRADIENT_COMPILE_IN_BACKGROUND", "0")
