#!/usr/bin/env python3
"""fs_abba_table.py - the table doc/PERFORMANCE.md quotes from fs_abba.sh's
output: per workload the best of the runs of each system (MiB/s for the
sequential workloads, operations per second otherwise), the ratios of the
settfs columns to passthrough_ll's, each daemon's peak RSS and the load
average seen at the end of the workloads.

    bench/fs_abba_table.py run.jsonl
"""
import collections
import json
import sys

NAMES = {"P": "passthrough_ll", "S": "settfs /dev/fuse", "U": "settfs io_uring"}
best = collections.defaultdict(dict)
rss = collections.defaultdict(int)
transport = collections.defaultdict(set)
loads = collections.defaultdict(list)
order = []
for line in open(sys.argv[1]):
    d = json.loads(line)
    s, w = d["system"], d["workload"]
    if w == "peak_rss_kb":
        rss[s] = max(rss[s], d["value"])
        transport[s].add(d["transport"].strip())
        continue
    if w not in order:
        order.append(w)
    v = d["mb_per_s"] if w.startswith("seq_") else d["ops_per_s"]
    best[w][s] = max(best[w].get(s, 0), v)
    loads[s].append(d["load1"])

systems = [s for s in "PSU" if any(s in best[w] for w in order)]
print("| workload | " + " | ".join(NAMES[s] for s in systems) + " | "
      + " | ".join(NAMES[s] + " / ptll" for s in systems if s != "P") + " |")
print("| --- |" + " ---: |" * (2 * len(systems) - 1))
for w in order:
    b = best[w]
    unit = "MiB/s" if w.startswith("seq_") else "/s"
    cells = ["{:,.0f}".format(b[s]) if s in b else "" for s in systems]
    ratios = ["%.2fx" % (b[s] / b["P"]) if s in b and b.get("P") else ""
              for s in systems if s != "P"]
    print("| %s %s | %s | %s |" % (w, unit, " | ".join(cells), " | ".join(ratios)))
print("| peak RSS of the daemon (VmHWM) | "
      + " | ".join("%d MB" % (rss[s] // 1024) for s in systems) + " |" + " |" * (len(systems) - 1))
for s in systems:
    print("%s: load average (1 min) %.1f - %.1f; transport seen before each unmount: %s"
          % (NAMES[s], min(loads[s]), max(loads[s]), ", ".join(sorted(transport[s]))))
