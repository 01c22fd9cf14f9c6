"""Which fused CPU kernels an operation ran: shared by the kernel tests."""


def record_kernel_calls(monkeypatch, *names) -> list:
    """Wrap the NumPy backend's fused kernels ``names`` (they still run) so that each call
    appends its name to the list returned, for the rest of the test.

    Example: ``calls = record_kernel_calls(monkeypatch, "silu"); F.silu(x); calls == ["silu"]``
    """
    from gradient.backends import cpu_kernels
    calls = []
    for name in names:
        kernel = cpu_kernels.FUSED[name]
        monkeypatch.setitem(cpu_kernels.FUSED, name,
                            lambda *a, _k=kernel, _n=name: calls.append(_n) or _k(*a))
    return calls
