/*
 * fuzz_acl.c - the POSIX ACL value checker and mode rules (fs/acl.c).
 *
 * Input: mode byte (with the payload's length it gives the file mode
 * bits), then an xattr value.  Checks: a value sfs_acl_check accepts is
 * accepted again unchanged (the canonical form is a fixed point); chmod
 * makes the ACL say exactly the mode; creation masks the ACL and the mode
 * by each other and never grants what either denied; no rule touches
 * anything but the permission bits of the mode.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned fm;
	size_t n;
	uint8_t *p = fuzz_payload(data, size, NULL, &fm, &n);
	if (!p)
		return 0;
	uint32_t mode = (fm | (uint32_t)(n & 1) << 8) & 0777u;
	int c = sfs_acl_check(p, n);
	FUZZ_CHECK(c == -EINVAL || (c >= 3 && (size_t)c == (n - 4) / 8));
	if (c < 0) {
		free(p);
		return 0;
	}
	uint8_t *q = fuzz_dup(p, n);
	FUZZ_CHECK(sfs_acl_check(q, n) == c && memcmp(p, q, n) == 0);

	uint32_t m = 0170000u | 07000u;
	int ne = sfs_acl_equiv_mode(p, n, &m);
	FUZZ_CHECK((ne == 0) == (c == 3) && (m & ~0777u) == (0170000u | 07000u));

	/* chmod, then the ACL says the mode; a second chmod changes nothing */
	sfs_acl_chmod(q, n, mode);
	FUZZ_CHECK(sfs_acl_check(q, n) == c);
	m = 0;
	FUZZ_CHECK(sfs_acl_equiv_mode(q, n, &m) == ne && m == mode);
	FUZZ_CHECK(sfs_acl_chmod(q, n, mode) == 0);

	/* creation: the result grants no more than the ACL and the mode did */
	uint32_t before = 0, cm = mode | 0100000u;
	sfs_acl_equiv_mode(p, n, &before);
	memcpy(q, p, n);
	FUZZ_CHECK(sfs_acl_create_masq(q, n, &cm) == ne);
	FUZZ_CHECK(sfs_acl_check(q, n) == c && (cm & ~0777u) == 0100000u);
	FUZZ_CHECK((cm & 0777u & ~mode) == 0 && (cm & 0777u & ~before) == 0);
	m = 0;
	sfs_acl_equiv_mode(q, n, &m);
	FUZZ_CHECK(m == (cm & 0777u));
	for (size_t off = 4; off < n; off += 8)
		FUZZ_CHECK((q[off + 2] & ~p[off + 2]) == 0 && memcmp(q + off + 4, p + off + 4, 4) == 0);
	free(q);
	free(p);
	return 0;
}
