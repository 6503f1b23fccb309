#!/usr/bin/env python3
"""P2 comparison: pexpect (PyPI) matching the same byte stream and the same 20 patterns as
certbench's expect engine (harness/examples/expect_throughput.rs writes the stream).

usage: bench_pexpect.py FILE [SEARCHWINDOWSIZE]
"""
import os
import re
import sys
import time

import pexpect
from pexpect import fdpexpect

path = sys.argv[1]
window = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] != "none" else None
patterns = [re.compile(rb"never-printed-%d [a-z]+" % i) for i in range(19)] + [re.compile(rb"login: $")]
size = os.path.getsize(path)
fd = os.open(path, os.O_RDONLY)
child = fdpexpect.fdspawn(fd, maxread=4096, searchwindowsize=window, timeout=3600)
t = time.perf_counter()
index = child.expect(patterns)
secs = time.perf_counter() - t
assert index == 19, index
print(f"pexpect {pexpect.__version__} searchwindowsize={window}: {size / 2**20:.1f} MiB in {secs:.3f} s = {size / 2**20 / secs:.2f} MiB/s")
