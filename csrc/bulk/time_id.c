#include "time_id.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/*
** Uniqueness: within a process the 24-bit sequence and a millisecond clock
** that never goes back (it moves on by one when the sequence wraps); across
** processes 6 random bytes (the "node"), drawn again after a fork so nginx
** workers forked from one master do not share them (a fork handler clears
** `started`: asking getpid() per id would cost a system call per document).
*/
static struct {
    int started;
    int at_fork;
    uint32_t seq;
    int64_t last_ms;
    unsigned char node[6];
} state;

/* Milliseconds since the epoch; Linux's coarse clock is enough (the
** sequence makes ids unique) and costs a fraction of the precise one. */
#ifdef CLOCK_REALTIME_COARSE
#define ID_CLOCK CLOCK_REALTIME_COARSE
#else
#define ID_CLOCK CLOCK_REALTIME
#endif

static int64_t now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(ID_CLOCK, &ts) != 0)
        return (int64_t)time(NULL) * 1000;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* n random bytes: /dev/urandom, else a generator seeded from clock, pid and address. */
static void random_bytes(unsigned char *p, size_t n)
{
    size_t got = 0;
    FILE *f = fopen("/dev/urandom", "rb");

    if (f != NULL) {
        got = fread(p, 1, n, f);
        fclose(f);
    }
    if (got < n) {
        struct timespec ts;
        uint64_t x;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
            ts.tv_sec = ts.tv_nsec = 0;
        x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ ((uint64_t)getpid() << 40)
            ^ (uint64_t)(uintptr_t)&state;
        for (; got < n; got++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17; /* xorshift64 */
            p[got] = (unsigned char)(x >> 24);
        }
    }
}

static void forked(void)
{
    state.started = 0;
}

static void start(void)
{
    unsigned char r[9];

    if (!state.at_fork)
        state.at_fork = pthread_atfork(NULL, NULL, forked) == 0;
    random_bytes(r, sizeof r);
    state.started = state.at_fork; /* without the handler: a new node part per id */
    state.node[0] = r[0]; state.node[1] = r[1]; state.node[2] = r[2];
    state.node[3] = r[3]; state.node[4] = r[4]; state.node[5] = r[5];
    state.seq = (uint32_t)r[6] << 16 | (uint32_t)r[7] << 8 | r[8];
    state.last_ms = 0;
}

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void espipe_time_id(char *out)
{
    unsigned char u[15];
    uint32_t seq;
    int64_t ts;
    int i, o;

    if (!state.started)
        start();
    seq = state.seq = (state.seq + 1) & 0xffffff;
    ts = now_ms();
    if (ts < state.last_ms)
        ts = state.last_ms;
    if (seq == 0)
        ts = (ts > state.last_ms ? ts : state.last_ms) + 1;
    state.last_ms = ts;

    /* Elasticsearch's byte order: the fast-changing bytes first (sorting
    ** spreads), then the slow ones (shared prefixes compress). */
    u[0] = (unsigned char)seq;
    u[1] = (unsigned char)(seq >> 16);
    u[2] = (unsigned char)(ts >> 16);
    u[3] = (unsigned char)(ts >> 24);
    u[4] = (unsigned char)(ts >> 32);
    u[5] = (unsigned char)(ts >> 40);
    for (i = 0; i < 6; i++)
        u[6 + i] = state.node[i];
    u[12] = (unsigned char)(ts >> 8);
    u[13] = (unsigned char)(seq >> 8);
    u[14] = (unsigned char)ts;

    for (i = 0, o = 0; i < 15; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16 | (uint32_t)u[i + 1] << 8 | u[i + 2];

        out[o++] = B64URL[(v >> 18) & 63];
        out[o++] = B64URL[(v >> 12) & 63];
        out[o++] = B64URL[(v >> 6) & 63];
        out[o++] = B64URL[v & 63];
    }
}
