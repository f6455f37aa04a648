#!/bin/sh
# Timestamps never go backwards: times the daemon stamps (create, mkdir,
# link, rename, unlink, truncate, setattr to "now") and times the kernel
# stamps (writes and utime(NULL) with the writeback cache) come from the
# same clock, so a later event never carries an earlier time.  200 rounds
# of create, write, utime(NULL), link and chmod, each compared with the
# one before; with and without the writeback cache.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v python3 >/dev/null 2>&1 || skip "no python3"

run() {
	python3 - "$mnt" <<'PY' || fail "timestamps $*"
import os, sys
d = sys.argv[1]
def ts(p):
    st = os.stat(p)
    return st.st_mtime_ns, st.st_ctime_ns
for i in range(200):
    p = os.path.join(d, "f%d" % i)
    with open(p, "w"):
        pass
    m0, c0 = ts(p)
    os.utime(p, None)
    m1, c1 = ts(p)
    assert m1 >= m0 and c1 >= c0, ("utime(None) after create went back", i, m0, m1, c0, c1)
    with open(p, "a") as f:
        f.write("x")
    m2, c2 = ts(p)
    assert m2 >= m1 and c2 >= c1, ("write after utime went back", i, m1, m2, c1, c2)
    q = os.path.join(d, "g%d" % i)
    os.link(p, q)
    m3, c3 = ts(p)
    assert c3 >= c2, ("link after write went back", i, c2, c3)
    os.chmod(p, 0o600)
    m4, c4 = ts(p)
    assert c4 >= c3, ("chmod after link went back", i, c3, c4)
    dm0 = os.stat(d).st_mtime_ns
    os.unlink(q)
    assert os.stat(d).st_mtime_ns >= dm0, ("unlink went back", i)
    os.unlink(p)
PY
}

both_caches run
echo "PASS"
