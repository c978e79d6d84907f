/* schedcomp: libyaml events into documents one node at a time, with anchors across them. */
#include "schedcomp.h"

#include "err.h"
#include "qvec.h"

#include <stdlib.h>
#include <string.h>

/* An alias copied from another document is copied node by node; a legitimate schedule nests
 * a dozen levels at most (a context is limited to 7), so deeper is refused, not recursed. */
#define SC_COPY_DEPTH_MAX 64

/* A collection being composed: its children are scratch[base..]. */
typedef struct sc_frame {
    int id;
    size_t base;
} sc_frame;

int schedcomp_init(schedcomp *sc, const char *text, size_t len)
{
    memset(sc, 0, sizeof *sc);
    if (!yaml_parser_initialize(&sc->parser))
        return ERR_NOMEM;
    yaml_parser_set_input_string(&sc->parser, (const unsigned char *)text, len);
    return ERR_OK;
}

void schedcomp_fini(schedcomp *sc)
{
    if (!sc)
        return;
    if (sc->have_ev)
        yaml_event_delete(&sc->ev);
    for (size_t i = 0; i < sc->nanchors; i++)
        free(sc->anchors[i].name);
    free(sc->anchors);
    free(sc->scratch);
    scheddoc_fini(&sc->store);
    yaml_parser_delete(&sc->parser);
    memset(sc, 0, sizeof *sc);
}

bool schedcomp_failed(const schedcomp *sc)
{
    return sc->parser.error != YAML_NO_ERROR;
}

const yaml_event_t *schedcomp_peek(schedcomp *sc)
{
    if (!sc->have_ev) {
        if (schedcomp_failed(sc) || !yaml_parser_parse(&sc->parser, &sc->ev))
            return NULL;
        sc->have_ev = true;
    }
    return &sc->ev;
}

bool schedcomp_skip(schedcomp *sc)
{
    if (!schedcomp_peek(sc))
        return false;
    yaml_event_delete(&sc->ev);
    sc->have_ev = false;
    return true;
}

/* A composer error, reported the way libyaml's own loader reports it. Returns 0 (no node). */
static int sc_fail(schedcomp *sc, const char *context, yaml_mark_t context_mark,
                   const char *problem, yaml_mark_t problem_mark)
{
    sc->parser.error = YAML_COMPOSER_ERROR;
    sc->parser.context = context;
    sc->parser.context_mark = context_mark;
    sc->parser.problem = problem;
    sc->parser.problem_mark = problem_mark;
    return 0;
}

static int sc_nomem(schedcomp *sc)
{
    sc->nomem = true;
    return 0;
}

static schedcomp_anchor *sc_anchor_find(schedcomp *sc, const yaml_char_t *name)
{
    for (size_t i = 0; i < sc->nanchors; i++) {
        if (strcmp(sc->anchors[i].name, (const char *)name) == 0)
            return &sc->anchors[i];
    }
    return NULL;
}

/* Anchors are rare in a schedule file, so a list searched from the start is enough. Like
 * libyaml's loader, a second anchor of the same name is an error. */
static int sc_anchor_add(schedcomp *sc, scheddoc *doc, int id, const yaml_char_t *name,
                         yaml_mark_t mark)
{
    const schedcomp_anchor *first = sc_anchor_find(sc, name);
    if (first)
        return sc_fail(sc, "found duplicate anchor; first occurrence", first->mark,
                       "second occurrence", mark);
    void *v = sc->anchors;
    int rc = qvec_grow(&v, sc->nanchors, &sc->cap, sizeof *sc->anchors, 8);
    sc->anchors = v;
    if (rc != ERR_OK)
        return sc_nomem(sc);
    char *copy = strdup((const char *)name);
    if (!copy)
        return sc_nomem(sc);
    sc->anchors[sc->nanchors++] = (schedcomp_anchor){copy, mark, doc, id};
    return id;
}

/* ---- copying a node from one document into another ---------------------------------------- */

typedef struct sc_copy {
    schedcomp *sc;
    const scheddoc *src;
    scheddoc *dst;
    int *memo;      /* src id - 1 -> dst id, so shared and self-referencing nodes copy once */
    yaml_mark_t at; /* the alias, for the error */
} sc_copy;

static int sc_copy_node(sc_copy *x, int src_id, int depth);

/* The children of src node n (n stays valid: only dst grows) copied, then set on dst node id. */
static int sc_copy_children(sc_copy *x, const yaml_node_t *n, int id, int depth)
{
    bool seq = n->type == YAML_SEQUENCE_NODE;
    size_t count = seq ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
                       : 2 * (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    int *ids = malloc((count ? count : 1) * sizeof *ids);
    if (!ids)
        return sc_nomem(x->sc);
    for (size_t i = 0; i < count && id; i++) {
        const yaml_node_pair_t *p = seq ? NULL : &n->data.mapping.pairs.start[i / 2];
        int src = seq ? n->data.sequence.items.start[i] : i % 2 ? p->value : p->key;
        ids[i] = sc_copy_node(x, src, depth + 1);
        if (!ids[i])
            id = 0;
    }
    if (id && !scheddoc_children(x->dst, id, ids, count))
        id = sc_nomem(x->sc);
    free(ids);
    return id;
}

static int sc_copy_node(sc_copy *x, int src_id, int depth)
{
    if (x->memo[src_id - 1])
        return x->memo[src_id - 1];
    if (depth > SC_COPY_DEPTH_MAX)
        return sc_fail(x->sc, NULL, x->at, "an alias of a node nested too deeply", x->at);
    const yaml_node_t *n = scheddoc_get(x->src, src_id);
    int id = n->type == YAML_SCALAR_NODE
                 ? scheddoc_scalar(x->dst, n->data.scalar.value, n->data.scalar.length,
                                   n->data.scalar.style, n->start_mark, n->end_mark)
                 : scheddoc_collection(x->dst, n->type, n->start_mark, n->end_mark);
    if (!id)
        return sc_nomem(x->sc);
    x->memo[src_id - 1] = id;
    return n->type == YAML_SCALAR_NODE ? id : sc_copy_children(x, n, id, depth);
}

/* Copy node id of src into dst; the copy's id, or 0 after an error. */
static int sc_copy_into(schedcomp *sc, const scheddoc *src, int id, scheddoc *dst, yaml_mark_t at)
{
    sc_copy x = {sc, src, dst, calloc(src->n ? src->n : 1, sizeof(int)), at};
    if (!x.memo)
        return sc_nomem(sc);
    int copy = sc_copy_node(&x, id, 0);
    free(x.memo);
    return copy;
}

bool schedcomp_release(schedcomp *sc, scheddoc *doc)
{
    for (size_t i = 0; i < sc->nanchors; i++) {
        schedcomp_anchor *a = &sc->anchors[i];
        if (a->doc != doc)
            continue;
        int id = sc_copy_into(sc, doc, a->id, &sc->store, a->mark);
        if (!id)
            return false;
        a->doc = &sc->store;
        a->id = id;
    }
    return true;
}

/* ---- composing ----------------------------------------------------------------------------- */

static int sc_alias(schedcomp *sc, scheddoc *doc, const yaml_event_t *ev)
{
    const schedcomp_anchor *a = sc_anchor_find(sc, ev->data.alias.anchor);
    if (!a)
        return sc_fail(sc, NULL, ev->start_mark, "found undefined alias", ev->start_mark);
    if (a->doc == doc)
        return a->id;
    return sc_copy_into(sc, a->doc, a->id, doc, ev->start_mark);
}

/* The node an event starts, added to doc; 0 after an error. */
static int sc_add(schedcomp *sc, scheddoc *doc, const yaml_event_t *ev)
{
    const yaml_char_t *anchor = NULL;
    int id = 0;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return sc_alias(sc, doc, ev);
    case YAML_SCALAR_EVENT:
        anchor = ev->data.scalar.anchor;
        id = scheddoc_scalar(doc, ev->data.scalar.value, ev->data.scalar.length,
                             ev->data.scalar.style, ev->start_mark, ev->end_mark);
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ev->data.sequence_start.anchor;
        id = scheddoc_collection(doc, YAML_SEQUENCE_NODE, ev->start_mark, ev->end_mark);
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ev->data.mapping_start.anchor;
        id = scheddoc_collection(doc, YAML_MAPPING_NODE, ev->start_mark, ev->end_mark);
        break;
    default:
        return sc_fail(sc, NULL, ev->start_mark, "did not find expected node content",
                       ev->start_mark);
    }
    if (!id)
        return sc_nomem(sc);
    return anchor ? sc_anchor_add(sc, doc, id, anchor, ev->start_mark) : id;
}

static bool sc_push(schedcomp *sc, int id)
{
    void *v = sc->scratch;
    int rc = qvec_grow(&v, sc->nscratch, &sc->scratch_cap, sizeof *sc->scratch, 64);
    sc->scratch = v;
    if (rc != ERR_OK)
        return sc_nomem(sc);
    sc->scratch[sc->nscratch++] = id;
    return true;
}

/* The end of the innermost open collection: its children leave the scratch stack for doc. */
static bool sc_close(schedcomp *sc, scheddoc *doc, const sc_frame *f, const yaml_event_t *ev)
{
    scheddoc_get(doc, f->id)->end_mark = ev->end_mark;
    bool ok = scheddoc_children(doc, f->id, sc->scratch + f->base, sc->nscratch - f->base);
    sc->nscratch = f->base;
    return ok || sc_nomem(sc);
}

/* One event of a node being composed; frames holds the open collections (depth of them). */
static bool sc_step(schedcomp *sc, scheddoc *doc, const yaml_event_t *ev, sc_frame *frames,
                    size_t *depth, int *root)
{
    if (ev->type == YAML_SEQUENCE_END_EVENT || ev->type == YAML_MAPPING_END_EVENT) {
        if (*depth == 0)
            return sc_fail(sc, NULL, ev->start_mark, "did not find expected node content",
                           ev->start_mark);
        return sc_close(sc, doc, &frames[--*depth], ev);
    }
    int id = sc_add(sc, doc, ev);
    if (!id)
        return false;
    if (*depth == 0)
        *root = id;
    else if (!sc_push(sc, id))
        return false;
    if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT)
        frames[(*depth)++] = (sc_frame){id, sc->nscratch};
    return true;
}

bool schedcomp_node(schedcomp *sc, scheddoc *doc, int *id)
{
    sc_frame stack[16]; /* a job nests this deep at most; deeper input gets a heap stack */
    sc_frame *frames = stack;
    size_t depth = 0, cap = sizeof stack / sizeof stack[0];
    bool ok = true;
    *id = 0;
    do {
        if (depth == cap) {
            sc_frame *p = malloc(2 * cap * sizeof *p);
            ok = p != NULL || sc_nomem(sc);
            if (p)
                memcpy(p, frames, depth * sizeof *p);
            if (frames != stack)
                free(frames);
            frames = p;
            cap *= 2;
        }
        ok = ok && schedcomp_peek(sc) && sc_step(sc, doc, &sc->ev, frames, &depth, id);
        if (ok)
            schedcomp_skip(sc);
    } while (ok && depth > 0);
    if (frames != stack)
        free(frames);
    return ok;
}

bool schedcomp_open(schedcomp *sc, scheddoc *doc, int *id)
{
    const yaml_event_t *ev = schedcomp_peek(sc);
    if (!ev)
        return false;
    if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT)
        *id = scheddoc_collection(
            doc, ev->type == YAML_SEQUENCE_START_EVENT ? YAML_SEQUENCE_NODE : YAML_MAPPING_NODE,
            ev->start_mark, ev->end_mark);
    else
        return sc_fail(sc, NULL, ev->start_mark, "did not find expected node content",
                       ev->start_mark);
    if (!*id)
        return sc_nomem(sc);
    return schedcomp_skip(sc);
}
