/*
 * client.c - a C client of guichet, built from include/guichet.h alone, as
 * the yardstick for the library's client (`guichet bench --compare-clients`).
 *
 *   client QUEUE_ID block|spin THREADS WARMUP_MS DURATION_MS reserve|query
 *
 * THREADS threads each make one call at a time (RESERVE 1 seat of event 1,
 * or QUERY event 1) until the end: a warm-up, then DURATION_MS measured.
 * `block` waits for each reply in a blocking msgrcv(2); `spin` polls with
 * IPC_NOWAIT and sched_yield(2). Prints "OPS ERRORS" (the measured calls
 * answered OK, and the others) on stdout. No timeout: the bench kills a
 * client that outlives its run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <time.h>
#include <unistd.h>

#include "guichet.h"

static int qid;
static int spin;
static uint16_t op;
static uint64_t measure_from_ns, end_ns;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct result {
    long index;
    uint64_t ops, errors;
};

static int receive(struct guichet_reply *rp, long tag)
{
    for (;;) {
        ssize_t n = msgrcv(qid, rp, GUICHET_BODY_SIZE, tag, spin ? IPC_NOWAIT : 0);
        if (n >= 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (spin && errno == ENOMSG) {
            sched_yield();
            continue;
        }
        return -1;
    }
}

static void *run(void *arg)
{
    struct result *r = arg;
    long tag = ((long)getpid() << 32) | (r->index + 1);
    uint64_t request_id = 0;
    for (;;) {
        uint64_t start = now_ns();
        if (start >= end_ns)
            return NULL;
        struct guichet_request rq;
        memset(&rq, 0, sizeof rq);
        rq.mtype = GUICHET_REQUEST_MTYPE;
        rq.magic = GUICHET_MAGIC;
        rq.version = GUICHET_VERSION;
        rq.op = op;
        rq.reply_to = tag;
        rq.request_id = ++request_id;
        rq.event_id = 1;
        rq.quantity = op == GUICHET_OP_RESERVE ? 1 : 0;
        struct guichet_reply rp;
        int ok = msgsnd(qid, &rq, GUICHET_BODY_SIZE, 0) == 0 && receive(&rp, tag) == 0 &&
                 rp.request_id == rq.request_id && rp.status == GUICHET_STATUS_OK;
        if (start < measure_from_ns)
            continue;
        if (ok)
            r->ops++;
        else
            r->errors++;
    }
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s QUEUE_ID block|spin THREADS WARMUP_MS DURATION_MS reserve|query\n",
                argv[0]);
        return 2;
    }
    qid = atoi(argv[1]);
    spin = strcmp(argv[2], "spin") == 0;
    long threads = atol(argv[3]);
    uint64_t warmup_ms = strtoull(argv[4], NULL, 10), duration_ms = strtoull(argv[5], NULL, 10);
    op = strcmp(argv[6], "query") == 0 ? GUICHET_OP_QUERY : GUICHET_OP_RESERVE;
    if (threads < 1 || threads > 256)
        return 2;
    struct result results[256];
    pthread_t handles[256];
    measure_from_ns = now_ns() + warmup_ms * 1000000u;
    end_ns = measure_from_ns + duration_ms * 1000000u;
    for (long i = 0; i < threads; i++) {
        results[i] = (struct result){.index = i};
        if (pthread_create(&handles[i], NULL, run, &results[i]) != 0)
            return 1;
    }
    uint64_t ops = 0, errors = 0;
    for (long i = 0; i < threads; i++) {
        pthread_join(handles[i], NULL);
        ops += results[i].ops;
        errors += results[i].errors;
    }
    printf("%llu %llu\n", (unsigned long long)ops, (unsigned long long)errors);
    return 0;
}
