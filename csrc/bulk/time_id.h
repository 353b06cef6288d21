/*
** Client-side document ids, the way Elasticsearch makes its own
** (TimeBasedUUIDGenerator): 15 bytes of sequence, time and a node part,
** written as 20 characters of URL-safe base64 without padding. An id made
** before the first send makes every retry of that document idempotent.
*/
#ifndef ESPIPE_TIME_ID_H
#define ESPIPE_TIME_ID_H

#define ESPIPE_TIME_ID_LEN 20

/* Writes ESPIPE_TIME_ID_LEN characters (no NUL) to out. */
void espipe_time_id(char *out);

#endif
