/*
 * acl.h - POSIX ACL values of settfs: the Linux xattr encoding and the
 * rules that tie an ACL to the file mode.
 *
 * An ACL is kept as the value of the xattr system.posix_acl_access or
 * system.posix_acl_default in the encoding Linux uses for these names
 * (doc/FORMAT.md, "POSIX ACLs"): a little-endian header (u32 version 2)
 * followed by 8-byte entries (u16 tag, u16 perm, u32 id).  The mode rules
 * are those of Linux's fs/posix_acl.c: posix_acl_valid, equiv_mode,
 * create_masq and chmod.
 *
 * Thread safety: pure functions on caller memory.
 */
#ifndef SETTFS_ACL_H
#define SETTFS_ACL_H

#include <stddef.h>
#include <stdint.h>

#define SFS_ACL_ACCESS_NAME "system.posix_acl_access"
#define SFS_ACL_DEFAULT_NAME "system.posix_acl_default"
#define SFS_ACL_VERSION 2
#define SFS_ACL_HEADER_SIZE 4
#define SFS_ACL_ENTRY_SIZE 8
#define SFS_ACL_UNDEFINED_ID 0xffffffffu

/* entry tags */
#define SFS_ACL_USER_OBJ 0x01
#define SFS_ACL_USER 0x02
#define SFS_ACL_GROUP_OBJ 0x04
#define SFS_ACL_GROUP 0x08
#define SFS_ACL_MASK 0x10
#define SFS_ACL_OTHER 0x20

enum { SFS_ACL_NONE = 0, SFS_ACL_ACCESS = 1, SFS_ACL_DEFAULT = 2 };
/* Which ACL an xattr name holds: SFS_ACL_ACCESS, SFS_ACL_DEFAULT or SFS_ACL_NONE. */
int sfs_acl_type(const char *name);

/*
 * Check an ACL value and make it canonical in place: the id of an entry
 * that names no user or group (USER_OBJ, GROUP_OBJ, MASK, OTHER) becomes
 * SFS_ACL_UNDEFINED_ID, as Linux writes it.  Rules: version 2, a whole
 * number of entries, permissions within rwx, the tags in the order
 * USER_OBJ, USER..., GROUP_OBJ, GROUP..., MASK, OTHER with exactly one of
 * each *_OBJ and OTHER, a MASK when there is a USER or GROUP entry, and
 * USER/GROUP ids other than SFS_ACL_UNDEFINED_ID.  Returns the number of
 * entries, or -EINVAL.
 */
int sfs_acl_check(uint8_t *p, size_t n);

/*
 * The following take a value sfs_acl_check accepted.  Modes are st_mode
 * values: only the permission bits 0777 are read or changed.
 *
 * sfs_acl_equiv_mode: sets the permission bits of *mode to what the ACL
 * grants the owner, the group class (the mask if there is one) and
 * others; returns 0 if the mode says all the ACL says (it has only the
 * three base entries), else 1.
 */
int sfs_acl_equiv_mode(const uint8_t *p, size_t n, uint32_t *mode);
/*
 * A new inode's access ACL from its directory's default ACL (a copy at p):
 * masks the ACL's owner, group class and other entries by *mode and
 * *mode's permission bits by the ACL.  Returns as sfs_acl_equiv_mode.
 */
int sfs_acl_create_masq(uint8_t *p, size_t n, uint32_t *mode);
/*
 * chmod: sets the owner, group class (the mask if there is one, else the
 * owning group) and other entries from mode.  Returns 1 if a byte changed.
 */
int sfs_acl_chmod(uint8_t *p, size_t n, uint32_t mode);

#endif
