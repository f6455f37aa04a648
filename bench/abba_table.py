#!/usr/bin/env python3
"""abba_table.py - the table doc/PERFORMANCE.md quotes from encrypt_abba.sh's
output: per engine and workload the median ops/s of the unencrypted (A: runs
1, 4) and encrypted (B: runs 2, 3) sets over every repetition, the ratio
B / A of those medians, and the same ratio for CPU seconds where measured.

    bench/abba_table.py run.jsonl
"""
import collections
import json
import statistics
import sys

ops = collections.defaultdict(lambda: ([], []))
cpu = collections.defaultdict(lambda: ([], []))
loads = []
order = []
for line in open(sys.argv[1]):
    d = json.loads(line)
    key = (d["engine"], d["workload"])
    if key not in order:
        order.append(key)
    b = 1 if d["run"] in (2, 3) else 0
    if "ops_per_s" in d:
        ops[key][b].append(d["ops_per_s"])
    if "cpu_s" in d:
        cpu[key][b].append(d["cpu_s"])
    loads.append(d["load1"])


def med(xs):
    return statistics.median(xs) if xs else 0


print("load average (1 min) during the runs: %.1f - %.1f" % (min(loads), max(loads)))
print("| engine | workload | A ops/s | B (encrypted) ops/s | B / A | CPU s A | CPU s B | CPU B / A |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for key in order:
    (oa, ob), (ca, cb) = ops[key], cpu[key]
    if not (oa or ca):
        continue
    r = "%.2f" % (med(ob) / med(oa)) if oa and med(oa) else ""
    cr = "%.2f" % (med(cb) / med(ca)) if ca and med(ca) else ""
    fo = lambda x: "{:,.0f}".format(x) if x else ""
    fc = lambda x: "%.2f" % x if x else ""
    print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (key[0], key[1], fo(med(oa)), fo(med(ob)), r,
          fc(med(ca)), fc(med(cb)), cr))
