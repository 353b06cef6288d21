/* Stable short names for libcurl result codes, so Lua can branch on them. */
#ifndef ESPIPE_CURL_CODES_H
#define ESPIPE_CURL_CODES_H

#include <curl/curl.h>

/* "timeout", "connect", "resolve", "send", "recv", "empty_reply", "tls", ... */
const char *curl_code_name(CURLcode code);

#endif
