/*
 * Latency recording and the JSON summary line.
 */
#define _POSIX_C_SOURCE 200809L

#include "bench_stats.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t clock_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int lat_buf_reserve(struct lat_buf *b, size_t cap)
{
	uint64_t *p;

	if (cap <= b->cap)
		return 0;
	p = realloc(b->ns, cap * sizeof(*p));
	if (!p)
		return -1;
	b->ns = p;
	b->cap = cap;
	return 0;
}

int lat_buf_push(struct lat_buf *b, uint64_t ns)
{
	/* Growth happens inside the timed loop only in --seconds mode, and
	 * doubling keeps it to a handful of reallocs per run. */
	if (b->len == b->cap &&
	    lat_buf_reserve(b, b->cap ? b->cap * 2 : 1024) != 0)
		return -1;
	b->ns[b->len++] = ns;
	return 0;
}

void lat_buf_free(struct lat_buf *b)
{
	free(b->ns);
	memset(b, 0, sizeof(*b));
}

static int stats_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a;
	uint64_t y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile, so p99 of a small sample is a real observation. */
static double stats_percentile_us(const uint64_t *sorted, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0.0;
	rank = (size_t)(p * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)sorted[rank - 1] / 1000.0;
}

int stats_summarize(const struct lat_buf *bufs, size_t nbufs, double seconds,
		    struct stats_summary *out)
{
	size_t total = 0, k, pos = 0;
	uint64_t *all;
	double sum = 0.0;

	memset(out, 0, sizeof(*out));
	for (k = 0; k < nbufs; k++)
		total += bufs[k].len;
	out->seconds = seconds;
	out->ops = total;
	if (total == 0)
		return 0;
	all = malloc(total * sizeof(*all));
	if (!all)
		return -1;
	for (k = 0; k < nbufs; k++) {
		memcpy(all + pos, bufs[k].ns, bufs[k].len * sizeof(*all));
		pos += bufs[k].len;
	}
	qsort(all, total, sizeof(*all), stats_cmp_u64);
	for (k = 0; k < total; k++)
		sum += (double)all[k];
	out->mean_us = sum / (double)total / 1000.0;
	out->p50_us = stats_percentile_us(all, total, 0.50);
	out->p99_us = stats_percentile_us(all, total, 0.99);
	out->ops_per_s = seconds > 0.0 ? (double)total / seconds : 0.0;
	free(all);
	return 0;
}

/* Module file names come from the command line, so they may need escaping. */
static void stats_print_json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

void stats_print_json(FILE *out, const struct stats_line *line,
		      const struct stats_summary *s)
{
	fputs("{\"workload\":", out);
	stats_print_json_string(out, line->workload);
	fputs(",\"module\":", out);
	stats_print_json_string(out, line->module);
	fprintf(out,
		",\"threads\":%u,\"ops\":%zu,\"seconds\":%.6f,"
		"\"ops_per_s\":%.1f,\"mean_us\":%.1f,\"p50_us\":%.1f,"
		"\"p99_us\":%.1f,\"objects\":%lu,\"errors\":%lu}\n",
		line->threads, s->ops, s->seconds, s->ops_per_s, s->mean_us,
		s->p50_us, s->p99_us, line->objects, line->errors);
	fflush(out);
}
