# The C scanner built from _v1scan.c (optional); see v1_scan.py.

def scan(
    buf: bytes | bytearray | memoryview, /
) -> tuple[dict[bytes, tuple[list[int], list[float]]], list[bytes]] | None: ...
def columns(
    buf: bytes | bytearray | memoryview, /
) -> tuple[list[bytes], bytes, bytes, list[bytes]] | None: ...
