/*
** One HTTP exchange on a reusable easy handle: the request options, and the
** response status line, headers and body collected in C buffers while curl
** runs (no Lua is touched until the transfer is done).
*/
#ifndef ESPIPE_TRANSFER_H
#define ESPIPE_TRANSFER_H

#include <curl/curl.h>
#include <lua.h>
#include <lauxlib.h>

#include "base/strbuf.h"

/* Fixed for the life of a transport; the strings are owned by it. */
typedef struct transfer_config {
    long connect_timeout_ms;
    char *ca_file;
    char *ca_dir;
    char *cert;
    char *key;
    int insecure;
    char *username;
    char *password;
    char *auth_header;          /* "Authorization: ..." or NULL */
    size_t max_response_bytes;  /* headers + body */
} transfer_config;

/* One request; every pointer is borrowed and must outlive the transfer. */
typedef struct transfer_request {
    const char *url;
    const char *method;
    const char *body;           /* NULL: no body */
    size_t body_len;
    long timeout_ms;
    int gzip_level;             /* 0: send the body as is */
} transfer_request;

typedef enum { TRANSFER_FREE, TRANSFER_RUNNING, TRANSFER_DONE } transfer_state;

typedef struct transfer {
    CURL *easy;                 /* kept across requests: curl reuses its state */
    struct transfer *next_free;
    transfer_state state;
    lua_Integer id;             /* the caller's request id */
    int body_ref;               /* registry ref keeping the body alive, or LUA_NOREF */
    void *pinned;               /* a lent body (base/borrowed.h) we hold a pin on, or NULL */
    const struct lender *pinned_by;
    struct curl_slist *headers;
    int has_auth_header;        /* the request brought its own Authorization */
    strbuf head;                /* raw header lines of the final response */
    strbuf body;
    strbuf gz;                  /* the gzip'd request body */
    size_t max_response_bytes;
    int body_buffer;            /* deliver a 2xx body as a response_body, not a string */
    int too_large;
    CURLcode result;
    double started;
    char errbuf[CURL_ERROR_SIZE];
} transfer;

void transfer_init(transfer *t);
/* Append one "Name: value" request header. 0, or -1 on OOM. */
int transfer_add_header(transfer *t, const char *line);
/* Set every option of the easy handle for req. 0, or -1 with *why set. */
int transfer_prepare(transfer *t, const transfer_config *cfg, const transfer_request *req,
                     const char **why);
/* Forget the request (headers, buffers beyond a small size), keep the easy handle. */
void transfer_reset(transfer *t);
/* Free everything, the easy handle included. */
void transfer_destroy(transfer *t);

#endif
