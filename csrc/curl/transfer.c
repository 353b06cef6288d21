#include <string.h>
#include <strings.h>

#include "transfer.h"
#include "gzip_body.h"

/* Response buffers larger than this are freed between requests, not kept. */
#define KEEP_BUFFER_BYTES ((size_t)4 << 20)

void transfer_init(transfer *t)
{
    memset(t, 0, sizeof *t);
    t->state = TRANSFER_FREE;
    t->body_ref = LUA_NOREF;
    strbuf_init(&t->head);
    strbuf_init(&t->body);
    strbuf_init(&t->gz);
}

int transfer_add_header(transfer *t, const char *line)
{
    struct curl_slist *l = curl_slist_append(t->headers, line);

    if (l == NULL)
        return -1;
    t->headers = l;
    if (strncasecmp(line, "authorization:", 14) == 0)
        t->has_auth_header = 1;
    return 0;
}

static int collect(transfer *t, strbuf *b, const char *p, size_t n)
{
    if (t->head.len + t->body.len + n > t->max_response_bytes) {
        t->too_large = 1;
        return -1;
    }
    return strbuf_append(b, p, n);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    transfer *t = ud;

    n *= size;
    if (t->body.len == 0) {
        /* Size the buffer once from Content-Length instead of growing it by
        ** doubling (each step a realloc copy). Best effort: on failure the
        ** append below grows as usual. */
        curl_off_t announced = -1;
        if (curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced) == CURLE_OK
            && announced > 0 && (curl_off_t)t->max_response_bytes >= announced)
            (void)strbuf_reserve(&t->body, (size_t)announced);
    }
    return collect(t, &t->body, p, n) == 0 ? n : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    transfer *t = ud;

    n *= size;
    /* A new status line (after 100 Continue, or a redirect) starts a new header block. */
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0)
        t->head.len = 0;
    return collect(t, &t->head, p, n) == 0 ? n : 0;
}

#define SET(opt, val) \
    do { if (curl_easy_setopt(e, (opt), (val)) != CURLE_OK) goto setopt_failed; } while (0)

static int set_method_and_body(transfer *t, CURL *e, const transfer_request *req, const char **why)
{
    const char *body = req->body;
    size_t len = req->body_len;
    int post = body != NULL || strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0;

    if (strcmp(req->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
        return 0;
    }
    if (!post) {
        if (strcmp(req->method, "GET") != 0)
            SET(CURLOPT_CUSTOMREQUEST, req->method);
        return 0;
    }
    if (body == NULL) {
        body = "";
        len = 0;
    } else if (req->gzip_level > 0) {
        if (gzip_body(&t->gz, body, len, req->gzip_level) != 0) {
            *why = "cannot gzip the request body (out of memory)";
            return -1;
        }
        if (transfer_add_header(t, "Content-Encoding: gzip") != 0)
            goto oom;
        body = t->gz.data;
        len = t->gz.len;
    }
    /* POSTFIELDS points at the caller's bytes: no copy, the caller pins them. */
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    SET(CURLOPT_POSTFIELDS, body);
    if (strcmp(req->method, "POST") != 0)
        SET(CURLOPT_CUSTOMREQUEST, req->method);
    return 0;
oom:
    *why = "out of memory";
    return -1;
setopt_failed:
    *why = "curl rejected the request method or body";
    return -1;
}

static int set_tls(CURL *e, const transfer_config *cfg)
{
    if (cfg->ca_file != NULL)
        SET(CURLOPT_CAINFO, cfg->ca_file);
    if (cfg->ca_dir != NULL)
        SET(CURLOPT_CAPATH, cfg->ca_dir);
    if (cfg->cert != NULL)
        SET(CURLOPT_SSLCERT, cfg->cert);
    if (cfg->key != NULL)
        SET(CURLOPT_SSLKEY, cfg->key);
    SET(CURLOPT_SSL_VERIFYPEER, cfg->insecure ? 0L : 1L);
    SET(CURLOPT_SSL_VERIFYHOST, cfg->insecure ? 0L : 2L);
    return 0;
setopt_failed:
    return -1;
}

int transfer_prepare(transfer *t, const transfer_config *cfg, const transfer_request *req,
                     const char **why)
{
    CURL *e = t->easy;

    if (e == NULL) {
        e = t->easy = curl_easy_init();
        if (e == NULL) {
            *why = "cannot create a curl handle (out of memory)";
            return -1;
        }
    } else {
        /* Options go, the connection cache (in the multi handle) stays. */
        curl_easy_reset(e);
    }
    t->errbuf[0] = '\0';
    t->too_large = 0;
    t->max_response_bytes = cfg->max_response_bytes;
    t->head.len = 0;
    t->body.len = 0;
    t->result = CURLE_OK;

    /* Without this curl waits up to a second for "100 Continue" before large bodies. */
    if (transfer_add_header(t, "Expect:") != 0)
        goto oom;
    if (cfg->auth_header != NULL && !t->has_auth_header
        && transfer_add_header(t, cfg->auth_header) != 0)
        goto oom;
    if (set_method_and_body(t, e, req, why) != 0)
        return -1;

    SET(CURLOPT_URL, req->url);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_HTTPHEADER, t->headers);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_ACCEPT_ENCODING, "");
    SET(CURLOPT_CONNECTTIMEOUT_MS, cfg->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, req->timeout_ms);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, t);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, t);
    SET(CURLOPT_ERRORBUFFER, t->errbuf);
    SET(CURLOPT_PRIVATE, t);
    if (cfg->username != NULL) {
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SET(CURLOPT_USERNAME, cfg->username);
        SET(CURLOPT_PASSWORD, cfg->password != NULL ? cfg->password : "");
    }
    if (set_tls(e, cfg) != 0)
        goto setopt_failed;
    return 0;
oom:
    *why = "out of memory";
    return -1;
setopt_failed:
    *why = "curl rejected an option (is libcurl too old, or built without TLS?)";
    return -1;
}

#undef SET

static void trim(strbuf *b)
{
    if (b->cap > KEEP_BUFFER_BYTES)
        strbuf_free(b);
    b->len = 0;
}

void transfer_reset(transfer *t)
{
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    t->has_auth_header = 0;
    trim(&t->head);
    trim(&t->body);
    /* gz is not trimmed: bulk bodies have a steady size, reusing saves a realloc per batch. */
    t->gz.len = 0;
    t->body_buffer = 0;
    t->state = TRANSFER_FREE;
    t->body_ref = LUA_NOREF;
}

void transfer_destroy(transfer *t)
{
    transfer_reset(t);
    strbuf_free(&t->head);
    strbuf_free(&t->body);
    strbuf_free(&t->gz);
    if (t->easy != NULL)
        curl_easy_cleanup(t->easy);
    t->easy = NULL;
}
