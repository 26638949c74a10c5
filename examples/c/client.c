/*
 * A minimal guichet client in C, using only include/guichet.h and libc.
 *
 *   cc -std=c11 -Wall -Wextra -Werror -Iinclude -o client examples/c/client.c
 *
 *   client [-t MILLISECONDS] KEY query EVENT
 *   client [-t MILLISECONDS] KEY reserve EVENT SEATS [BOOKING_ID]
 *   client [-t MILLISECONDS] KEY cancel BOOKING_ID
 *   client [-t MILLISECONDS] KEY hold EVENT SEATS [BOOKING_ID]
 *   client [-t MILLISECONDS] KEY confirm BOOKING_ID
 *
 * KEY is the server's System V queue key, in hex (0x...) or decimal; it must
 * name an existing queue (the client never creates one). EVENT and SEATS are
 * decimal; BOOKING_ID is hex (0x...) or decimal. Numbers are only checked to
 * fit their wire field: the server judges the protocol's rules (event 0,
 * 0 seats... are answered INVALID_REQUEST).
 *
 * Prints the reply as one line:
 *   status=OK booking_id=0x8000000000000001 event_id=1 quantity=2 remaining=98 capacity=100 request_id=...
 * Exit status: 0 on OK, 1 on any other status, 2 on a usage, transport or
 * protocol error (message on stderr). It gives up after -t milliseconds
 * (default 5000), so a dead server never hangs it.
 */
#define _XOPEN_SOURCE 700 /* msgget/msgsnd/msgrcv (XSI), clock_gettime, nanosleep */

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "guichet.h"

enum { EXIT_STATUS_OK = 0, EXIT_STATUS_NOT_OK = 1, EXIT_ERROR = 2 };

/* How long to sleep between two IPC_NOWAIT attempts. */
#define POLL_INTERVAL_NS 5000000L /* 5 ms */
#define DEFAULT_TIMEOUT_MS 5000UL

static const char *progname = "client";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-t MILLISECONDS] KEY query EVENT\n"
            "       %s [-t MILLISECONDS] KEY reserve EVENT SEATS [BOOKING_ID]\n"
            "       %s [-t MILLISECONDS] KEY cancel BOOKING_ID\n"
            "       %s [-t MILLISECONDS] KEY hold EVENT SEATS [BOOKING_ID]\n"
            "       %s [-t MILLISECONDS] KEY confirm BOOKING_ID\n"
            "KEY and BOOKING_ID: hex (0x...) or decimal; EVENT, SEATS: decimal.\n"
            "-t: give up after this many milliseconds (default %lu).\n"
            "Exit status: 0 OK, 1 another status, 2 usage or transport error.\n",
            progname, progname, progname, progname, progname, DEFAULT_TIMEOUT_MS);
}

static int usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "%s: %s: '%s' (see --help)\n", progname, what, arg);
    return EXIT_ERROR;
}

/*
 * Parses an unsigned number in [0, max]: "0x..."/"0X..." in hex when
 * allow_hex, else decimal digits only. No sign, no spaces, no trailing junk.
 * Returns 0 on success, -1 otherwise.
 */
static int parse_u64(const char *s, int allow_hex, uint64_t max, uint64_t *out)
{
    int base = 10;
    const char *digits = s;
    if (allow_hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        digits = s + 2;
    }
    /* strtoull accepts leading spaces, a sign and (base 16) a second "0x":
     * insist on a digit first. */
    if (base == 10 ? !(digits[0] >= '0' && digits[0] <= '9')
                   : !((digits[0] >= '0' && digits[0] <= '9') ||
                       (digits[0] >= 'a' && digits[0] <= 'f') ||
                       (digits[0] >= 'A' && digits[0] <= 'F'))) {
        return -1;
    }
    if (base == 16 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X')) {
        return -1;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(digits, &end, base);
    if (errno != 0 || end == digits || *end != '\0' || v > max) {
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void nap(void)
{
    struct timespec ts = {0, POLL_INTERVAL_NS};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A request id unlikely to repeat: wall-clock nanoseconds and pid, mixed
 * (splitmix64 finaliser). Only needs to tell this request's reply apart
 * from a stale one left behind for the same reply_to. */
static uint64_t make_request_id(void)
{
    struct timespec ts = {0, 0};
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)getpid() << 40;
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0] != NULL && argv[0][0] != '\0') {
        progname = argv[0];
    }

    int i = 1;
    uint64_t timeout_ms = DEFAULT_TIMEOUT_MS;
    if (i < argc && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
        usage(stdout);
        return EXIT_STATUS_OK;
    }
    if (i < argc && strcmp(argv[i], "-t") == 0) {
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: -t needs a number of milliseconds (see --help)\n", progname);
            return EXIT_ERROR;
        }
        /* At most a day: keeps the nanosecond deadline far from overflow. */
        if (parse_u64(argv[i + 1], 0, UINT64_C(86400000), &timeout_ms) != 0) {
            return usage_error("bad timeout (milliseconds, at most 86400000)", argv[i + 1]);
        }
        i += 2;
    }
    if (argc - i < 3) {
        usage(stderr);
        return EXIT_ERROR;
    }

    /* KEY: key_t is a 32-bit int; ipcs(1) shows keys as 32-bit hex, so
     * accept 0 .. 0xffffffff. 0 is IPC_PRIVATE, which msgget would turn
     * into a new, private queue: never a server's. */
    uint64_t key64 = 0;
    if (parse_u64(argv[i], 1, UINT32_MAX, &key64) != 0 || key64 == 0) {
        return usage_error("bad KEY (hex 0x... or decimal, 1 .. 0xffffffff)", argv[i]);
    }
    key_t key = (key_t)(int32_t)(uint32_t)key64;
    const char *cmd = argv[i + 1];
    char **args = argv + i + 2;
    int nargs = argc - i - 2;

    struct guichet_request rq;
    memset(&rq, 0, sizeof rq);
    rq.mtype = GUICHET_REQUEST_MTYPE;
    rq.magic = GUICHET_MAGIC;
    rq.version = GUICHET_VERSION;
    rq.reply_to = ((long)getpid() << 32) | 1; /* (pid << 32) | slot 1 */
    rq.request_id = make_request_id();

    uint64_t v = 0;
    if (strcmp(cmd, "query") == 0 && nargs == 1) {
        rq.op = GUICHET_OP_QUERY;
        if (parse_u64(args[0], 0, UINT32_MAX, &v) != 0) {
            return usage_error("bad EVENT (decimal, 32 bits)", args[0]);
        }
        rq.event_id = (uint32_t)v;
    } else if ((strcmp(cmd, "reserve") == 0 || strcmp(cmd, "hold") == 0)
               && (nargs == 2 || nargs == 3)) {
        rq.op = strcmp(cmd, "hold") == 0 ? GUICHET_OP_HOLD : GUICHET_OP_RESERVE;
        if (parse_u64(args[0], 0, UINT32_MAX, &v) != 0) {
            return usage_error("bad EVENT (decimal, 32 bits)", args[0]);
        }
        rq.event_id = (uint32_t)v;
        if (parse_u64(args[1], 0, UINT32_MAX, &v) != 0) {
            return usage_error("bad SEATS (decimal, 32 bits)", args[1]);
        }
        rq.quantity = (uint32_t)v;
        if (nargs == 3) {
            if (parse_u64(args[2], 1, UINT64_MAX, &v) != 0) {
                return usage_error("bad BOOKING_ID (hex 0x... or decimal, 64 bits)", args[2]);
            }
            rq.booking_id = v;
        }
    } else if ((strcmp(cmd, "cancel") == 0 || strcmp(cmd, "confirm") == 0) && nargs == 1) {
        rq.op = strcmp(cmd, "confirm") == 0 ? GUICHET_OP_CONFIRM : GUICHET_OP_CANCEL;
        if (parse_u64(args[0], 1, UINT64_MAX, &v) != 0) {
            return usage_error("bad BOOKING_ID (hex 0x... or decimal, 64 bits)", args[0]);
        }
        rq.booking_id = v;
    } else {
        return usage_error("unknown command or wrong number of arguments", cmd);
    }

    /* Open the server's queue; never create one. */
    int qid = msgget(key, 0);
    if (qid < 0) {
        int e = errno;
        fprintf(stderr, "%s: msgget(key 0x%08" PRIx32 "): %s%s\n", progname, (uint32_t)key64,
                strerror(e), e == ENOENT ? " (is the server running?)" : "");
        return EXIT_ERROR;
    }

    const uint64_t deadline = monotonic_ns() + timeout_ms * 1000000u;

    /* Send. IPC_NOWAIT and retry: a full queue of a dead server must not
     * block us forever. msgsz is the body only, mtype excluded. */
    for (;;) {
        if (msgsnd(qid, &rq, GUICHET_BODY_SIZE, IPC_NOWAIT) == 0) {
            break;
        }
        int e = errno;
        if (e == EINTR) {
            continue;
        }
        if (e != EAGAIN) {
            fprintf(stderr, "%s: msgsnd: %s\n", progname, strerror(e));
            return EXIT_ERROR;
        }
        if (monotonic_ns() >= deadline) {
            fprintf(stderr, "%s: msgsnd: queue full for %" PRIu64 " ms: %s\n", progname,
                    timeout_ms, strerror(e));
            return EXIT_ERROR;
        }
        nap();
    }

    /* Receive with msgtyp = reply_to. The buffer is larger than a valid
     * body and MSG_NOERROR truncates anything longer still, so a malformed
     * reply is seen (and reported) rather than left in the queue. */
    struct {
        long mtype;
        unsigned char body[GUICHET_BODY_SIZE + 8];
    } in;
    struct guichet_reply rp;
    for (;;) {
        ssize_t n = msgrcv(qid, &in, sizeof in.body, rq.reply_to, IPC_NOWAIT | MSG_NOERROR);
        if (n < 0) {
            int e = errno;
            if (e == EINTR) {
                continue;
            }
            if (e != ENOMSG) {
                fprintf(stderr, "%s: msgrcv: %s%s\n", progname, strerror(e),
                        e == EIDRM || e == EINVAL ? " (queue removed?)" : "");
                return EXIT_ERROR;
            }
            if (monotonic_ns() >= deadline) {
                fprintf(stderr, "%s: no reply within %" PRIu64 " ms (is the server running?): %s\n",
                        progname, timeout_ms, strerror(e));
                return EXIT_ERROR;
            }
            nap();
            continue;
        }
        if (n != GUICHET_BODY_SIZE) {
            fprintf(stderr, "%s: bad reply: body is %zd bytes, expected %d\n", progname, n,
                    GUICHET_BODY_SIZE);
            return EXIT_ERROR;
        }
        rp.mtype = in.mtype;
        memcpy((unsigned char *)&rp + sizeof rp.mtype, in.body, GUICHET_BODY_SIZE);
        if (rp.magic != GUICHET_MAGIC) {
            fprintf(stderr, "%s: bad reply: magic 0x%08" PRIx32 ", expected 0x%08" PRIx32 "\n",
                    progname, rp.magic, GUICHET_MAGIC);
            return EXIT_ERROR;
        }
        if (rp.version != GUICHET_VERSION) {
            fprintf(stderr, "%s: bad reply: version %u, expected %u\n", progname,
                    (unsigned)rp.version, (unsigned)GUICHET_VERSION);
            return EXIT_ERROR;
        }
        if (rp.request_id != rq.request_id) {
            /* A reply left for an earlier process that had our pid: drop it
             * and keep waiting for ours. */
            fprintf(stderr, "%s: dropping a stale reply (request_id %" PRIu64 ")\n", progname,
                    rp.request_id);
            continue;
        }
        break;
    }

    const char *name = guichet_status_name(rp.status);
    if (name == NULL) {
        fprintf(stderr, "%s: bad reply: status %u is not a v1 status\n", progname,
                (unsigned)rp.status);
        return EXIT_ERROR;
    }
    printf("status=%s booking_id=0x%" PRIx64 " event_id=%" PRIu32 " quantity=%" PRIu32
           " remaining=%" PRIu32 " capacity=%" PRIu32 " request_id=%" PRIu64 "\n",
           name, rp.booking_id, rp.event_id, rp.quantity, rp.remaining, rp.capacity,
           rp.request_id);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "%s: stdout: %s\n", progname, strerror(errno));
        return EXIT_ERROR;
    }
    return rp.status == GUICHET_STATUS_OK ? EXIT_STATUS_OK : EXIT_STATUS_NOT_OK;
}
