"""Lossless byte-plane packing of a float32 file, to carry a model to a machine with no network in pieces.

    python planes.py pack FILE PACKED      # PACKED: the 4 byte planes of FILE, each zlib-compressed
    python planes.py unpack PACKED FILE    # FILE again, byte for byte (compare the sha256)

The sign/exponent plane of trained float32 weights compresses to about 40 %, the others hardly: all-mpnet-base-v2's
model.safetensors goes from 438 MB to 371 MB. Layout: total bytes and the 4-aligned length (two little-endian
u64), then per plane its compressed length (u64) and bytes, then the unaligned tail raw.
"""
import struct
import sys
import zlib

import numpy as np

mode, src, dst = sys.argv[1:4]
if mode == "pack":
    b = np.fromfile(src, dtype=np.uint8)
    n = len(b) // 4 * 4
    planes = b[:n].reshape(-1, 4).T
    with open(dst, "wb") as f:
        f.write(struct.pack("<QQ", len(b), n))
        for i in range(4):
            c = zlib.compress(np.ascontiguousarray(planes[i]).tobytes(), 6)
            f.write(struct.pack("<Q", len(c))); f.write(c)
        f.write(b[n:].tobytes())
else:
    with open(src, "rb") as f:
        total, n = struct.unpack("<QQ", f.read(16))
        planes = []
        for i in range(4):
            (m,) = struct.unpack("<Q", f.read(8))
            planes.append(np.frombuffer(zlib.decompress(f.read(m)), dtype=np.uint8))
        tail = f.read()
    out = np.empty(total, dtype=np.uint8)
    out[:n] = np.stack(planes, axis=1).reshape(-1)
    out[n:] = np.frombuffer(tail, dtype=np.uint8)
    out.tofile(dst)
