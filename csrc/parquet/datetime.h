/*
** Elasticsearch's default date formats, strict_date_optional_time||epoch_millis,
** to epoch milliseconds (UTC).
*/
#ifndef ESPIPE_PARQUET_DATETIME_H
#define ESPIPE_PARQUET_DATETIME_H

#include <stddef.h>
#include <stdint.h>

/*
** ISO-8601 as strict_date_optional_time reads it: yyyy[-MM[-dd]] then
** optionally 'T'HH[:mm[:ss[.f{1,9}]]] and a zone Z | +HH | +HH:mm | +HHmm.
** No zone means UTC. Fractions below a millisecond are truncated toward the
** past. 0 and *ms set, or -1.
*/
int parse_iso8601_ms(const char *s, size_t n, int64_t *ms);
/* An optionally signed run of digits that fits in int64. 0 or -1. */
int parse_epoch_millis(const char *s, size_t n, int64_t *ms);
/* ISO first, as Elasticsearch tries its formats in order: "2024" is a year. */
int parse_es_date(const char *s, size_t n, int64_t *ms);

/* The same to epoch nanoseconds, for date_nanos (strict_date_optional_time_nanos||epoch_millis). */
int parse_iso8601_ns(const char *s, size_t n, int64_t *ns);
int parse_es_date_nanos(const char *s, size_t n, int64_t *ns);
/* 0, or -1 past the int64 range. */
int millis_to_nanos(int64_t ms, int64_t *ns);

#endif
