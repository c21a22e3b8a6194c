#!/usr/bin/python3
"""tools/sweep_plot.py — draws tools/sweep's results (runs/sweep/results.tsv): the Frechet distance
against the number of model evaluations, log x axis, one line per sampler, DDPM over all 1000 steps
as a dashed reference line, the metric's floor (real digits) as a dotted one; writes a PNG and prints
the Markdown table for docs/SAMPLERS.md.

  /usr/bin/python3 tools/sweep_plot.py [runs/sweep/results.tsv] [docs/samplers_fd.png] [--floor FD]

Needs Debian's python3-matplotlib (tooling only, not the build)."""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

args = [a for a in sys.argv[1:] if not a.startswith("--")]
tsv = args[0] if args else "runs/sweep/results.tsv"
png = args[1] if len(args) > 1 else "docs/samplers_fd.png"
floor = None
if "--floor" in sys.argv:
    floor = float(sys.argv[sys.argv.index("--floor") + 1])

rows = list(csv.DictReader(open(tsv), delimiter="\t"))
by = {}
ref = None
for r in rows:
    key = r["sampler"] + " (" + r["spacing"] + ")"
    if r["sampler"] == "ddpm" and int(r["steps"]) == 1000:
        ref = r
        continue
    by.setdefault(key, []).append(r)

fig, ax = plt.subplots(figsize=(8, 5.2), dpi=110)
for key, rs in sorted(by.items()):
    rs.sort(key=lambda r: int(r["nfe"]))
    ax.plot([int(r["nfe"]) for r in rs], [float(r["fd"]) for r in rs], marker="o", label=key)
if ref:
    ax.axhline(float(ref["fd"]), color="black", linestyle="--", linewidth=1,
               label="ddpm, all 1000 steps (%.0f)" % float(ref["fd"]))
if floor:
    ax.axhline(floor, color="grey", linestyle=":", linewidth=1, label="real training digits (%.0f)" % floor)
ax.set_xscale("log")
ax.set_xticks([10, 20, 50, 100])
ax.set_xticklabels(["10", "20", "50", "100"])
ax.set_xlabel("model evaluations (NFE), log scale")
ax.set_ylabel("Frechet distance to held-out digits (lower is better)")
ax.set_title("Samplers on the default checkpoint: FD at n = 1000")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8, loc="upper right")
fig.tight_layout()
fig.savefig(png)
print("wrote", png)

def nominal(r):  # Heun's K steps take 2K - 1 evaluations: its 9 sits in the 10 column
    return int(r["nfe"]) + (1 if r["sampler"] == "heun" else 0)


nfes = sorted({nominal(r) for rs in by.values() for r in rs})
print("| sampler (spacing) | " + " | ".join("NFE %d" % n for n in nfes) + " |")
print("|---|" + "---|" * len(nfes))
for key, rs in sorted(by.items(), key=lambda kv: min(float(r["fd"]) for r in kv[1])):
    cell = {nominal(r): "%.1f (%.0f s)" % (float(r["fd"]), float(r["seconds"])) for r in rs}
    print("| " + key + " | " + " | ".join(cell.get(n, "") for n in nfes) + " |")
if ref:
    print("| ddpm (all 1000 steps) | %.1f (%.0f s) at NFE 1000 |" % (float(ref["fd"]), float(ref["seconds"])))
