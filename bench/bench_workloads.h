/*
 * The named workloads cmkbench can run.
 */
#ifndef CMKBENCH_WORKLOADS_H
#define CMKBENCH_WORKLOADS_H

#include <stddef.h>

#include "bench.h"

const struct workload *wl_lookup(const char *name);
const struct workload *wl_at(size_t i);
size_t wl_total(void);

#endif
