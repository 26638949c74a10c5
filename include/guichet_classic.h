/*
 * guichet_classic.h - the course's classic protocol, as guichet serves it
 * (`guichet serve --classic-key 12345`). CLASSIC.md is normative; this
 * header, src/classic/layout.rs and that page agree to the byte (asserted
 * below and by the crate's tests/classic_c.rs).
 *
 * The course's clients declare these structs themselves and need no
 * header: this one is for new C code and for checking old code against.
 *
 *   int q = msgget(GUICHET_CLASSIC_COURSE_KEY, 0666);   // no IPC_CREAT
 *   struct guichet_classic_request rq = {0};
 *   rq.mtype = GUICHET_CLASSIC_MTYPE_RESERVE;
 *   rq.id_spec = 0;        // events are numbered from 0
 *   rq.nb_places = 2;
 *   msgsnd(q, &rq, GUICHET_CLASSIC_REQUEST_SIZE, 0);   // 16: mtype excluded
 *   struct guichet_classic_reply rp;
 *   msgrcv(q, &rp, GUICHET_CLASSIC_REPLY_SIZE, GUICHET_CLASSIC_MTYPE_RESERVE_REPLY, 0);
 *   puts(rp.texte);        // NUL-terminated UTF-8, zero-filled after
 *
 * One limit: replies go to fixed mtypes, so concurrent classic clients can
 * receive each other's replies (guichet answers in arrival order, which
 * keeps each mtype first-in first-out). Use wire v1 (guichet.h) for new
 * clients.
 *
 * Needs C11 (or C++11); LP64 Linux only (`long`, the mtype, is 8 bytes).
 */
#ifndef GUICHET_CLASSIC_H
#define GUICHET_CLASSIC_H

#ifdef __cplusplus
#include <climits>
#include <cstddef>
#else
#include <limits.h>
#include <stddef.h>
#endif

#if !defined(__linux__)
#error "the classic protocol targets Linux only (msgsnd(2)/msgrcv(2) semantics)"
#endif
#if LONG_MAX != 9223372036854775807L || !(defined(__LP64__) || defined(_LP64))
#error "the classic protocol needs an LP64 target: `long` (the SysV mtype) must be 8 bytes"
#endif

#if defined(__cplusplus)
#define GUICHET_CLASSIC_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define GUICHET_CLASSIC_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

/* The literal key of the course's clients (0x3039), not an ftok(3) key. */
#define GUICHET_CLASSIC_COURSE_KEY 12345
/* Request mtypes. The server receives with msgtyp = -9. */
#define GUICHET_CLASSIC_MTYPE_LIST 1L
#define GUICHET_CLASSIC_MTYPE_RESERVE 2L
#define GUICHET_CLASSIC_MTYPE_QUIT 5L /* consumed and counted, never obeyed */
/* Reply mtypes. */
#define GUICHET_CLASSIC_MTYPE_LIST_REPLY 10L
#define GUICHET_CLASSIC_MTYPE_RESERVE_REPLY 11L
/* msgsz of a request (mtype excluded) and of a reply. */
#define GUICHET_CLASSIC_REQUEST_SIZE 16
#define GUICHET_CLASSIC_REPLY_SIZE 512

/* A request: sizeof 24, msgsz 16 (the 4 bytes of padding are ignored). */
struct guichet_classic_request {
    long mtype;    /* 1 list, 2 reserve, 5 quit */
    int action;    /* ignored: the mtype decides */
    int id_spec;   /* event, numbered from 0 */
    int nb_places; /* seats wanted */
};

/* A reply: sizeof 520, msgsz 512. */
struct guichet_classic_reply {
    long mtype;     /* 10 listing, 11 reservation */
    char texte[GUICHET_CLASSIC_REPLY_SIZE];
};

GUICHET_CLASSIC_STATIC_ASSERT(sizeof(long) == 8, "long must be 8 bytes");
GUICHET_CLASSIC_STATIC_ASSERT(sizeof(struct guichet_classic_request) == 24,
                              "classic request is 24 bytes");
GUICHET_CLASSIC_STATIC_ASSERT(offsetof(struct guichet_classic_request, action) == 8,
                              "action at 8");
GUICHET_CLASSIC_STATIC_ASSERT(offsetof(struct guichet_classic_request, id_spec) == 12,
                              "id_spec at 12");
GUICHET_CLASSIC_STATIC_ASSERT(offsetof(struct guichet_classic_request, nb_places) == 16,
                              "nb_places at 16");
GUICHET_CLASSIC_STATIC_ASSERT(sizeof(struct guichet_classic_reply) == 520,
                              "classic reply is 520 bytes");
GUICHET_CLASSIC_STATIC_ASSERT(offsetof(struct guichet_classic_reply, texte) == 8,
                              "texte at 8");

#endif /* GUICHET_CLASSIC_H */
