/*
 * Prints every size, offset, field type and constant of include/guichet.h,
 * one fact per line, for tests/c_interop.rs to compare with src/wire.rs.
 * Lines are "KIND NAME VALUE...", in no particular order.
 */
#include <stdint.h>
#include <stdio.h>

#include "guichet.h"

/* The wire type of a field: size and signedness, as Rust names them.
 * `long` is int64_t on LP64 Linux, so mtype reads "i64" like Rust's c_long. */
#define WIRE_TYPE(x)                                                                   \
    _Generic((x), uint16_t: "u16", uint32_t: "u32", uint64_t: "u64", int64_t: "i64", \
             default: "other")

#define FIELD(S, F)                                                                  \
    printf("field %s.%s %zu %zu %s\n", #S, #F, offsetof(struct guichet_##S, F),     \
           sizeof(((struct guichet_##S *)0)->F), WIRE_TYPE(((struct guichet_##S *)0)->F))

#define CONST_U(NAME) printf("const %s %llu\n", #NAME, (unsigned long long)GUICHET_##NAME)
#define CONST_I(NAME) printf("const %s %lld\n", #NAME, (long long)GUICHET_##NAME)

static const char *or_null(const char *s)
{
    return s != NULL ? s : "(null)";
}

#define STATUS(NAME)                                                                   \
    printf("status %s %u %s\n", #NAME, (unsigned)GUICHET_STATUS_##NAME,                \
           or_null(guichet_status_name(GUICHET_STATUS_##NAME)))
#define OP(NAME)                                                                       \
    printf("op %s %u %s\n", #NAME, (unsigned)GUICHET_OP_##NAME,                        \
           or_null(guichet_op_name(GUICHET_OP_##NAME)))

int main(void)
{
    printf("sizeof long %zu\n", sizeof(long));
    printf("sizeof request %zu\n", sizeof(struct guichet_request));
    printf("sizeof reply %zu\n", sizeof(struct guichet_reply));

    FIELD(request, mtype);
    FIELD(request, magic);
    FIELD(request, version);
    FIELD(request, op);
    FIELD(request, reply_to);
    FIELD(request, request_id);
    FIELD(request, booking_id);
    FIELD(request, event_id);
    FIELD(request, quantity);

    FIELD(reply, mtype);
    FIELD(reply, magic);
    FIELD(reply, version);
    FIELD(reply, status);
    FIELD(reply, request_id);
    FIELD(reply, booking_id);
    FIELD(reply, event_id);
    FIELD(reply, quantity);
    FIELD(reply, remaining);
    FIELD(reply, capacity);

    CONST_U(MAGIC);
    CONST_U(VERSION);
    CONST_I(REQUEST_MTYPE);
    CONST_I(MIN_REPLY_TO);
    CONST_U(BODY_SIZE);
    CONST_U(MESSAGE_SIZE);
    CONST_U(ANSWERABLE_PREFIX);
    CONST_U(SERVER_BOOKING_BIT);
    CONST_U(STATUS_COUNT);

    OP(QUERY);
    OP(RESERVE);
    OP(CANCEL);
    OP(HOLD);
    OP(CONFIRM);
    OP(HOLD);
    OP(CONFIRM);

    STATUS(OK);
    STATUS(SOLD_OUT);
    STATUS(UNKNOWN_EVENT);
    STATUS(UNKNOWN_BOOKING);
    STATUS(BOOKING_CONFLICT);
    STATUS(BOOKING_CANCELLED);
    STATUS(INVALID_REQUEST);
    STATUS(BAD_MESSAGE);
    STATUS(LEDGER_FULL);
    STATUS(SHUTTING_DOWN);
    STATUS(HOLD_EXPIRED);

    /* The helpers name exactly the codes v1 defines, and nothing else. */
    unsigned statuses = 0, ops = 0;
    for (uint32_t code = 0; code <= UINT16_MAX; code++) {
        statuses += guichet_status_name((uint16_t)code) != NULL;
        ops += guichet_op_name((uint16_t)code) != NULL;
    }
    printf("named statuses %u\n", statuses);
    printf("named ops %u\n", ops);
    return 0;
}
