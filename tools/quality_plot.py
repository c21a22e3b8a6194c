#!/usr/bin/python3
"""tools/quality_plot.py — draws tools/quality's results (runs/quality/results.tsv): the Frechet
distance against training minutes (ticks x the idle tick time of runs/quality/tick_seconds.tsv), one
line per recipe with the FD's standard error as error bars (where results.tsv has fd_se), the metric's floor (real training digits: the range of tools/quality floor as a band, the
given mean) and twice the floor as dotted lines;
writes a PNG and prints the Markdown table for docs/QUALITY.md.

  /usr/bin/python3 tools/quality_plot.py [runs/quality/results.tsv] [docs/quality_fd.png] [--floor FD]

Needs Debian's python3-matplotlib (tooling only, not the build)."""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

args = [a for a in sys.argv[1:] if not a.startswith("--")]
tsv = args[0] if args else "runs/quality/results.tsv"
png = args[1] if len(args) > 1 else "docs/quality_fd.png"
floor = None
if "--floor" in sys.argv:
    floor = float(sys.argv[sys.argv.index("--floor") + 1])

rows = list(csv.DictReader(open(tsv), delimiter="\t"))
by = {}
for r in rows:
    by.setdefault(r["recipe"], []).append(r)

fig, ax = plt.subplots(figsize=(8, 5.2), dpi=110)
for k, (name, rs) in enumerate(sorted(by.items())):
    rs.sort(key=lambda r: float(r["minutes"]))
    dx = 0.25 * (k - (len(by) - 1) / 2)  # side by side: recipes of equal budgets and close scores stay apart
    xs, ys = [float(r["minutes"]) + dx for r in rs], [float(r["fd"]) for r in rs]
    se = [float(r["fd_se"]) if r.get("fd_se") not in (None, "") else 0.0 for r in rs]
    ax.errorbar(xs, ys, yerr=se, marker="o", capsize=3, linestyle="-" if len(rs) > 1 else "none", label=name)
import os  # noqa: E402

band = os.path.join(os.path.dirname(tsv), "floor.tsv")  # tools/quality floor: 8 sets of real digits
if os.path.exists(band):
    fds = [float(r["fd"]) for r in csv.DictReader(open(band), delimiter="\t")]
    ax.axhspan(min(fds), max(fds), color="grey", alpha=0.15,
               label="%d sets of real digits (%.0f-%.0f)" % (len(fds), min(fds), max(fds)))
if floor:
    ax.axhline(floor, color="grey", linestyle=":", linewidth=1, label="real digits, mean (%.0f)" % floor)
    ax.axhline(2 * floor, color="black", linestyle=":", linewidth=1, label="2x the floor (%.0f)" % (2 * floor))
ax.set_xlabel("training minutes on 2 cores (ticks x idle tick time)")
ax.set_ylabel("Frechet distance to held-out digits (lower is better)")
ax.set_title("Training recipes: FD of 1000 samples (DPM++ 2M SDE, 20 steps)")
ax.set_xticks(sorted({float(r["minutes"]) for r in rows}))
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8, loc="upper right")
fig.tight_layout()
fig.savefig(png)
print("wrote", png)

budgets = sorted({float(r["minutes"]) for r in rows})
print("| recipe | " + " | ".join("%g min" % b for b in budgets) + " |")
print("|---|" + "---|" * len(budgets))
for name, rs in sorted(by.items(), key=lambda kv: min(float(r["fd"]) for r in kv[1])):
    cells = []
    for b in budgets:
        m = [r for r in rs if float(r["minutes"]) == b]
        if not m:
            cells.append("—")
        elif m[0].get("fd_se") not in (None, ""):
            cells.append("%.1f ± %.1f" % (float(m[0]["fd"]), float(m[0]["fd_se"])))
        else:
            cells.append("%.1f" % float(m[0]["fd"]))
    print("| " + name + " | " + " | ".join(cells) + " |")
