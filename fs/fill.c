/*
 * fill.c - when the daemon may push file data into the kernel's page cache.
 *
 * A READ of one page makes the daemon load the page's whole chunk (one
 * checksummed value in the engine); pushing the other pages of the chunk
 * into the page cache turns the reads that follow into cache hits.  The
 * danger is a push of bytes that are older than what the kernel holds: the
 * kernel copies a pushed page over its own, dirty or not.
 *
 * Two facts make a push safe.  With no writable handle open the kernel has
 * no dirty page of the file (it writes them back before the release), and
 * every data change passes through a writable open, a truncate or a
 * fallocate, each of which moves the node's data generation under its
 * fill_lock.  A reader takes the generation before it reads; the push runs
 * under fill_lock only if the generation did not move, so a change either
 * happened before the read began (the push is refused) or waits until the
 * push is done.
 */
#include "fs_int.h"

#include <errno.h>

int settfs_fill_token(settfs *fs, uint64_t ino, uint64_t *token, uint64_t *size)
{
	if (sfs_is_snap_ino(fs, ino))
		return -EINVAL; /* snapshots are read as asked, without fills */
	sfs_node *n;
	int r = sfs_node_get(fs, ino, &n);
	if (r)
		return r;
	if (!S_ISREG(n->in.mode))
		r = S_ISDIR(n->in.mode) ? -EISDIR : -EINVAL;
	else if (n->writers)
		r = -EBUSY;
	else {
		*token = n->data_gen;
		*size = n->in.size;
	}
	sfs_node_put(fs, n);
	return r;
}

int settfs_fill_run(settfs *fs, uint64_t ino, uint64_t token, int (*push)(void *arg),
		    void *arg)
{
	if (sfs_is_snap_ino(fs, ino))
		return -ESTALE;
	/*
	 * A node that left the table took its generation with it: a reload
	 * draws a new one, so the token cannot match and there is no need to
	 * load the inode.
	 */
	pthread_mutex_lock(&fs->tab_lock);
	sfs_node *n = sfs_node_find_locked(fs, ino);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&fs->tab_lock);
	if (!n)
		return -ESTALE;

	int r = -ESTALE;
	pthread_mutex_lock(&n->fill_lock);
	if (n->data_gen == token && n->writers == 0)
		r = push(arg);
	pthread_mutex_unlock(&n->fill_lock);

	/* node->lock only after fill_lock is released (see fs_int.h) */
	pthread_mutex_lock(&n->lock);
	sfs_node_put(fs, n);
	return r;
}
