#!/usr/bin/python3
"""tools/fewstep_plot.py — draws tools/fewstep's rows (its --out's rows.tsv): the project's FD of distilled
students against minutes of distillation, one line per number of evaluations (with fd_se error bars), the
teacher's 20-step DPM-Solver++(2M) SDE as a dashed line and the issue's targets (teacher +15% at 2
evaluations, +50% at 1) as dotted ones.

  /usr/bin/python3 tools/fewstep_plot.py ROWS.tsv [ROWS.tsv ...] --out docs/images/fewstep_fd.png [--tmax 700]

Rows are: label ("teacher" or "distilled M min"), sampler, evaluations, FD, fd_se, precision, recall, seconds,
images/s. --tmax keeps the students' rows sampled with that t_max (", t_max N" in the sampler column; -1: none).
Needs Debian's python3-matplotlib (tooling only, not the build)."""
import csv
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

args = sys.argv[1:]
out, tmax, files = "docs/images/fewstep_fd.png", None, []
i = 0
while i < len(args):
    if args[i] == "--out":
        out, i = args[i + 1], i + 2
    elif args[i] == "--tmax":
        tmax, i = int(args[i + 1]), i + 2
    else:
        files.append(args[i])
        i += 1
teacher = None
curves = {}
for f in files:
    for row in csv.reader(open(f), delimiter="\t"):
        label, sampler, k, fd, se = row[0], row[1], int(row[2]), float(row[3]), float(row[4])
        if label == "teacher":
            teacher = (fd, se)
            continue
        m = re.match(r"distilled (\d+(?:\.\d+)?) min", label)
        if not m:
            continue
        tm = re.search(r"t_max (\d+)", sampler)
        if tmax is not None and (int(tm.group(1)) if tm else -1) != tmax:
            continue
        curves.setdefault(k, {})[float(m.group(1))] = (fd, se)
fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
for k in sorted(curves):
    pts = sorted(curves[k].items())
    ax.errorbar([p[0] for p in pts], [p[1][0] for p in pts], yerr=[p[1][1] for p in pts], marker="o", capsize=3,
                label=f"{k} evaluation{'s' if k > 1 else ''}")
if teacher:
    ax.axhline(teacher[0], color="black", linestyle="--", label=f"teacher, 20-step DPM-Solver++(2M) SDE ({teacher[0]:.1f})")
    ax.axhline(teacher[0] * 1.15, color="gray", linestyle=":", label="target at 2 evaluations (+15%)")
    ax.axhline(teacher[0] * 1.5, color="gray", linestyle="-.", label="target at 1 evaluation (+50%)")
ax.set_xlabel("minutes of distillation (2 cores)")
ax.set_ylabel("FD (n = 1000, lower is better)")
ax.set_title("Consistency distillation (ECT) of the default model" +
             (f",\nsampled from t_max {tmax}" if tmax is not None and tmax >= 0 else ""), fontsize=10)
ax.set_ylim(bottom=0)
xs = [m for k in curves for m in curves[k]]
if xs:
    ax.set_xlim(0, max(xs) * 1.1 + 1)
ax.grid(alpha=0.3)
ax.legend(fontsize=7, loc="best")
fig.tight_layout()
fig.savefig(out)
print(f"wrote {out}")
