#!/usr/bin/env python3
"""Issue 32 performance: `certbench diff` of two 1 000-testcase runs (target <= 1 s).

    ci/bench-diff.py RUN_DIR [ROUNDS]

RUN_DIR is a finished run's folder (the main job's: `certbench run --lab
devices/labs/simboard.yaml --out RUN_DIR`). From it two runs of 1 000 testcases are made: the
run's own testcases and copies of them (each copy under its own scenario id, with its own copy
of the scenario's evidence folder, so the gate reads as many evidence files as a real
1 000-testcase run), each with a fresh manifest. NEW differs from OLD in ten testcases turned
from PASS to FAIL and one port added to one open-ports.json.

Each timed round runs the real `certbench diff OLD NEW --allow-unsigned` with its Markdown,
JSON and JUnit outputs (both folders verified against their manifests, read, compared,
rendered, written) and counts only if it exits 1 and its JSON names exactly the ten
regressions and the added port: a wrong answer is never timed as fast.
"""
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 1000
FLIPPED = 10
ADDED_PORT = 4444


def manifest(d, run_id):
    files = []
    for root, _, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, d)
            if rel in ("manifest.json", "manifest.sig"):
                continue
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            files.append({"path": rel, "sha256": h.hexdigest(), "bytes": os.path.getsize(p)})
    files.sort(key=lambda e: e["path"])
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump({"run_id": run_id, "algorithm": "sha256", "files": files}, f, indent=2)


def scaled(src, dst):
    """A copy of run `src` grown to TARGET testcases: the ids of the testcases that can be flipped."""
    shutil.copytree(src, dst, symlinks=True)
    for n in ("manifest.json", "manifest.sig"):
        if os.path.exists(os.path.join(dst, n)):
            os.remove(os.path.join(dst, n))
    events = [json.loads(line) for line in open(os.path.join(dst, "events.jsonl"))]
    finished = [e for e in events if e.get("event") == "scenario_finished"]
    if not finished or not any(e.get("event") == "run_finished" for e in events):
        sys.exit(f"{src}: not a finished run with testcases")
    copies, extra_plan, k = [], [], 1
    while len(finished) + len(copies) < TARGET:
        for e in finished:
            if len(finished) + len(copies) >= TARGET:
                break
            r = e["result"]
            new_id = f"{r['id']}~{k}"
            c = json.loads(json.dumps(e))
            c["result"]["id"] = new_id
            files = []
            for p in r.get("evidence_files") or []:
                q = p.replace(f"/{r['id']}/", f"/{new_id}/", 1)
                if q != p and not os.path.exists(os.path.join(dst, q)):
                    os.makedirs(os.path.dirname(os.path.join(dst, q)), exist_ok=True)
                    shutil.copyfile(os.path.join(src, p), os.path.join(dst, q))
                files.append(q)
            c["result"]["evidence_files"] = files
            copies.append(c)
            extra_plan.append({"id": new_id, "title": r.get("title", ""), "checks": (r.get("evidences") or {}).get("checks", [])})
        k += 1
    out = []
    for e in events:
        if e.get("event") == "run_started":
            e["planned"] = e.get("planned", []) + extra_plan
        if e.get("event") == "run_finished":
            out.extend(copies)
        out.append(e)
    with open(os.path.join(dst, "events.jsonl"), "w") as f:
        for e in out:
            f.write(json.dumps(e) + "\n")
    run_id = next(e["run_id"] for e in out if e.get("event") == "run_started")
    passed = sorted({c["result"]["id"] for c in copies if c["result"]["verdict"] == "PASS"})
    return run_id, out, passed


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    src, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5
    certbench = os.environ.get("CERTBENCH", "target/release/certbench")
    work = tempfile.mkdtemp(prefix="certbench-bench-diff-")
    try:
        old, new = os.path.join(work, "old"), os.path.join(work, "new")
        run_id, events, passed = scaled(src, old)
        shutil.copytree(old, new, symlinks=True)
        # NEW: ten testcases that passed now fail, and one more open port
        flip = set(passed[:FLIPPED])
        if len(flip) < FLIPPED:
            sys.exit("fewer than ten passed testcases to turn into failures")
        ports_file = None
        with open(os.path.join(new, "events.jsonl"), "w") as f:
            for e in events:
                if e.get("event") == "scenario_finished":
                    r = e["result"]
                    if r["id"] in flip:
                        r["verdict"], r["reason"] = "FAIL", "bench: this testcase was turned into a failure"
                    for p in r.get("evidence_files") or []:
                        if p.endswith("/open-ports.json") and ports_file is None:
                            ports_file = p
                f.write(json.dumps(e) + "\n")
        if ports_file is None:
            sys.exit("the run has no open-ports.json to add a port to")
        pf = os.path.join(new, ports_file)
        ports = json.load(open(pf))
        ports.append({"proto": "tcp", "port": ADDED_PORT, "service": "bench-added"})
        json.dump(ports, open(pf, "w"))
        manifest(old, run_id)
        manifest(new, run_id)
        testcases = sum(1 for e in events if e.get("event") == "scenario_finished")
        size = sum(os.path.getsize(os.path.join(r, n)) for r, _, ns in os.walk(old) for n in ns)
        times = []
        for i in range(rounds):
            outs = [os.path.join(work, f"diff.{x}") for x in ("md", "json", "xml")]
            t0 = time.monotonic()
            p = subprocess.run(
                [certbench, "diff", old, new, "--allow-unsigned", "--markdown", outs[0], "--json", outs[1], "--junit", outs[2]],
                capture_output=True,
            )
            took = time.monotonic() - t0
            try:
                d = json.load(open(outs[1]))
            except (OSError, ValueError) as e:
                sys.exit(f"round {i}: no JSON from certbench diff ({e}); exit {p.returncode}: {p.stderr.decode()[-500:]}")
            regressions = sorted(c["check"] for c in d["changes"] if c["kind"] == "regression")
            added = [a for s in d["surface"] if s["kind"] == "open ports" for a in s["added"]]
            if p.returncode != 1 or regressions != sorted(flip) or not any(str(ADDED_PORT) in a for a in added):
                sys.exit(
                    f"round {i} is not valid, not timed: exit {p.returncode}, regressions {regressions}, "
                    f"open ports added {added}; stderr: {p.stderr.decode()[-500:]}"
                )
            times.append(took)
        print(
            f"certbench diff of two {testcases}-testcase runs ({size / 1e6:.0f} MB each, verified, read, compared, "
            f"written as Markdown, JSON and JUnit): mean {statistics.mean(times):.3f} s, worst {max(times):.3f} s, "
            f"{len(times)} of {rounds} rounds valid ({FLIPPED} regressions and the added port found each time)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
