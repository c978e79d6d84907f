/* scheddoc: YAML nodes in an arena that is reset between documents. */
#include "scheddoc.h"

#include "err.h"
#include "qvec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A job's nodes, values and children fit in one block; a bigger value gets a block its own. */
#define SD_BLOCK_SIZE (16 * 1024)

struct scheddoc_block {
    scheddoc_block *next;
    size_t used;
    size_t cap;
    max_align_t data[]; /* cap bytes */
};

yaml_node_t *scheddoc_get(const scheddoc *d, int id)
{
    return &d->nodes[id - 1];
}

/* n bytes from the arena, aligned for any type; NULL when out of memory. */
static void *sd_alloc(scheddoc *d, size_t n)
{
    size_t need = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    scheddoc_block *b = d->blocks;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > SD_BLOCK_SIZE ? need : SD_BLOCK_SIZE;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = d->blocks;
        b->used = 0;
        b->cap = cap;
        d->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += need;
    return p;
}

static int sd_add(scheddoc *d, yaml_node_type_t type, yaml_mark_t start, yaml_mark_t end)
{
    void *v = d->nodes;
    int rc = qvec_grow(&v, d->n, &d->cap, sizeof *d->nodes, 64);
    d->nodes = v;
    if (rc != ERR_OK)
        return 0;
    if (d->n >= INT32_MAX)
        return 0;
    yaml_node_t *node = &d->nodes[d->n++];
    memset(node, 0, sizeof *node);
    node->type = type;
    node->start_mark = start;
    node->end_mark = end;
    return (int)d->n;
}

int scheddoc_scalar(scheddoc *d, const yaml_char_t *value, size_t len, yaml_scalar_style_t style,
                    yaml_mark_t start, yaml_mark_t end)
{
    yaml_char_t *copy = sd_alloc(d, len + 1);
    int id = copy ? sd_add(d, YAML_SCALAR_NODE, start, end) : 0;
    if (!id)
        return 0;
    memcpy(copy, value, len);
    copy[len] = '\0';
    yaml_node_t *node = scheddoc_get(d, id);
    node->data.scalar.value = copy;
    node->data.scalar.length = len;
    node->data.scalar.style = style;
    return id;
}

int scheddoc_collection(scheddoc *d, yaml_node_type_t type, yaml_mark_t start, yaml_mark_t end)
{
    return sd_add(d, type, start, end);
}

bool scheddoc_children(scheddoc *d, int id, const int *ids, size_t n)
{
    yaml_node_t *node = scheddoc_get(d, id);
    if (node->type == YAML_SEQUENCE_NODE) {
        yaml_node_item_t *items = sd_alloc(d, (n ? n : 1) * sizeof *items);
        if (!items)
            return false;
        memcpy(items, ids, n * sizeof *items);
        node->data.sequence.items.start = items;
        node->data.sequence.items.top = node->data.sequence.items.end = items + n;
        return true;
    }
    yaml_node_pair_t *pairs = sd_alloc(d, (n / 2 ? n / 2 : 1) * sizeof *pairs);
    if (!pairs)
        return false;
    for (size_t i = 0; i + 1 < n; i += 2)
        pairs[i / 2] = (yaml_node_pair_t){ids[i], ids[i + 1]};
    node->data.mapping.pairs.start = pairs;
    node->data.mapping.pairs.top = node->data.mapping.pairs.end = pairs + n / 2;
    return true;
}

void scheddoc_reset(scheddoc *d)
{
    /* Keep the newest block (the others were the overflow of a large document). */
    scheddoc_block *b = d->blocks;
    while (b && b->next) {
        scheddoc_block *next = b->next;
        b->next = next->next;
        free(next);
    }
    if (b)
        b->used = 0;
    d->n = 0;
}

void scheddoc_fini(scheddoc *d)
{
    scheddoc_block *b = d->blocks;
    while (b) {
        scheddoc_block *next = b->next;
        free(b);
        b = next;
    }
    free(d->nodes);
    memset(d, 0, sizeof *d);
}
