#!/usr/bin/env python3
# tools/editing_figure.py — a grid PNG of images from safetensors files, for docs/EDITING.md's figures:
# each file ([N, 1, H, W] F32 in [-1, 1], tensor `samples` unless FILE:NAME) is one column (--columns) or
# one row (--rows) of its first --n images, with a grey gap between cells; --labels "a|b|c" names the
# columns (--columns) or rows (--rows) in the 5x7 font of nodes/draw/plot.cpp (read from that file, so the
# figures and the project's own plots share one font). Standard library only.
#
#   tools/editing_figure.py OUT.png --columns in.safetensors s0.2.safetensors s0.5.safetensors [--n 8] [--scale 2]
#                           [--labels "input|0.2|0.5"]
import json
import os
import re
import struct
import sys
import zlib

FONT_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "nodes", "draw", "plot.cpp")


def load_font():
    """The glyphs of ' ' to '~' from kArt in nodes/draw/plot.cpp: 8 bands of 12 glyphs, 8 rows each."""
    with open(FONT_SOURCE) as f:
        art = re.findall(r'"([.#]{5}(?: [.#]{5}){11})"', f.read())
    if len(art) != 64:
        sys.exit(f"{FONT_SOURCE}: expected 64 rows of glyph art, found {len(art)}")
    glyphs = {}
    for band in range(8):
        for k in range(12):
            code = 32 + band * 12 + k
            if code <= 126:
                glyphs[chr(code)] = [art[band * 8 + r][k * 6:k * 6 + 5] for r in range(8)]
    return glyphs


def draw_text(img, glyphs, text, x, y, scale, value=255):
    for ch in text:
        g = glyphs.get(ch, glyphs["?"])
        for r, row in enumerate(g):
            for c, bit in enumerate(row):
                if bit == "#":
                    for dy in range(scale):
                        for dx in range(scale):
                            img[y + r * scale + dy][x + c * scale + dx] = value
        x += 6 * scale


def text_width(text, scale):
    return (6 * len(text) - 1) * scale if text else 0


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
    files, n, scale, labels, i = [], 8, 2, [], 2
    while i < len(argv):
        if argv[i] == "--n":
            n, i = int(argv[i + 1]), i + 2
        elif argv[i] == "--scale":
            scale, i = int(argv[i + 1]), i + 2
        elif argv[i] == "--labels":
            labels, i = argv[i + 1].split("|"), i + 2
        else:
            files.append(argv[i])
            i += 1
    tensors = [read_tensor(f) for f in files]
    H, W = tensors[0][0][2], tensors[0][0][3]
    gap = 2
    cells_r, cells_c = (n, len(files)) if by_columns else (len(files), n)
    ch, cw = H * scale, W * scale
    if labels and len(labels) != len(files):
        sys.exit(f"editing_figure.py: {len(labels)} labels for {len(files)} files")
    glyphs = load_font() if labels else None
    fs = 1 if by_columns else 2  # column headers must fit a cell's width; row labels have the margin
    top = 8 * fs + 6 if labels and by_columns else 0
    left = max(text_width(t, fs) for t in labels) + 8 if labels and not by_columns else 0
    height, width = top + cells_r * ch + (cells_r + 1) * gap, left + cells_c * cw + (cells_c + 1) * gap
    img = [[128] * width for _ in range(height)]
    for y in range(top):
        img[y] = [0] * width
    for y in range(height):
        img[y][:left] = [0] * left
    for k, t in enumerate(labels):
        if by_columns:
            x = gap + k * (cw + gap) + max(0, (cw - text_width(t, fs)) // 2)
            draw_text(img, glyphs, t, x, 3, fs)
        else:
            y = top + gap + k * (ch + gap) + (ch - 7 * fs) // 2
            draw_text(img, glyphs, t, left - 4 - text_width(t, fs), y, fs)
    for fi, (shape, data) in enumerate(tensors):
        for k in range(min(n, shape[0])):
            r, c = (k, fi) if by_columns else (fi, k)
            y0, x0 = top + gap + r * (ch + gap), left + gap + c * (cw + gap)
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
