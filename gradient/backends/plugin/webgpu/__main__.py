"""``python -m gradient.backends.plugin.webgpu``: the WebGPU plugin's process."""

import os
import sys

if __name__ == "__main__":     # (not when a tool imports every module of the package)
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")   # Mesa's Vulkan loader asks for it
    from .plugin import main
    sys.exit(main())
