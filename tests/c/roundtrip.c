/*
 * Byte-level interop between include/guichet.h and the Rust codec, driven by
 * tests/c_interop.rs. Messages travel whole (48 bytes: mtype, then the
 * 40-byte body that msgsnd(2) sends), in host byte order.
 *
 *   roundtrip emit-request OP REPLY_TO REQUEST_ID BOOKING_ID EVENT_ID QUANTITY
 *   roundtrip emit-reply MTYPE STATUS REQUEST_ID BOOKING_ID EVENT_ID QUANTITY REMAINING CAPACITY
 *       fill a struct field by field (magic and version from the header's
 *       constants, a request's mtype = GUICHET_REQUEST_MTYPE) and write its
 *       48 bytes to stdout;
 *   roundtrip read-request < 48 bytes
 *   roundtrip read-reply < 48 bytes
 *       read 48 bytes into the struct and print its fields, name=value.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guichet.h"

static void die(const char *what)
{
    fprintf(stderr, "roundtrip: %s\n", what);
    exit(2);
}

static uint64_t arg_u(const char *s, uint64_t max)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max) {
        die("bad unsigned argument");
    }
    return (uint64_t)v;
}

static int64_t arg_i(const char *s)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        die("bad signed argument");
    }
    return (int64_t)v;
}

static void emit(const void *msg, size_t size)
{
    if (size != GUICHET_MESSAGE_SIZE || fwrite(msg, 1, size, stdout) != size ||
        fflush(stdout) != 0) {
        die("write failed");
    }
}

static void slurp(void *msg, size_t size)
{
    if (size != GUICHET_MESSAGE_SIZE || fread(msg, 1, size, stdin) != size) {
        die("short read: expected a 48-byte message");
    }
    if (getchar() != EOF) {
        die("more than 48 bytes on stdin");
    }
}

int main(int argc, char **argv)
{
    if (argc == 8 && strcmp(argv[1], "emit-request") == 0) {
        struct guichet_request rq;
        memset(&rq, 0xA5, sizeof rq); /* every byte must be written below */
        rq.mtype = GUICHET_REQUEST_MTYPE;
        rq.magic = GUICHET_MAGIC;
        rq.version = GUICHET_VERSION;
        rq.op = (uint16_t)arg_u(argv[2], UINT16_MAX);
        rq.reply_to = arg_i(argv[3]);
        rq.request_id = arg_u(argv[4], UINT64_MAX);
        rq.booking_id = arg_u(argv[5], UINT64_MAX);
        rq.event_id = (uint32_t)arg_u(argv[6], UINT32_MAX);
        rq.quantity = (uint32_t)arg_u(argv[7], UINT32_MAX);
        emit(&rq, sizeof rq);
    } else if (argc == 10 && strcmp(argv[1], "emit-reply") == 0) {
        struct guichet_reply rp;
        memset(&rp, 0xA5, sizeof rp);
        rp.mtype = (long)arg_i(argv[2]);
        rp.magic = GUICHET_MAGIC;
        rp.version = GUICHET_VERSION;
        rp.status = (uint16_t)arg_u(argv[3], UINT16_MAX);
        rp.request_id = arg_u(argv[4], UINT64_MAX);
        rp.booking_id = arg_u(argv[5], UINT64_MAX);
        rp.event_id = (uint32_t)arg_u(argv[6], UINT32_MAX);
        rp.quantity = (uint32_t)arg_u(argv[7], UINT32_MAX);
        rp.remaining = (uint32_t)arg_u(argv[8], UINT32_MAX);
        rp.capacity = (uint32_t)arg_u(argv[9], UINT32_MAX);
        emit(&rp, sizeof rp);
    } else if (argc == 2 && strcmp(argv[1], "read-request") == 0) {
        struct guichet_request rq;
        slurp(&rq, sizeof rq);
        const char *op = guichet_op_name(rq.op);
        printf("mtype=%ld magic=%" PRIu32 " version=%u op=%u op_name=%s reply_to=%" PRId64
               " request_id=%" PRIu64 " booking_id=%" PRIu64 " event_id=%" PRIu32
               " quantity=%" PRIu32 "\n",
               rq.mtype, rq.magic, (unsigned)rq.version, (unsigned)rq.op,
               op != NULL ? op : "(null)", rq.reply_to, rq.request_id, rq.booking_id,
               rq.event_id, rq.quantity);
    } else if (argc == 2 && strcmp(argv[1], "read-reply") == 0) {
        struct guichet_reply rp;
        slurp(&rp, sizeof rp);
        const char *status = guichet_status_name(rp.status);
        printf("mtype=%ld magic=%" PRIu32 " version=%u status=%u status_name=%s"
               " request_id=%" PRIu64 " booking_id=%" PRIu64 " event_id=%" PRIu32
               " quantity=%" PRIu32 " remaining=%" PRIu32 " capacity=%" PRIu32 "\n",
               rp.mtype, rp.magic, (unsigned)rp.version, (unsigned)rp.status,
               status != NULL ? status : "(null)", rp.request_id, rp.booking_id, rp.event_id,
               rp.quantity, rp.remaining, rp.capacity);
    } else {
        die("usage: see the comment at the top of tests/c/roundtrip.c");
    }
    return fflush(stdout) == 0 ? 0 : 2;
}
