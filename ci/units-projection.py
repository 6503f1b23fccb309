#!/usr/bin/env python3
"""A model's suite over N units, projected for a board that boots in BOOT seconds.

usage: ci/units-projection.py MODEL_RUN_DIR BOOT_SECONDS [UNITS...]

From a run over several units (results with units/<name>/): each testcase's wall time and
boots (ci/p1.py's table, per unit), each boot costing BOOT seconds instead of the simulated
board's. Scenarios that ran on every unit cost their mean on each unit; the others are
planned as certbench plans them (longest first onto the least-loaded unit). Prints, for
each unit count asked (default 1 2 3 4), the projected wall time of the model: the slowest
unit's sum. This is what `--history` of such a board's earlier run would plan by.
"""
import os
import re
import subprocess
import sys
from collections import defaultdict

run, boot = sys.argv[1], float(sys.argv[2])
counts = [int(n) for n in sys.argv[3:]] or [1, 2, 3, 4]
here = os.path.dirname(os.path.abspath(__file__))
units = sorted(os.listdir(os.path.join(run, "units")))
cost = defaultdict(list)  # scenario group -> [projected seconds on each unit it ran on]
row = re.compile(r"^(\S+)\s+(\S+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+(\d+)$")
for u in units:
    d = os.path.join(run, "units", u)
    out = subprocess.run(
        [sys.executable, os.path.join(here, "p1.py"), d, "1", str(boot)],
        capture_output=True, text=True, check=True,
    ).stdout
    sim = re.search(r"the simulated one: ([0-9.]+) s median", out)
    sim = float(sim.group(1)) if sim else 0.0
    per = defaultdict(float)
    for line in out.splitlines():
        m = row.match(line)
        if m:
            group = m.group(1).split(".")[0]
            per[group] += float(m.group(3)) + int(m.group(6)) * (boot - sim)
    for g, s in per.items():
        cost[g].append(s)
every = {g: sum(v) / len(v) for g, v in cost.items() if len(v) == len(units) and len(units) > 1}
rest = sorted(((sum(v), g) for g, v in cost.items() if g not in every), reverse=True)
print(f"{len(cost)} scenarios ({len(every)} on every unit), each boot {boot:.0f} s:")
for n in counts:
    load = [sum(every.values())] * n
    for s, _ in rest:
        i = min(range(n), key=lambda k: (load[k], k))
        load[i] += s
    print(f"  {n} unit(s): {max(load):7.0f} s ({max(load) / 60:.1f} min); units {', '.join(f'{x:.0f}' for x in load)}")
