#!/usr/bin/env python3
"""P1 (issue 17): a main job's wall time against a device-bound lower bound, from its results.

usage: ci/p1.py RESULTS_DIR WALL_SECONDS [BOOT_SECONDS]

The lower bound is the time the run spent waiting on the device: inside each step (boots and
power, the board's answers, the observation windows the scenarios demand, the network
exchanges), minus every moment in which the harness held the turn on the console: from the
device's last byte (or the harness's own last keystroke, or the step's start) to the
harness's next keystroke. What is not inside a step is the harness's: setup, loading,
evidence and reports, the time between steps and between scenarios.

    harness = (wall - sum of scenario durations)            setup, reports, between scenarios
            + sum over scenarios (duration - its steps)      evidence, teardown
            + sum over keystrokes (the turn the harness held)
    lower bound = wall - harness;  P1 = wall / lower bound   (target <= 1.2)

Limit (said in BENCHMARKS.md too): a wait inside a network or update step (a window, a
decision, a probe) counts as the device's in full; how soon such a wait ends once the
evidence is complete is what the early endings of issue 17 changed, and P1 cannot see
slack left inside one.

With BOOT_SECONDS (a real board's boot), also a projection: every boot of the run (the
board's serial line appearing in console-full.log) costing BOOT_SECONDS instead of what
the simulated board took.
"""
import json
import re
import sys
from collections import defaultdict

res, wall = sys.argv[1], float(sys.argv[2])
boot_real = float(sys.argv[3]) if len(sys.argv) > 3 else None

scenarios = []  # (id, duration s, verdict)
steps = defaultdict(float)  # scenario -> sum of step durations
kinds = defaultdict(float)  # step kind -> time
errors = 0
for line in open(f"{res}/events.jsonl"):
    e = json.loads(line)
    if e["event"] == "step_finished":
        d = e["step"].get("duration_ms", 0) / 1000
        steps[e["scenario"]] += d
        kinds[e["step"]["name"]] += d
    elif e["event"] == "scenario_finished":
        r = e["result"]
        scenarios.append((r["id"], r["duration_ms"] / 1000, r["verdict"]))
        errors += r["verdict"] == "error"
if errors:
    sys.exit(f"INVALID: {errors} testcase(s) ended in ERROR; a broken run is never timed")

# the console: per scenario, the turns the harness held, and the boots
line_re = re.compile(r"^\[\s*([0-9.]+)\] (.*)$")
held = defaultdict(float)
boots = defaultdict(int)
first_byte_after_power = []  # simulated boot: power command to the board's first byte
scenario = None
last = None  # time of the last device byte, harness keystroke or step start
power_at = None
for raw in open(f"{res}/console-full.log", errors="replace"):
    m = line_re.match(raw.rstrip("\n"))
    if not m:
        continue
    t, text = float(m.group(1)), m.group(2)
    if text.startswith("## scenario ") and text.endswith(" begins"):
        scenario = text[len("## scenario "):-len(" begins")]
        last = t
    elif text.startswith("## step "):
        last = t
    elif text.startswith("## power on") or text.startswith("## power cycle") and "done" not in text:
        power_at = t
    elif text.startswith("== console ") and " opened" in text:
        boots[scenario] += 1
    elif text.startswith("<  "):
        if power_at is not None:
            first_byte_after_power.append(t - power_at)
            power_at = None
        last = t
    elif text.startswith(" > "):
        if scenario is not None and last is not None:
            held[scenario] += max(0.0, t - last)
        last = t

in_scenarios = sum(d for _, d, _ in scenarios)
outside = wall - in_scenarios
between_steps = sum(max(0.0, d - steps[i]) for i, d, _ in scenarios)
console_held = sum(held.values())
harness = outside + between_steps + console_held
lower = wall - harness
print(f"wall {wall:.1f} s; inside scenarios {in_scenarios:.1f} s; inside steps {sum(steps.values()):.1f} s")
print(f"harness: {outside:.1f} s outside scenarios (setup, loading, reports), "
      f"{between_steps:.1f} s between steps (evidence, teardown), {console_held:.1f} s holding the console turn")
print(f"device-bound lower bound {lower:.1f} s; P1 = {wall / lower:.3f} (target <= 1.2)")
print(f"boots (the board's serial line appearing): {sum(boots.values())}")
print()
print(f"{'testcase':<46} {'verdict':<15} {'wall':>7} {'steps':>7} {'console held':>13} {'boots':>6}")
for i, d, v in scenarios:
    print(f"{i:<46} {v:<15} {d:7.1f} {steps[i]:7.1f} {held[i]:13.2f} {boots[i]:6d}")
print()
print("step time by kind: " + ", ".join(f"{k} {s:.1f} s" for k, s in sorted(kinds.items(), key=lambda x: -x[1])))
if boot_real is not None and first_byte_after_power:
    sim = sorted(first_byte_after_power)[len(first_byte_after_power) // 2]
    n = sum(boots.values())
    print(f"projection for a board booting in {boot_real:.0f} s (the simulated one: {sim:.2f} s median to its first byte): "
          f"{n} boots -> {wall + n * (boot_real - sim):.0f} s")
