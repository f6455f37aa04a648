#!/bin/sh
# Programs people keep on a backup target: a git repository (objects,
# packs, the index, refs renamed into place) and SQLite databases in WAL
# and rollback-journal modes; checked by git fsck and integrity_check,
# again after a remount.
. "${srcdir:-.}/tests/integration/lib.sh"
command -v git >/dev/null 2>&1 || skip "no git"
command -v python3 >/dev/null 2>&1 || skip "no python3"
python3 -c 'import sqlite3' 2>/dev/null || skip "no python3 sqlite3"
src=$(cd "${srcdir:-.}" && pwd)
mount_fs
m=$mnt
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
export HOME=$work
(
	set -e
	git init -q "$m/repo"
	cd "$m/repo"
	cp -a "$src/fs" "$src/kvengine" .
	git add -A
	git commit -qm one
	for i in 1 2 3; do
		echo "change $i" >> fs/settfs.h
		git mv kvengine/util/coding.h "kvengine/coding$i.h" 2>/dev/null ||
			git mv "kvengine/coding$((i - 1)).h" "kvengine/coding$i.h"
		git commit -qam "change $i"
	done
	git gc -q
	git fsck --full --strict 2>&1
	git clone -q "$m/repo" "$m/clone"
	[ "$(git -C "$m/clone" rev-parse HEAD)" = "$(git rev-parse HEAD)" ]
) || fail "git"
python3 - "$m" <<'PY' || fail "sqlite"
import os, random, sqlite3, sys
rnd = random.Random(7)
for mode in ("wal", "delete"):
    db = sqlite3.connect(os.path.join(sys.argv[1], "t-%s.db" % mode))
    db.execute("pragma journal_mode=%s" % mode)
    db.execute("create table t(k integer primary key, v blob)")
    for i in range(150):
        with db:
            db.executemany("insert or replace into t values(?, ?)",
                           [(rnd.randrange(3000), os.urandom(rnd.randrange(10, 5000)))
                            for _ in range(40)])
        if i % 50 == 49:
            db.execute("delete from t where k % 7 = 0")
            db.commit()
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    db.execute("vacuum")
    db.close()
PY
umount_fs
mount_fs
git -C "$m/repo" fsck --full --strict 2>&1 || fail "git fsck after remount"
git -C "$m/clone" log --oneline | grep -q "change 3" || fail "clone history"
python3 - "$m" <<'PY' || fail "sqlite after remount"
import os, sqlite3, sys
for mode in ("wal", "delete"):
    db = sqlite3.connect(os.path.join(sys.argv[1], "t-%s.db" % mode))
    assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    assert db.execute("select count(*) from t").fetchone()[0] > 1000
PY
umount_fs
check_fsck
echo PASS
