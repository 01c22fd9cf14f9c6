"""Settings for the whole test session.

Compiled decode steps (gradient.capture.compiled) write their sources under
``GRADIENT_CACHE_DIR``; the tests give them a directory of their own, removed at the end, so
that a test run neither fills the user's cache nor finds steps an earlier run compiled (a
clean machine's time is what the suite measures). Child processes inherit it.
"""

import atexit
import os
import shutil
import tempfile

if "GRADIENT_CACHE_DIR" not in os.environ:
    _directory = tempfile.mkdtemp(prefix="gradient-tests-")
    os.environ["GRADIENT_CACHE_DIR"] = _directory
    atexit.register(shutil.rmtree, _directory, ignore_errors=True)
