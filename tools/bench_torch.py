#!/usr/bin/python3
"""PyTorch side of tools/bench: unet-small (shared/UNET_SMALL.md) timed the way noiseflow times it.

Run with the system python (Debian's python3-torch), one measurement per process so that peak RSS
(ru_maxrss) belongs to that measurement alone:

  /usr/bin/python3 tools/bench_torch.py --threads 2 --what train --batches 64 128   (training: --batches)
  /usr/bin/python3 tools/bench_torch.py --threads 2 --what forward
  /usr/bin/python3 tools/bench_torch.py --threads 2 --what ddim
  /usr/bin/python3 tools/bench_torch.py --threads 2 --what overhead
  /usr/bin/python3 tools/bench_torch.py --what golden      # same net? compare with shared/golden_unet_small.json

Every result is one machine-readable line, e.g.
  torch train_step b=64 median_ms=... min_ms=... max_ms=... repeats=10 warmup=2
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

C, C2, TEMB, GROUPS, T_STEPS = 32, 64, 128, 8, 1000
N_PARAMS = 1_539_329


def zero_(m):
    nn.init.zeros_(m.weight)
    nn.init.zeros_(m.bias)
    return m


def conv3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def norm(c):
    return nn.GroupNorm(GROUPS, c, eps=1e-5)


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = norm(cin)
        self.conv1 = conv3(cin, cout)
        self.temb = nn.Linear(TEMB, cout)
        self.norm2 = norm(cout)
        self.conv2 = zero_(conv3(cout, cout))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):  # emb = SiLU(temb)
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)


class Attention(nn.Module):
    """Single head over the H*W positions; qkv channels [q | k | v]."""

    def __init__(self, c):
        super().__init__()
        self.norm = norm(c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = zero_(nn.Conv2d(c, c, 1))

    def forward(self, x):
        b, c, hh, ww = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, hh * ww).unbind(1)
        a = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(c), dim=-1)  # [b, HW(q), HW(k)]
        h = torch.bmm(v, a.transpose(1, 2))  # v a^T: [b, c, HW]
        return x + self.proj(h.reshape(b, c, hh, ww))


class Down(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = conv3(c, c, stride=2)

    def forward(self, x, emb):
        return self.conv(x)


class Up(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = conv3(c, c)

    def forward(self, x, emb):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


def timestep_embedding(t, dim=C):
    """In float32, as the original DDPM code (and the golden values) compute it."""
    half = dim // 2
    f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / (half - 1))
    a = t.to(torch.float32)[:, None] * f[None, :]
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


class UNetSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.temb1 = nn.Linear(C, TEMB)
        self.temb2 = nn.Linear(TEMB, TEMB)
        self.stem = conv3(1, C)
        self.down = nn.ModuleList([
            ResBlock(C, C), ResBlock(C, C), Down(C),
            ResBlock(C, C2), ResBlock(C2, C2), Down(C2),
            ResBlock(C2, C2), ResBlock(C2, C2)])
        self.mid1 = ResBlock(C2, C2)
        self.mid_attn = Attention(C2)
        self.mid2 = ResBlock(C2, C2)
        self.up = nn.ModuleList([
            ResBlock(2 * C2, C2), ResBlock(2 * C2, C2), ResBlock(2 * C2, C2), Up(C2),
            ResBlock(2 * C2, C2), ResBlock(2 * C2, C2), ResBlock(C2 + C, C2), Up(C2),
            ResBlock(C2 + C, C), ResBlock(2 * C, C), ResBlock(2 * C, C)])
        self.out_norm = norm(C)
        self.out_conv = zero_(conv3(C, 1))

    def forward(self, x, t):
        e = timestep_embedding(t).to(x.dtype)
        emb = F.silu(self.temb2(F.silu(self.temb1(e))))
        h = self.stem(x)
        skips = [h]
        for m in self.down:
            h = m(h, emb)
            skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for m in self.up:
            if isinstance(m, Up):
                h = m(h, emb)
            else:
                h = m(torch.cat([h, skips.pop()], dim=1), emb)
        assert not skips
        return self.out_conv(F.silu(self.out_norm(h)))


def make_model():
    m = UNetSmall()
    n = sum(p.numel() for p in m.parameters())
    assert n == N_PARAMS, f"unet-small has {n:,} parameters, expected {N_PARAMS:,}"
    assert len(m.state_dict()) == 214
    return m


def timed(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return ts


def report(name, ts, extra=""):
    ms = [t * 1e3 for t in ts]
    print(f"torch {name} median_ms={statistics.median(ms):.3f} min_ms={min(ms):.3f} max_ms={max(ms):.3f} "
          f"repeats={len(ms)}{extra}", flush=True)
    return statistics.median(ts)


def max_rss_kb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux


def bench_train(a):
    """forward + MSE + backward + AdamW step on fresh random data (as pipelines/bench_unet_adam.json)."""
    for b in a.batches:
        torch.manual_seed(0)
        model = make_model().train()
        opt = torch.optim.AdamW(model.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

        def step():
            x = torch.randn(b, 1, 28, 28)
            t = torch.randint(0, T_STEPS, (b,))
            target = torch.randn(b, 1, 28, 28)
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(x, t), target)
            loss.backward()
            opt.step()

        report(f"train_step b={b}", timed(step, a.repeats, a.warmup), f" warmup={a.warmup}")
        print(f"torch train_peak_rss b={b} max_rss_kb={max_rss_kb()}", flush=True)


def bench_forward(a):
    """UNet forward at batch --batch (64) under no_grad; a 1000-step DDPM run costs 1000 of these."""
    b = a.batch
    torch.manual_seed(0)
    model = make_model().eval()
    # Random weights instead of the zero-initialised ones, as in a trained net (no all-zero fast paths).
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p), alpha=0.02)
    x = torch.randn(b, 1, 28, 28)
    t = torch.randint(0, T_STEPS, (b,))
    with torch.no_grad():
        med = report(f"forward b={b}", timed(lambda: model(x, t), a.repeats, a.warmup), f" warmup={a.warmup}")
    print(f"torch ddpm1000 b={b} images_per_s={b / (1000 * med):.4f}", flush=True)


def bench_ddim(a):
    """50 trailing DDIM steps (eta 0, x0 clipped to [-1, 1]) from pure noise at batch --batch (64), linear betas."""
    b, steps = a.batch, 50
    torch.manual_seed(0)
    model = make_model().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p), alpha=0.02)
    betas = torch.linspace(1e-4, 0.02, T_STEPS, dtype=torch.float64)
    abar = torch.cumprod(1 - betas, 0)
    ts = [int(round(T_STEPS - i * T_STEPS / steps)) - 1 for i in range(steps)]  # 999, 979, ..., 19

    def sample():
        x = torch.randn(b, 1, 28, 28)
        for i, t in enumerate(ts):
            eps = model(x, torch.full((b,), t, dtype=torch.long))
            a_t = float(abar[t])
            a_prev = float(abar[ts[i + 1]]) if i + 1 < steps else 1.0
            x0 = ((x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)).clamp_(-1, 1)
            x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
        return x

    with torch.no_grad():
        report(f"ddim50 b={b}", timed(sample, a.ddim_repeats, a.ddim_warmup), f" warmup={a.ddim_warmup}")


def bench_overhead(a):
    """Framework overhead: 100 elementwise affine ops y = a*x + b on a [1] tensor, eager, per 'tick'."""
    x0 = torch.zeros(1)

    def chain():
        x = x0
        for _ in range(100):
            x = x * 1.0001 + 0.5
        return x

    with torch.no_grad():
        report("overhead100 n=100", timed(chain, a.overhead_repeats, 50), " warmup=50")


def check_golden(a):
    """float64 forward and backward against shared/golden_unet_small.json (proves it is the same net).

    Agreement is ~1e-7 relative on outputs and ~5e-6 on the tiny attention gradients (the reference
    computed part of its inputs in float32); a structural difference would show up at order 1."""
    g = json.load(open(a.golden))
    torch.set_default_dtype(torch.float64)
    model = make_model()
    with torch.no_grad():
        for k, (name, p) in enumerate(model.named_parameters()):
            i = torch.arange(p.numel(), dtype=torch.float64)
            v = 0.05 * torch.sin(0.37 * i + 1.3 * k)
            if name == "out_norm.weight" or (".norm" in name and name.endswith(".weight")):
                v = v + 1
            p.copy_(v.reshape(p.shape))
    j = torch.arange(3 * 784, dtype=torch.float64)
    x = torch.sin(0.013 * j * j / 784 + 0.5 * (j % 784) / 28).reshape(3, 1, 28, 28)
    target = torch.cos(0.7 * j).reshape(3, 1, 28, 28)
    out = model(x, torch.tensor(g["t"]))
    loss = F.mse_loss(out, target)
    loss.backward()
    params = dict(model.named_parameters())
    got = {"out_sum": out.sum().item(), "out_abs_sum": out.abs().sum().item(), "loss_mse_vs_target": loss.item()}
    want = {k: g[k] for k in got}
    for name, n in g["grad_norms"].items():
        got["grad " + name], want["grad " + name] = params[name].grad.norm().item(), n
    for i, m in enumerate(g["out_per_image_mean"]):
        got[f"mean img{i}"], want[f"mean img{i}"] = out[i].mean().item(), m
    worst = max(abs(got[k] - want[k]) / max(abs(want[k]), 1e-12) for k in got)
    for k in got:
        print(f"  {k:32s} {got[k]: .10g}  golden {want[k]: .10g}")
    print(f"torch golden max_rel_err={worst:.3g} {'ok' if worst < 1e-4 else 'MISMATCH'}", flush=True)
    return worst < 1e-4


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--what", choices=["train", "forward", "ddim", "overhead", "golden", "params"], default="train")
    p.add_argument("--batches", type=int, nargs="+", default=[64, 128])
    p.add_argument("--batch", type=int, default=64, help="batch of --what forward and ddim")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--ddim-repeats", type=int, default=3)
    p.add_argument("--ddim-warmup", type=int, default=1)
    p.add_argument("--overhead-repeats", type=int, default=1000)
    p.add_argument("--golden", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                    "../../shared/golden_unet_small.json"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch version={torch.__version__} threads={torch.get_num_threads()} params={N_PARAMS}", flush=True)
    if a.what == "params":
        make_model()
        print(f"torch params={N_PARAMS:,} ok")
    elif a.what == "golden":
        return 0 if check_golden(a) else 1
    else:
        {"train": bench_train, "forward": bench_forward, "ddim": bench_ddim, "overhead": bench_overhead}[a.what](a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
