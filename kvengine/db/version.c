/*
 * version.c - immutable shapes of the LSM tree (see lsm_version in
 * db_impl.h).
 *
 * A flush or a compaction never edits the current version: it builds a new
 * one from the old plus an edit and swaps it in.  Readers that still hold
 * the old version keep its tables alive through their references, which
 * is what lets table files be deleted only when nothing reads them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db_impl.h"
#include "ikey.h"

lsm_version *version_new_empty(void)
{
	lsm_version *v = calloc(1, sizeof *v);
	if (v)
		v->refs = 1;
	return v;
}

void version_ref(lsm_version *v)
{
	__atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED);
}

void version_unref(lsm_version *v)
{
	if (!v || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (int l = 0; l < MAX_LEVELS; l++) {
		for (int i = 0; i < v->ntables[l]; i++)
			table_unref(v->tables[l][i]);
		free(v->tables[l]);
		if (v->damaged[l])
			table_unref(v->damaged[l]);
	}
	free(v);
}

static int deleted(const version_edit *e, uint64_t id)
{
	for (size_t i = 0; i < e->ndel; i++)
		if (e->del_ids[i] == id)
			return 1;
	return 0;
}

static int cmp_smallest(const void *a, const void *b)
{
	table *const *x = a, *const *y = b;
	return ikey_cmp(table_smallest(*x), table_smallest(*y));
}

int version_apply(const lsm_version *base, const version_edit *e, lsm_version **out)
{
	lsm_version *v = version_new_empty();
	if (!v)
		return -ENOMEM;
	for (int l = 0; l < MAX_LEVELS; l++) {
		if ((v->damaged[l] = base->damaged[l])) {
			table_ref(v->damaged[l]);
			v->max_version[l] = table_max_version(v->damaged[l]);
		}
		size_t cap = (size_t)base->ntables[l];
		for (size_t i = 0; i < e->nadd; i++)
			cap += e->add_levels[i] == l;
		if (!cap)
			continue;
		v->tables[l] = malloc(cap * sizeof(table *));
		if (!v->tables[l]) {
			version_unref(v);
			return -ENOMEM;
		}
		int n = 0;
		if (l == 0) {
			/* New L0 tables are newer than every existing one. */
			for (size_t i = e->nadd; i-- > 0;)
				if (e->add_levels[i] == 0)
					v->tables[0][n++] = e->add[i];
		}
		for (int i = 0; i < base->ntables[l]; i++) {
			table *t = base->tables[l][i];
			if (!deleted(e, table_id(t)))
				v->tables[l][n++] = t;
		}
		if (l > 0)
			for (size_t i = 0; i < e->nadd; i++)
				if (e->add_levels[i] == l)
					v->tables[l][n++] = e->add[i];
		for (int i = 0; i < n; i++)
			table_ref(v->tables[l][i]);
		v->ntables[l] = n;
		for (int i = 0; i < n; i++)
			if (table_max_version(v->tables[l][i]) > v->max_version[l])
				v->max_version[l] = table_max_version(v->tables[l][i]);
		if (l > 0 && n > 1)
			qsort(v->tables[l], (size_t)n, sizeof(table *), cmp_smallest);
	}
	*out = v;
	return 0;
}

uint64_t version_level_bytes(const lsm_version *v, int level)
{
	uint64_t s = 0;
	for (int i = 0; i < v->ntables[level]; i++)
		s += table_file_size(v->tables[level][i]);
	return s;
}
