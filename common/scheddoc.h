/* scheddoc: private to the schedule-file parser. A small YAML document: libyaml's yaml_node_t
 * nodes (ids from 1, children as ids, as in a libyaml document), their values and children held
 * in an arena that is reset, not freed, between documents. libyaml's own documents cost a malloc
 * and a free per node, tag and value, which was a third of the time to load 100,000 jobs. */
#ifndef SALVO_SCHEDDOC_H
#define SALVO_SCHEDDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

typedef struct scheddoc_block scheddoc_block;

/* Zero it to start. Single-threaded. A node's tag is always NULL. */
typedef struct scheddoc {
    yaml_node_t *nodes; /* owned array of n; moves when nodes are added: hold ids, not pointers */
    size_t n;
    size_t cap;
    scheddoc_block *blocks; /* owned arena: scalar values, item and pair arrays */
} scheddoc;

/* Node id (1..n). */
yaml_node_t *scheddoc_get(const scheddoc *d, int id);

/* Add a scalar (value copied: len bytes, a NUL added), or an empty sequence or mapping, starting
 * and ending at the given marks. Its id, or 0 when out of memory. */
int scheddoc_scalar(scheddoc *d, const yaml_char_t *value, size_t len, yaml_scalar_style_t style,
                    yaml_mark_t start, yaml_mark_t end);
int scheddoc_collection(scheddoc *d, yaml_node_type_t type, yaml_mark_t start, yaml_mark_t end);
/* Give collection id its n children (keys and values alternating for a mapping, n even); ids
 * copied. False when out of memory. */
bool scheddoc_children(scheddoc *d, int id, const int *ids, size_t n);

/* Forget every node but keep the memory, for the next document. */
void scheddoc_reset(scheddoc *d);
/* Free everything; leaves d zeroed. */
void scheddoc_fini(scheddoc *d);

#endif
