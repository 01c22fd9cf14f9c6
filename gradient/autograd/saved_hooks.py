"""The saved-tensor hooks in force (``autograd.graph.saved_tensors_hooks``), read by the
recording of each op: ``stack`` holds ``(pack_hook, unpack_hook)`` pairs, innermost last;
``disabled`` the messages of enclosing ``disable_saved_tensors_hooks`` blocks."""

stack: list = []
disabled: list = []
