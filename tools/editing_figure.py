#!/usr/bin/env python3
# tools/editing_figure.py — a grid PNG of images from safetensors files, for docs/EDITING.md's figures:
# each file ([N, 1, H, W] F32 in [-1, 1], tensor `samples` unless FILE:NAME) is one column (--columns) or
# one row (--rows) of its first --n images, with a grey gap between cells. Standard library only.
#
#   tools/editing_figure.py OUT.png --columns in.safetensors s0.2.safetensors s0.5.safetensors [--n 8] [--scale 2]
import json
import struct
import sys
import zlib


def read_tensor(spec):
    path, _, name = spec.partition(":")
    name = name or "samples"
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        e = header[name]
        if e["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} is {e['dtype']}, expected F32")
        b, c = e["data_offsets"]
        f.seek(8 + n + b)
        data = struct.unpack(f"<{(c - b) // 4}f", f.read(c - b))
    return e["shape"], data


def write_png(path, width, height, rows):
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def main(argv):
    if len(argv) < 3 or argv[1] not in ("--columns", "--rows"):
        sys.exit(__doc__ if __doc__ else "usage: editing_figure.py OUT.png --columns|--rows FILE... [--n N] [--scale S]")
    out, by_columns = argv[0], argv[1] == "--columns"
    files, n, scale, i = [], 8, 2, 2
    while i < len(argv):
        if argv[i] == "--n":
            n, i = int(argv[i + 1]), i + 2
        elif argv[i] == "--scale":
            scale, i = int(argv[i + 1]), i + 2
        else:
            files.append(argv[i])
            i += 1
    tensors = [read_tensor(f) for f in files]
    H, W = tensors[0][0][2], tensors[0][0][3]
    gap = 2
    cells_r, cells_c = (n, len(files)) if by_columns else (len(files), n)
    ch, cw = H * scale, W * scale
    height, width = cells_r * ch + (cells_r + 1) * gap, cells_c * cw + (cells_c + 1) * gap
    img = [[128] * width for _ in range(height)]
    for fi, (shape, data) in enumerate(tensors):
        for k in range(min(n, shape[0])):
            r, c = (k, fi) if by_columns else (fi, k)
            y0, x0 = gap + r * (ch + gap), gap + c * (cw + gap)
            for y in range(H):
                for x in range(W):
                    v = data[k * H * W * shape[1] + y * W + x]
                    p = max(0, min(255, int(round((v + 1) * 127.5))))
                    for dy in range(scale):
                        row = img[y0 + y * scale + dy]
                        for dx in range(scale):
                            row[x0 + x * scale + dx] = p
    write_png(out, width, height, img)


if __name__ == "__main__":
    main(sys.argv[1:])
