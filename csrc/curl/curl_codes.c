#include "curl_codes.h"

/*
** The names group curl's many codes by what a caller can do about them:
** "connect"/"resolve" say the host is unreachable, "timeout" may or may not
** have reached the server, "tls" is a configuration problem.
*/
const char *curl_code_name(CURLcode code)
{
    switch (code) {
    case CURLE_OK: return "ok";
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_COULDNT_RESOLVE_HOST: return "resolve";
    case CURLE_COULDNT_RESOLVE_PROXY: return "resolve";
    case CURLE_SEND_ERROR: return "send";
    case CURLE_RECV_ERROR: return "recv";
    case CURLE_GOT_NOTHING: return "empty_reply";
    case CURLE_PARTIAL_FILE: return "partial";
    case CURLE_WRITE_ERROR: return "too_large";
    case CURLE_OUT_OF_MEMORY: return "out_of_memory";
    case CURLE_URL_MALFORMAT: return "bad_url";
    case CURLE_UNSUPPORTED_PROTOCOL: return "bad_url";
    case CURLE_BAD_CONTENT_ENCODING: return "bad_encoding";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        return "tls";
    case CURLE_ABORTED_BY_CALLBACK: return "aborted";
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_WEIRD_SERVER_REPLY:
        return "protocol";
    default: return "other";
    }
}
