/*
 * render.c - a whole message from a struct sm_msg and a struct sm_output,
 * as the MTA would deliver it after the milter's edits.  Used by segelctl
 * and the tests; the milter applies the same edits through libmilter.
 */
#include <string.h>
#include <strings.h>

#include "mimeint.h"

static int
deleted(const struct sm_msg *m, const struct sm_output *o, size_t i)
{
	const char *name = sm_msg_header_name(m, i);
	size_t j, occ = sm_msg_occurrence(m, i);

	for (j = 0; j < o->nedits; j++)
		if (o->edits[j].op == SM_EDIT_DELETE && o->edits[j].index == occ &&
		    strcasecmp(o->edits[j].name, name) == 0)
			return 1;
	return 0;
}

int
sm_output_render(const struct sm_msg *m, const struct sm_output *o, struct sg_spool *dst)
{
	struct sm_sink s = {dst, NULL};
	const struct sg_spool *body = o && o->body ? o->body : sm_msg_body_spool(m);
	unsigned char buf[65536];
	size_t i, off = 0, got;
	int r;

	for (i = 0; i < sm_msg_header_count(m); i++) {
		if (o && deleted(m, o, i))
			continue;
		if ((r = sm_put_field(
		         &s, sm_msg_header_name(m, i), sm_msg_header_value(m, i))) != 0)
			return r;
	}
	for (i = 0; o && i < o->nedits; i++)
		if (o->edits[i].op == SM_EDIT_ADD &&
		    (r = sm_put_field(&s, o->edits[i].name, o->edits[i].value)) != 0)
			return r;
	if ((r = sm_sink_put(&s, "\r\n", 2)) != 0)
		return r;
	for (;;) {
		if ((r = sg_spool_read(body, off, buf, sizeof(buf), &got)) != 0)
			return r;
		if (got == 0)
			return 0;
		if ((r = sg_spool_write(dst, buf, got)) != 0)
			return r;
		off += got;
	}
}
