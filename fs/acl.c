/*
 * acl.c - POSIX ACL values: check, canonical form and the mode rules
 * (see acl.h).
 */
#include "acl.h"

#include <errno.h>
#include <string.h>

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

#define ENTRIES(n) (((n) - SFS_ACL_HEADER_SIZE) / SFS_ACL_ENTRY_SIZE)
#define ENTRY(p, i) ((p) + SFS_ACL_HEADER_SIZE + (size_t)(i) * SFS_ACL_ENTRY_SIZE)
#define TAG(e) get16(e)
#define PERM(e) get16((e) + 2)

int sfs_acl_type(const char *name)
{
	if (strcmp(name, SFS_ACL_ACCESS_NAME) == 0)
		return SFS_ACL_ACCESS;
	if (strcmp(name, SFS_ACL_DEFAULT_NAME) == 0)
		return SFS_ACL_DEFAULT;
	return SFS_ACL_NONE;
}

int sfs_acl_check(uint8_t *p, size_t n)
{
	if (n < SFS_ACL_HEADER_SIZE + SFS_ACL_ENTRY_SIZE ||
	    (n - SFS_ACL_HEADER_SIZE) % SFS_ACL_ENTRY_SIZE || get32(p) != SFS_ACL_VERSION ||
	    ENTRIES(n) > 0x7fffffff)
		return -EINVAL;
	/* the state machine of Linux's posix_acl_valid: what may come next */
	enum { WANT_USER_OBJ, IN_USER, IN_GROUP, WANT_OTHER, DONE } state = WANT_USER_OBJ;
	int needs_mask = 0;
	for (size_t i = 0; i < ENTRIES(n); i++) {
		uint8_t *e = ENTRY(p, i);
		if (PERM(e) & ~7u)
			return -EINVAL;
		uint16_t tag = TAG(e);
		switch (tag) {
		case SFS_ACL_USER_OBJ:
			if (state != WANT_USER_OBJ)
				return -EINVAL;
			state = IN_USER;
			break;
		case SFS_ACL_USER:
		case SFS_ACL_GROUP:
			if (state != (tag == SFS_ACL_USER ? IN_USER : IN_GROUP) ||
			    get32(e + 4) == SFS_ACL_UNDEFINED_ID)
				return -EINVAL;
			needs_mask = 1;
			break;
		case SFS_ACL_GROUP_OBJ:
			if (state != IN_USER)
				return -EINVAL;
			state = IN_GROUP;
			break;
		case SFS_ACL_MASK:
			if (state != IN_GROUP)
				return -EINVAL;
			state = WANT_OTHER;
			break;
		case SFS_ACL_OTHER:
			if (state != WANT_OTHER && (state != IN_GROUP || needs_mask))
				return -EINVAL;
			state = DONE;
			break;
		default:
			return -EINVAL;
		}
		if (tag != SFS_ACL_USER && tag != SFS_ACL_GROUP)
			put32(e + 4, SFS_ACL_UNDEFINED_ID);
		if (state == DONE && i + 1 != ENTRIES(n))
			return -EINVAL; /* OTHER is the last entry */
	}
	return state == DONE ? (int)ENTRIES(n) : -EINVAL;
}

int sfs_acl_equiv_mode(const uint8_t *p, size_t n, uint32_t *mode)
{
	uint32_t m = 0;
	int not_equiv = 0;
	for (size_t i = 0; i < ENTRIES(n); i++) {
		const uint8_t *e = ENTRY(p, i);
		uint32_t perm = PERM(e) & 7u;
		switch (TAG(e)) {
		case SFS_ACL_USER_OBJ:
			m |= perm << 6;
			break;
		case SFS_ACL_GROUP_OBJ:
			m |= perm << 3;
			break;
		case SFS_ACL_OTHER:
			m |= perm;
			break;
		case SFS_ACL_MASK: /* after GROUP_OBJ: the group class is the mask */
			m = (m & ~070u) | perm << 3;
			not_equiv = 1;
			break;
		default:
			not_equiv = 1;
		}
	}
	*mode = (*mode & ~0777u) | m;
	return not_equiv;
}

/* the entry with `tag` (the first one), or NULL */
static uint8_t *find(uint8_t *p, size_t n, uint16_t tag)
{
	for (size_t i = 0; i < ENTRIES(n); i++)
		if (TAG(ENTRY(p, i)) == tag)
			return ENTRY(p, i);
	return NULL;
}

/* the entry that holds the group class: the mask, else the owning group */
static uint8_t *group_class(uint8_t *p, size_t n)
{
	uint8_t *e = find(p, n, SFS_ACL_MASK);
	return e ? e : find(p, n, SFS_ACL_GROUP_OBJ);
}

int sfs_acl_create_masq(uint8_t *p, size_t n, uint32_t *mode)
{
	uint32_t m = *mode & 0777u;
	/* each class gets what both the ACL and the mode grant it */
	uint8_t *cls[3] = { find(p, n, SFS_ACL_USER_OBJ), group_class(p, n),
			    find(p, n, SFS_ACL_OTHER) };
	for (int c = 0; c < 3; c++) {
		int shift = 6 - 3 * c;
		uint32_t perm = PERM(cls[c]) & (m >> shift) & 7u;
		put16(cls[c] + 2, (uint16_t)perm);
		m = (m & ~(7u << shift)) | perm << shift;
	}
	*mode = (*mode & ~0777u) | m;
	uint32_t ignored = 0;
	return sfs_acl_equiv_mode(p, n, &ignored);
}

int sfs_acl_chmod(uint8_t *p, size_t n, uint32_t mode)
{
	uint8_t *cls[3] = { find(p, n, SFS_ACL_USER_OBJ), group_class(p, n),
			    find(p, n, SFS_ACL_OTHER) };
	int changed = 0;
	for (int c = 0; c < 3; c++) {
		uint16_t perm = (uint16_t)(mode >> (6 - 3 * c) & 7u);
		changed |= PERM(cls[c]) != perm;
		put16(cls[c] + 2, perm);
	}
	return changed;
}
