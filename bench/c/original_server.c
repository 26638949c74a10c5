/*
 * original_server.c - the classic C exercise guichet grew from, kept as a
 * yardstick for `guichet bench` (mode "original-c").
 *
 * A while(1) loop msgrcv(2)s each request into a malloc'd buffer and hands
 * it to a detached pthread, which copies and frees it, checks and
 * decrements the stock under a mutex, and msgsnd(2)s the reply to the
 * client's mtype. It speaks wire v1 through include/guichet.h, so the same
 * Rust clients drive it. Only what the benchmark sends is handled: QUERY
 * and RESERVE of event 1; anything else is answered BAD_MESSAGE.
 *
 * Usage: original_server MSQID CAPACITY
 * The bench creates the (private) queue, starts this program, and kills it
 * afterwards; it also exits when the queue is removed.
 *
 * Build: cc -O2 -pthread -I include -o original_server original_server.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#include "guichet.h"

static int qid;
static pthread_mutex_t stock_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t capacity;
static uint32_t remaining;
static uint64_t last_booking;

static void *worker(void *arg)
{
    struct guichet_request rq;
    memcpy(&rq, arg, sizeof rq);
    free(arg);

    struct guichet_reply rp;
    memset(&rp, 0, sizeof rp);
    rp.mtype = rq.reply_to;
    rp.magic = GUICHET_MAGIC;
    rp.version = GUICHET_VERSION;
    rp.request_id = rq.request_id;

    if (rq.event_id != 1) {
        rp.status = (rq.op == GUICHET_OP_QUERY || rq.op == GUICHET_OP_RESERVE)
                        ? GUICHET_STATUS_UNKNOWN_EVENT
                        : GUICHET_STATUS_BAD_MESSAGE;
    } else if (rq.op == GUICHET_OP_QUERY) {
        pthread_mutex_lock(&stock_lock);
        rp.remaining = remaining;
        pthread_mutex_unlock(&stock_lock);
        rp.status = GUICHET_STATUS_OK;
        rp.event_id = 1;
        rp.capacity = capacity;
    } else if (rq.op == GUICHET_OP_RESERVE && rq.quantity >= 1) {
        pthread_mutex_lock(&stock_lock);
        if (remaining >= rq.quantity) {
            remaining -= rq.quantity;
            rp.status = GUICHET_STATUS_OK;
            rp.booking_id = GUICHET_SERVER_BOOKING_BIT | ++last_booking;
            rp.quantity = rq.quantity;
        } else {
            rp.status = GUICHET_STATUS_SOLD_OUT;
        }
        rp.remaining = remaining;
        pthread_mutex_unlock(&stock_lock);
        rp.event_id = 1;
        rp.capacity = capacity;
    } else {
        rp.status = GUICHET_STATUS_BAD_MESSAGE;
    }

    if (rp.mtype >= GUICHET_MIN_REPLY_TO)
        msgsnd(qid, &rp, GUICHET_BODY_SIZE, 0);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MSQID CAPACITY\n", argv[0]);
        return 2;
    }
    qid = atoi(argv[1]);
    capacity = remaining = (uint32_t)strtoul(argv[2], NULL, 10);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);

    while (1) {
        struct guichet_request *rq = malloc(sizeof *rq);
        if (rq == NULL) {
            perror("malloc");
            return 1;
        }
        ssize_t n = msgrcv(qid, rq, GUICHET_BODY_SIZE, GUICHET_REQUEST_MTYPE, 0);
        if (n < 0) {
            free(rq);
            if (errno == EINTR)
                continue;
            if (errno == EIDRM || errno == EINVAL)
                return 0; /* the queue was removed: done */
            perror("msgrcv");
            return 1;
        }
        pthread_t thread;
        if (pthread_create(&thread, &attr, worker, rq) != 0) {
            perror("pthread_create");
            free(rq);
        }
    }
}
