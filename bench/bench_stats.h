/*
 * Latency recording and the summary line printed per workload.
 */
#ifndef CMKBENCH_STATS_H
#define CMKBENCH_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct lat_buf {
	uint64_t *ns;
	size_t len;
	size_t cap;
};

struct stats_summary {
	size_t ops;
	double seconds;
	double ops_per_s;
	double mean_us;
	double p50_us;
	double p99_us;
};

struct stats_line {
	const char *workload;
	const char *module;
	unsigned threads;
	unsigned long objects;
	unsigned long errors;
};

uint64_t clock_now_ns(void);

int lat_buf_reserve(struct lat_buf *b, size_t cap);
int lat_buf_push(struct lat_buf *b, uint64_t ns);
void lat_buf_free(struct lat_buf *b);

int stats_summarize(const struct lat_buf *bufs, size_t nbufs, double seconds,
		    struct stats_summary *out);
void stats_print_json(FILE *out, const struct stats_line *line,
		      const struct stats_summary *s);

#endif
