/*
 * guichet.h - wire protocol v1 of guichet, for C and C++ clients.
 *
 * The structs below are whole System V messages, `mtype` first, exactly as
 * msgsnd(2) reads them and msgrcv(2) fills them. PROTOCOL.md is normative;
 * this header, the Rust types in src/wire.rs and that page agree to the byte
 * (the offsets are asserted below and by the crate's tests/c_interop.rs).
 *
 *   struct guichet_request rq = {0};
 *   rq.mtype = GUICHET_REQUEST_MTYPE;
 *   rq.magic = GUICHET_MAGIC;
 *   ...
 *   msgsnd(qid, &rq, GUICHET_BODY_SIZE, 0);           // msgsz excludes mtype
 *   struct guichet_reply rp;
 *   msgrcv(qid, &rp, GUICHET_BODY_SIZE, rq.reply_to, 0);
 *
 * Byte order is the host's: a queue never leaves its host. Only 64-bit Linux
 * (LP64: `long` is 8 bytes) is supported; other targets fail to compile.
 *
 * Needs C11 (or C++11 and later); uses only <stdint.h>, <stddef.h> and
 * <limits.h>. Defines no object and no function with external linkage.
 */
#ifndef GUICHET_H
#define GUICHET_H

#ifdef __cplusplus
#include <climits>
#include <cstddef>
#include <cstdint>
#else
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#endif

#if !defined(__linux__)
#error "guichet wire v1 targets Linux only (msgsnd(2)/msgrcv(2) semantics)"
#endif
#if LONG_MAX != 9223372036854775807L || !(defined(__LP64__) || defined(_LP64))
#error "guichet wire v1 needs an LP64 target: `long` (the SysV mtype) must be 8 bytes"
#endif

#if defined(__cplusplus)
#define GUICHET_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define GUICHET_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* ---- constants --------------------------------------------------------- */

/* `magic` of every v1 message, 0x47434854 ("GCHT" as a number; stored as the
   bytes "THCG" on little-endian hosts, "GCHT" on big-endian ones). */
#define GUICHET_MAGIC UINT32_C(0x47434854)
/* `version` of every message of this protocol. */
#define GUICHET_VERSION UINT16_C(1)
/* `mtype` of every request; the server receives with msgtyp = 1. */
#define GUICHET_REQUEST_MTYPE 1L
/* Smallest `reply_to` a client may name (1 is the request type). By
 * convention reply_to = ((long)getpid() << 32) | slot. */
#define GUICHET_MIN_REPLY_TO 2L
/* The msgsz to pass to msgsnd(2)/msgrcv(2): the body, `mtype` EXCLUDED.
 * Every valid message in both directions has exactly this many bytes. */
#define GUICHET_BODY_SIZE 40
/* sizeof a whole message, `mtype` included. Never a msgsz. */
#define GUICHET_MESSAGE_SIZE 48
/* A malformed request is answered (BAD_MESSAGE) only if its body holds at
 * least this many bytes: through `request_id`. */
#define GUICHET_ANSWERABLE_PREFIX 24

/* Operation codes (`op` of a request). */
#define GUICHET_OP_QUERY UINT16_C(1)   /* read remaining/capacity of event_id */
#define GUICHET_OP_RESERVE UINT16_C(2) /* book quantity seats of event_id */
#define GUICHET_OP_CANCEL UINT16_C(3)  /* return every seat of booking_id */
#define GUICHET_OP_HOLD UINT16_C(4)    /* as RESERVE, held until confirmed, cancelled or expired */
#define GUICHET_OP_CONFIRM UINT16_C(5) /* make the held booking_id an ordinary booking */

/* Status codes (`status` of a reply). Nothing changed unless OK. */
#define GUICHET_STATUS_OK UINT16_C(0)                /* done */
#define GUICHET_STATUS_SOLD_OUT UINT16_C(1)          /* fewer than quantity seats remain */
#define GUICHET_STATUS_UNKNOWN_EVENT UINT16_C(2)     /* no event has this id */
#define GUICHET_STATUS_UNKNOWN_BOOKING UINT16_C(3)   /* no booking has this id */
#define GUICHET_STATUS_BOOKING_CONFLICT UINT16_C(4)  /* id names a booking of another event/quantity */
#define GUICHET_STATUS_BOOKING_CANCELLED UINT16_C(5) /* id names a cancelled booking */
#define GUICHET_STATUS_INVALID_REQUEST UINT16_C(6)   /* well-formed message breaks a field rule */
#define GUICHET_STATUS_BAD_MESSAGE UINT16_C(7)       /* wrong length, magic, version or op */
#define GUICHET_STATUS_LEDGER_FULL UINT16_C(8)       /* ledger holds its maximum of bookings */
#define GUICHET_STATUS_SHUTTING_DOWN UINT16_C(9)     /* server stopping; request not applied */
#define GUICHET_STATUS_HOLD_EXPIRED UINT16_C(10)     /* id names a hold that expired unconfirmed */
/* Number of status codes v1 defines: valid codes are 0 .. COUNT-1. */
#define GUICHET_STATUS_COUNT 11

/* Server-assigned booking ids have bit 63 set; a client-chosen booking_id
 * (RESERVE) must have it clear. */
#define GUICHET_SERVER_BOOKING_BIT UINT64_C(0x8000000000000000)

/* ---- messages ---------------------------------------------------------- */

/* A request: 48 bytes, of which msgsz = GUICHET_BODY_SIZE follow `mtype`.
 * Offsets count from the start of the message. No implicit padding.
 *
 *   op       must be set                      must be 0
 *   QUERY    event_id                         booking_id, quantity
 *   RESERVE  event_id, quantity >= 1;         -
 *            booking_id 0 (server picks) or a
 *            client-chosen id, bit 63 clear
 *   CANCEL   booking_id != 0                  event_id, quantity
 *   HOLD     as RESERVE                       -
 *   CONFIRM  booking_id != 0                  event_id, quantity
 *
 * HOLD takes seats until CONFIRM, CANCEL or the server's hold_ms passes;
 * after that CONFIRM, CANCEL or a retried HOLD answer HOLD_EXPIRED.
 * See PROTOCOL.md, Holds.
 */
struct guichet_request {
    long mtype;          /*  0: always GUICHET_REQUEST_MTYPE (1) */
    uint32_t magic;      /*  8: GUICHET_MAGIC */
    uint16_t version;    /* 12: GUICHET_VERSION */
    uint16_t op;         /* 14: GUICHET_OP_QUERY, _RESERVE, _CANCEL, _HOLD or _CONFIRM */
    int64_t reply_to;    /* 16: mtype of the reply, >= GUICHET_MIN_REPLY_TO */
    uint64_t request_id; /* 24: opaque, echoed unchanged in the reply */
    uint64_t booking_id; /* 32: CANCEL, CONFIRM: the booking; RESERVE, HOLD: 0 or client-chosen id */
    uint32_t event_id;   /* 40: QUERY, RESERVE, HOLD: the event (events are 1, 2, 3...) */
    uint32_t quantity;   /* 44: RESERVE, HOLD: seats to book, >= 1 */
};

/* A reply: 48 bytes, of which msgsz = GUICHET_BODY_SIZE follow `mtype`.
 * `remaining` and `capacity` are filled whenever the event is known (every
 * status about an existing event, SOLD_OUT included), else 0. */
struct guichet_reply {
    long mtype;          /*  0: the request's reply_to */
    uint32_t magic;      /*  8: GUICHET_MAGIC */
    uint16_t version;    /* 12: GUICHET_VERSION */
    uint16_t status;     /* 14: a GUICHET_STATUS_* code */
    uint64_t request_id; /* 16: the request's request_id, unchanged */
    uint64_t booking_id; /* 24: the booking concerned, else 0 */
    uint32_t event_id;   /* 32: the event concerned, else 0 */
    uint32_t quantity;   /* 36: RESERVE, CANCEL, HOLD or CONFIRM answered OK: its seats; else 0 */
    uint32_t remaining;  /* 40: seats left for event_id after the request */
    uint32_t capacity;   /* 44: seats event_id has in all */
};

/* The layout is the protocol: a change here is a wire break, so it must not
 * compile. */
GUICHET_STATIC_ASSERT(sizeof(long) == 8, "guichet: long must be 8 bytes (LP64)");
GUICHET_STATIC_ASSERT(sizeof(struct guichet_request) == GUICHET_MESSAGE_SIZE,
                      "guichet: request is 48 bytes");
GUICHET_STATIC_ASSERT(sizeof(struct guichet_reply) == GUICHET_MESSAGE_SIZE,
                      "guichet: reply is 48 bytes");
GUICHET_STATIC_ASSERT(GUICHET_MESSAGE_SIZE == sizeof(long) + GUICHET_BODY_SIZE,
                      "guichet: msgsz excludes mtype");

GUICHET_STATIC_ASSERT(offsetof(struct guichet_request, mtype) == 0, "guichet: request.mtype");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_request, magic) == 8, "guichet: request.magic");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_request, version) == 12, "guichet: request.version");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_request, op) == 14, "guichet: request.op");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_request, reply_to) == 16, "guichet: request.reply_to");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_request, request_id) == 24,
                      "guichet: request.request_id");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_request, booking_id) == 32,
                      "guichet: request.booking_id");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_request, event_id) == 40, "guichet: request.event_id");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_request, quantity) == 44, "guichet: request.quantity");

GUICHET_STATIC_ASSERT(offsetof(struct guichet_reply, mtype) == 0, "guichet: reply.mtype");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_reply, magic) == 8, "guichet: reply.magic");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_reply, version) == 12, "guichet: reply.version");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_reply, status) == 14, "guichet: reply.status");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_reply, request_id) == 16, "guichet: reply.request_id");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_reply, booking_id) == 24, "guichet: reply.booking_id");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_reply, event_id) == 32, "guichet: reply.event_id");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_reply, quantity) == 36, "guichet: reply.quantity");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_reply, remaining) == 40, "guichet: reply.remaining");
GUICHET_STATIC_ASSERT(offsetof(struct guichet_reply, capacity) == 44, "guichet: reply.capacity");

/* The reply tag sits in the answerable prefix of a request body. */
GUICHET_STATIC_ASSERT(offsetof(struct guichet_request, request_id) + sizeof(uint64_t) ==
                          sizeof(long) + GUICHET_ANSWERABLE_PREFIX,
                      "guichet: request_id ends the answerable prefix");

/* ---- helpers ----------------------------------------------------------- */

/* The protocol's upper-case name of a status code ("OK", "SOLD_OUT", ...),
 * or a null pointer for a code v1 does not define. */
static inline const char *guichet_status_name(uint16_t status)
{
    switch (status) {
    case GUICHET_STATUS_OK: return "OK";
    case GUICHET_STATUS_SOLD_OUT: return "SOLD_OUT";
    case GUICHET_STATUS_UNKNOWN_EVENT: return "UNKNOWN_EVENT";
    case GUICHET_STATUS_UNKNOWN_BOOKING: return "UNKNOWN_BOOKING";
    case GUICHET_STATUS_BOOKING_CONFLICT: return "BOOKING_CONFLICT";
    case GUICHET_STATUS_BOOKING_CANCELLED: return "BOOKING_CANCELLED";
    case GUICHET_STATUS_INVALID_REQUEST: return "INVALID_REQUEST";
    case GUICHET_STATUS_BAD_MESSAGE: return "BAD_MESSAGE";
    case GUICHET_STATUS_LEDGER_FULL: return "LEDGER_FULL";
    case GUICHET_STATUS_SHUTTING_DOWN: return "SHUTTING_DOWN";
    case GUICHET_STATUS_HOLD_EXPIRED: return "HOLD_EXPIRED";
    default: return NULL;
    }
}

/* The protocol's upper-case name of an op code ("QUERY", "RESERVE",
 * "CANCEL"), or a null pointer for a code v1 does not define. */
static inline const char *guichet_op_name(uint16_t op)
{
    switch (op) {
    case GUICHET_OP_QUERY: return "QUERY";
    case GUICHET_OP_RESERVE: return "RESERVE";
    case GUICHET_OP_CANCEL: return "CANCEL";
    case GUICHET_OP_HOLD: return "HOLD";
    case GUICHET_OP_CONFIRM: return "CONFIRM";
    default: return NULL;
    }
}

#endif /* GUICHET_H */
