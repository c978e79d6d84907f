/* scheddigest: private to the schedule-file parser. A hash of everything that decides what an
 * entry fires and sends, so a reload can keep the state of entries that did not change. */
#ifndef SALVO_SCHEDDIGEST_H
#define SALVO_SCHEDDIGEST_H

#include "schedfile.h"

#include <stdint.h>

/* FNV-1a 64 of every field of e but its name and line (a renamed entry is the same entry to
 * its state; see sched_entry.digest). Pure; thread-safe. */
uint64_t scheddigest_entry(const sched_entry *e);

#endif
