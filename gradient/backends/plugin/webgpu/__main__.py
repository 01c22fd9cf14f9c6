"""``python -m gradient.backends.plugin.webgpu``: the WebGPU plugin's process."""

import os
import sys

os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")   # Mesa's Vulkan loader asks for it

from .plugin import main  # noqa: E402

sys.exit(main())
