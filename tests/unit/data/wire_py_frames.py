"""Regenerate the wire interop payloads with Python's msgpack (an encoder
independent of proto/wire_enc.c): /usr/bin/python3 wire_py_frames.py
Each file is one payload (no length prefix). test_wire.c checks their
decoded fields exactly."""
import struct

import msgpack

TRACE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def text(*parts):
    return b"".join(struct.pack("<I", len(p)) + p for p in (s.encode() for s in parts))


def rec(kind, flags, arg, t):
    return struct.pack("<BBHIQ", kind, flags, 0, arg, t)


# Keys out of the documented order, an unknown key with a float and a map.
hello = [1, {"client": "tracepatch/2.0.0", "argv": ["-m", "pytest", "-x"], "v": 1,
             "magic": "TPH1", "pid": 123456, "py": "3.13.0", "caps": 3,
             "future": {"ratio": 0.5, "list": [1, None, True]}, "host": "h" * 40}]
events = [5, {"trace": TRACE, "seq": 70000,
              "ev": rec(1, 1, 5, 100) + rec(4, 1, 0, 250) + rec(2, 0, 0, 1 << 40),
              "tx": text("n=" + "9" * 300, "OSError", "[Errno 2] caf\u00e9")}]
for name, msg in (("wire_py_hello.bin", hello), ("wire_py_events.bin", events)):
    with open(name, "wb") as f:
        f.write(msgpack.packb(msg, use_bin_type=True))
