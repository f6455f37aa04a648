/*
 * pin.c - pinned versions (pin.h): sett_pin, sett_unpin, sett_pins and
 * the space only pins hold.
 *
 * A pin is a name and a version, recorded in the MANIFEST (op 4, released
 * by op 5).  In memory the pins are a small array: compaction and GC take
 * a sorted copy of the versions once per job or file, so the array is
 * never on a per-entry path.
 *
 * Creating a pin is ordered so that no background job can miss it: the
 * pin goes into memory before the MANIFEST append (a compaction that
 * starts meanwhile keeps more than it must, never less), and GC checks
 * pin_created_since() before it deletes a file it measured.  Releasing
 * goes the other way: MANIFEST first, then memory.
 */
#include "pin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_impl.h"
#include "ikey.h"

typedef struct pin {
	char *name;
	uint64_t version;
	uint64_t gen; /* pin_generation when it was created */
} pin;

struct pin_state {
	pthread_mutex_t mu;    /* the array */
	pthread_mutex_t op_mu; /* one sett_pin / sett_unpin at a time */
	pin *p;
	size_t n;
	uint64_t gen;
};

static int pins_add(struct pin_state *ps, const char *name, uint64_t version)
{
	char *copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	pthread_mutex_lock(&ps->mu);
	pin *np = realloc(ps->p, (ps->n + 1) * sizeof *np);
	if (!np) {
		pthread_mutex_unlock(&ps->mu);
		free(copy);
		return -ENOMEM;
	}
	ps->p = np;
	ps->p[ps->n++] = (pin){ copy, version, ++ps->gen };
	pthread_mutex_unlock(&ps->mu);
	return 0;
}

static void pins_remove(struct pin_state *ps, const char *name)
{
	pthread_mutex_lock(&ps->mu);
	for (size_t i = 0; i < ps->n; i++) {
		if (strcmp(ps->p[i].name, name) == 0) {
			free(ps->p[i].name);
			ps->p[i] = ps->p[--ps->n];
			break;
		}
	}
	pthread_mutex_unlock(&ps->mu);
}

/* REQUIRES: ps->mu held. */
static ssize_t pins_find_locked(const struct pin_state *ps, const char *name)
{
	for (size_t i = 0; i < ps->n; i++)
		if (strcmp(ps->p[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

int pins_open(sett_db *db)
{
	struct pin_state *ps = calloc(1, sizeof *ps);
	if (!ps)
		return -ENOMEM;
	pthread_mutex_init(&ps->mu, NULL);
	pthread_mutex_init(&ps->op_mu, NULL);
	db->pins = ps;
	manifest_mark *mk;
	size_t n;
	int r = manifest_marks(db->man, &mk, &n);
	for (size_t i = 0; i < n && !r; i++)
		if (mk[i].kind == MANIFEST_MARK_PIN)
			r = pins_add(ps, (const char *)mk[i].name, mk[i].version);
	if (!r)
		manifest_marks_free(mk, n);
	return r;
}

void pins_close(sett_db *db)
{
	struct pin_state *ps = db->pins;
	if (!ps)
		return;
	for (size_t i = 0; i < ps->n; i++)
		free(ps->p[i].name);
	free(ps->p);
	pthread_mutex_destroy(&ps->mu);
	pthread_mutex_destroy(&ps->op_mu);
	free(ps);
	db->pins = NULL;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x > y ? -1 : x < y;
}

int pin_points(sett_db *db, uint64_t below, uint64_t **pts, size_t *n)
{
	struct pin_state *ps = db->pins;
	*pts = NULL;
	*n = 0;
	if (!ps)
		return 0;
	pthread_mutex_lock(&ps->mu);
	uint64_t *v = ps->n ? malloc(ps->n * sizeof *v) : NULL;
	size_t k = 0;
	if (ps->n && !v) {
		pthread_mutex_unlock(&ps->mu);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ps->n; i++)
		if (ps->p[i].version < below)
			v[k++] = ps->p[i].version;
	pthread_mutex_unlock(&ps->mu);
	if (k > 1)
		qsort(v, k, sizeof *v, cmp_desc);
	size_t d = 0;
	for (size_t i = 0; i < k; i++)
		if (d == 0 || v[d - 1] != v[i])
			v[d++] = v[i];
	if (!d) {
		free(v);
		v = NULL;
	}
	*pts = v;
	*n = d;
	return 0;
}

uint64_t pin_generation(sett_db *db)
{
	struct pin_state *ps = db->pins;
	if (!ps)
		return 0;
	pthread_mutex_lock(&ps->mu);
	uint64_t g = ps->gen;
	pthread_mutex_unlock(&ps->mu);
	return g;
}

int pin_created_since(sett_db *db, uint64_t gen, uint64_t below)
{
	struct pin_state *ps = db->pins;
	int found = 0;
	if (!ps)
		return 0;
	pthread_mutex_lock(&ps->mu);
	for (size_t i = 0; i < ps->n && !found; i++)
		found = ps->p[i].gen > gen && ps->p[i].version < below;
	pthread_mutex_unlock(&ps->mu);
	return found;
}

/* ---- the public API ---- */

static int name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n > 0 && n <= SETT_MAX_PIN_NAME;
}

/* The oldest version a reader (an open iterator) or a pin holds now. */
static uint64_t held_floor(sett_db *db)
{
	uint64_t floor = db_oldest_read_version(db);
	uint64_t *v;
	size_t n;
	if (pin_points(db, floor, &v, &n) == 0 && n)
		floor = v[n - 1];
	free(v);
	return floor;
}

int sett_pin(sett_db *db, const char *name, uint64_t version, uint64_t *pinned)
{
	if (!name_ok(name))
		return -EINVAL;
	if (db->opt.read_only)
		return -EROFS;
	struct pin_state *ps = db->pins;
	pthread_mutex_lock(&ps->op_mu);
	uint64_t cur = sett_current_version(db);
	int r = 0;
	if (version == 0)
		version = cur;
	else if (version > cur || version < held_floor(db))
		r = -EINVAL; /* not committed yet, or compaction may have dropped what it saw */
	pthread_mutex_lock(&ps->mu);
	if (!r && pins_find_locked(ps, name) >= 0)
		r = -EEXIST;
	pthread_mutex_unlock(&ps->mu);
	if (!r)
		r = pins_add(ps, name, version);
	if (!r) {
		manifest_change c = { .op = MANIFEST_PIN, .id = version, .name = name,
				      .name_len = (uint16_t)strlen(name) };
		r = manifest_apply(db->man, &c, 1);
		if (r) {
			pins_remove(ps, name);
			if (manifest_error(db->man))
				db_set_bg_error(db, r);
		}
	}
	pthread_mutex_unlock(&ps->op_mu);
	if (!r && pinned)
		*pinned = version;
	return r;
}

int sett_unpin(sett_db *db, const char *name)
{
	if (!name_ok(name))
		return -EINVAL;
	if (db->opt.read_only)
		return -EROFS;
	struct pin_state *ps = db->pins;
	pthread_mutex_lock(&ps->op_mu);
	pthread_mutex_lock(&ps->mu);
	int r = pins_find_locked(ps, name) >= 0 ? 0 : SETT_ENOTFOUND;
	pthread_mutex_unlock(&ps->mu);
	if (!r) {
		manifest_change c = { .op = MANIFEST_UNPIN, .name = name,
				      .name_len = (uint16_t)strlen(name) };
		r = manifest_apply(db->man, &c, 1);
		if (r && manifest_error(db->man))
			db_set_bg_error(db, r);
	}
	if (!r)
		pins_remove(ps, name);
	pthread_mutex_unlock(&ps->op_mu);
	if (!r)
		db_kick_compaction(db);
	return r;
}

static int cmp_pin_name(const void *a, const void *b)
{
	return strcmp(((const sett_pin_info *)a)->name, ((const sett_pin_info *)b)->name);
}

int sett_pins(sett_db *db, sett_pin_info *out, int max)
{
	struct pin_state *ps = db->pins;
	pthread_mutex_lock(&ps->mu);
	int n = (int)ps->n;
	for (int i = 0; i < n && i < max; i++) {
		snprintf(out[i].name, sizeof out[i].name, "%s", ps->p[i].name);
		out[i].version = ps->p[i].version;
	}
	pthread_mutex_unlock(&ps->mu);
	if (max > 0)
		qsort(out, (size_t)(n < max ? n : max), sizeof *out, cmp_pin_name);
	return n;
}

/*
 * Walks every version of every key once: an entry that some pin sees and
 * a read at the current version does not (an overwritten or deleted
 * version) is held only by pins; its key and value bytes (the value-log
 * bytes for a separated value) are counted.
 */
int sett_pin_space(sett_db *db, uint64_t *bytes)
{
	return sett_pin_space_of(db, NULL, bytes);
}

int sett_pin_space_of(sett_db *db, const char *name, uint64_t *bytes)
{
	*bytes = 0;
	uint64_t only = 0; /* name: the version of that pin */
	if (name) {
		struct pin_state *ps = db->pins;
		int found = 0, same = 0;
		pthread_mutex_lock(&ps->mu);
		for (size_t i = 0; i < ps->n && !found; i++)
			if (strcmp(ps->p[i].name, name) == 0) {
				only = ps->p[i].version;
				found = 1;
			}
		for (size_t i = 0; i < ps->n && found; i++)
			same += ps->p[i].version == only;
		pthread_mutex_unlock(&ps->mu);
		if (!found)
			return SETT_ENOTFOUND;
		if (same > 1)
			return 0; /* another pin of its version holds the same */
	}
	uint64_t *pv;
	size_t np;
	int r = pin_points(db, UINT64_MAX, &pv, &np);
	if (r || !np)
		return r;
	db_view vw;
	uint64_t lv;
	db_view_get_reader(db, &vw, 0, &lv);
	sit *it = db_view_iter(db, &vw);
	buf last = { 0 };
	uint64_t newer = UINT64_MAX; /* version of the previous entry of this key */
	int have = 0;
	if (!it)
		r = -ENOMEM;
	else
		sit_first(it);
	for (; !r && sit_valid(it); sit_next(it)) {
		slice ik = sit_key(it);
		if (ik.n < IKEY_SUFFIX) {
			r = SETT_ECORRUPT;
			break;
		}
		slice uk = ikey_user(ik);
		uint64_t ver = ikey_version(ik);
		if (ver > lv)
			continue; /* not published yet */
		if (!have || slice_cmp(uk, slice_make(last.p, last.n)) != 0) {
			last.n = 0;
			if ((r = buf_append(&last, uk.p, uk.n)))
				break;
			have = 1;
			newer = ver; /* the newest entry: a current read sees it */
			continue;
		}
		uint64_t above = newer;
		newer = ver;
		vstruct vs;
		slice v = sit_value(it);
		if (vstruct_decode(v.p, v.n, &vs) || (vs.meta & META_DELETE))
			continue;
		/* seen by a pin p with ver <= p < above (pv is newest first);
		 * with a name, by that pin's version and no other */
		size_t seen = 0, seen_only = 0;
		for (size_t i = 0; i < np; i++)
			if (pv[i] >= ver && pv[i] < above) {
				seen++;
				seen_only += pv[i] == only;
			}
		if (!seen || (name && (!seen_only || seen != 1)))
			continue;
		vptr p;
		if ((vs.meta & META_VALUE_POINTER) && vptr_decode(vs.data.p, vs.data.n, &p) == 0)
			*bytes += uk.n + p.len;
		else
			*bytes += uk.n + vs.data.n;
	}
	if (it && !r)
		r = sit_error(it);
	sit_free(it);
	buf_free(&last);
	db_view_release(&vw);
	db_reader_remove(db, lv);
	free(pv);
	return r;
}

size_t pin_bucket(const uint64_t *pins, size_t npins, uint64_t ver)
{
	size_t b = 0;
	while (b < npins && pins[b] >= ver)
		b++;
	return b;
}
