#!/usr/bin/env python3
"""A minimal guichet client in Python 3, over System V message queues.

Needs the third-party ``sysv_ipc`` package (``pip install sysv_ipc``) to talk
to a server; encoding, decoding and ``--help`` work without it. Everything
else is the standard library: the wire bodies are packed with ``struct`` in
native byte order, without alignment padding (``=``), exactly as PROTOCOL.md
lays them out.

Usage (the same as examples/c/client.c)::

    client.py [-t MILLISECONDS] KEY query EVENT
    client.py [-t MILLISECONDS] KEY reserve EVENT SEATS [BOOKING_ID]
    client.py [-t MILLISECONDS] KEY cancel BOOKING_ID
    client.py [-t MILLISECONDS] KEY hold EVENT SEATS [BOOKING_ID]
    client.py [-t MILLISECONDS] KEY confirm BOOKING_ID

KEY is the server's queue key, hex (``0x...``) or decimal; it must name an
existing queue (the client never creates one). EVENT and SEATS are decimal,
BOOKING_ID hex or decimal. Numbers are only checked to fit their wire field:
the server judges the protocol's rules. Prints one line::

    status=OK booking_id=0x8000000000000001 event_id=1 quantity=2 remaining=98 capacity=100 request_id=...

and exits 0 on OK, 1 on any other status, 2 on a usage, transport or
protocol error (message on stderr). It gives up after ``-t`` milliseconds
(default 5000), so a dead server never hangs it.

sysv_ipc notes (checked against sysv_ipc 1.2.0):

- ``MessageQueue(key)`` with the default ``flags=0`` opens an existing
  queue and raises ``ExistentialError`` if there is none.
- ``send(body, block, type)`` sends ``body`` as the message text, so
  ``msgsz`` is ``len(body)`` (40): ``mtype`` is the separate ``type``.
- ``receive(block, type)`` calls ``msgrcv(2)`` with ``msgtyp = type`` and
  returns ``(body, type)``.
- Both parse ``type`` as a C ``int`` (32 bits), not a ``long``: the
  protocol's usual ``reply_to = (pid << 32) | slot`` does not fit and raises
  ``OverflowError``. This client therefore uses the protocol's other form,
  a plain pid (``reply_to = os.getpid()``, always below 2**31 on Linux).
- ``receive`` reads into a buffer of ``max_message_size`` bytes (default
  2048) without ``MSG_NOERROR``: a longer message would fail with E2BIG and
  stay queued. We keep the default, far above the 40-byte body, so a
  malformed reply is received and reported rather than left in the queue.
"""

import argparse
import os
import struct
import sys
import time

MAGIC = 0x47434854
VERSION = 1
REQUEST_MTYPE = 1
MIN_REPLY_TO = 2
BODY_SIZE = 40
OP_QUERY = 1
OP_RESERVE = 2
OP_CANCEL = 3
OP_HOLD = 4
OP_CONFIRM = 5
SERVER_BOOKING_BIT = 1 << 63
# Indexed by status code.
STATUS_NAMES = (
    "OK",
    "SOLD_OUT",
    "UNKNOWN_EVENT",
    "UNKNOWN_BOOKING",
    "BOOKING_CONFLICT",
    "BOOKING_CANCELLED",
    "INVALID_REQUEST",
    "BAD_MESSAGE",
    "LEDGER_FULL",
    "SHUTTING_DOWN",
    "HOLD_EXPIRED",
)
STATUS_OK = 0

# magic, version, op, reply_to, request_id, booking_id, event_id, quantity
REQUEST_FORMAT = "=IHHqQQII"
# magic, version, status, request_id, booking_id, event_id, quantity,
# remaining, capacity
REPLY_FORMAT = "=IHHQQIIII"
REPLY_FIELDS = (
    "magic",
    "version",
    "status",
    "request_id",
    "booking_id",
    "event_id",
    "quantity",
    "remaining",
    "capacity",
)
assert struct.calcsize(REQUEST_FORMAT) == BODY_SIZE
assert struct.calcsize(REPLY_FORMAT) == BODY_SIZE

DEFAULT_TIMEOUT_MS = 5000
POLL_INTERVAL_S = 0.005

EXIT_OK = 0
EXIT_NOT_OK = 1
EXIT_ERROR = 2


class ProtocolError(Exception):
    """A reply that is not a valid wire v1 reply body."""


def encode_request(op, reply_to, request_id, booking_id=0, event_id=0, quantity=0):
    """The 40-byte request body (``mtype`` excluded) to send with type 1."""
    return struct.pack(
        REQUEST_FORMAT,
        MAGIC,
        VERSION,
        op,
        reply_to,
        request_id,
        booking_id,
        event_id,
        quantity,
    )


def decode_reply(body):
    """The fields of a reply body, as a dict; ProtocolError if not valid v1."""
    if len(body) != BODY_SIZE:
        raise ProtocolError(f"body is {len(body)} bytes, expected {BODY_SIZE}")
    reply = dict(zip(REPLY_FIELDS, struct.unpack(REPLY_FORMAT, body)))
    if reply["magic"] != MAGIC:
        raise ProtocolError(f"magic {reply['magic']:#010x}, expected {MAGIC:#010x}")
    if reply["version"] != VERSION:
        raise ProtocolError(f"version {reply['version']}, expected {VERSION}")
    if reply["status"] >= len(STATUS_NAMES):
        raise ProtocolError(f"status {reply['status']} is not a v1 status")
    return reply


def format_reply(reply):
    """The one-line rendering both example clients print."""
    return (
        f"status={STATUS_NAMES[reply['status']]} booking_id={reply['booking_id']:#x}"
        f" event_id={reply['event_id']} quantity={reply['quantity']}"
        f" remaining={reply['remaining']} capacity={reply['capacity']}"
        f" request_id={reply['request_id']}"
    )


def _unsigned(bits, allow_hex, what):
    """An argparse type: an unsigned integer of at most `bits` bits."""

    def parse(text):
        digits, base = text, 10
        if allow_hex and text[:2] in ("0x", "0X"):
            digits, base = text[2:], 16
        alphabet = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
        if not digits or any(c not in alphabet for c in digits):
            raise argparse.ArgumentTypeError(f"bad {what}: {text!r}")
        value = int(digits, base)
        if value >= 1 << bits:
            raise argparse.ArgumentTypeError(f"bad {what}: {text!r} exceeds {bits} bits")
        return value

    return parse


def _key(text):
    key = _unsigned(32, True, "KEY (hex 0x... or decimal)")(text)
    if key == 0:
        # 0 is IPC_PRIVATE: never a server's queue.
        raise argparse.ArgumentTypeError("bad KEY: 0 is IPC_PRIVATE")
    return key


def _timeout(text):
    ms = _unsigned(64, False, "timeout (milliseconds)")(text)
    if ms > 86_400_000:
        raise argparse.ArgumentTypeError(f"bad timeout: {text!r} is over a day")
    return ms


def build_parser():
    parser = argparse.ArgumentParser(
        description="Send one request to a guichet server and print its reply.",
        epilog="Exit status: 0 OK, 1 another status, 2 usage or transport error.",
    )
    parser.add_argument(
        "-t",
        dest="timeout_ms",
        metavar="MILLISECONDS",
        type=_timeout,
        default=DEFAULT_TIMEOUT_MS,
        help=f"give up after this long (default {DEFAULT_TIMEOUT_MS})",
    )
    parser.add_argument("key", metavar="KEY", type=_key, help="queue key, hex (0x...) or decimal")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    event = _unsigned(32, False, "EVENT (decimal, 32 bits)")
    seats = _unsigned(32, False, "SEATS (decimal, 32 bits)")
    booking = _unsigned(64, True, "BOOKING_ID (hex 0x... or decimal, 64 bits)")

    query = sub.add_parser("query", help="remaining seats and capacity of EVENT")
    query.add_argument("event", metavar="EVENT", type=event)
    reserve = sub.add_parser("reserve", help="book SEATS seats of EVENT")
    reserve.add_argument("event", metavar="EVENT", type=event)
    reserve.add_argument("seats", metavar="SEATS", type=seats)
    reserve.add_argument(
        "booking",
        metavar="BOOKING_ID",
        type=booking,
        nargs="?",
        default=0,
        help="client-chosen id (bit 63 clear) making the request idempotent",
    )
    cancel = sub.add_parser("cancel", help="return every seat of BOOKING_ID")
    cancel.add_argument("booking", metavar="BOOKING_ID", type=booking)
    hold = sub.add_parser("hold", help="hold SEATS seats of EVENT until confirmed")
    hold.add_argument("event", metavar="EVENT", type=event)
    hold.add_argument("seats", metavar="SEATS", type=seats)
    hold.add_argument(
        "booking",
        metavar="BOOKING_ID",
        type=booking,
        nargs="?",
        default=0,
        help="client-chosen id (bit 63 clear) making the request idempotent",
    )
    confirm = sub.add_parser("confirm", help="book the held BOOKING_ID for good")
    confirm.add_argument("booking", metavar="BOOKING_ID", type=booking)
    return parser


def request_fields(args):
    """(op, booking_id, event_id, quantity) for parsed arguments."""
    if args.command == "query":
        return OP_QUERY, 0, args.event, 0
    if args.command == "reserve":
        return OP_RESERVE, args.booking, args.event, args.seats
    if args.command == "hold":
        return OP_HOLD, args.booking, args.event, args.seats
    if args.command == "confirm":
        return OP_CONFIRM, args.booking, 0, 0
    return OP_CANCEL, args.booking, 0, 0


def warn(message):
    print(f"{os.path.basename(sys.argv[0])}: {message}", file=sys.stderr)


def fail(message):
    warn(message)
    return EXIT_ERROR


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        import sysv_ipc
    except ImportError:
        return fail("the sysv_ipc package is missing: pip install sysv_ipc")

    # sysv_ipc takes `type` as a C int, so (pid << 32) | slot cannot be
    # used: send the plain pid, which the protocol also accepts.
    reply_to = os.getpid()
    if reply_to < MIN_REPLY_TO:
        return fail(f"pid {reply_to} cannot be a reply_to (must be >= {MIN_REPLY_TO})")
    request_id = int.from_bytes(os.urandom(8), "little")
    op, booking_id, event_id, quantity = request_fields(args)
    body = encode_request(op, reply_to, request_id, booking_id, event_id, quantity)

    try:
        queue = sysv_ipc.MessageQueue(args.key)
    except sysv_ipc.ExistentialError as e:
        return fail(f"no queue with key {args.key:#010x} (is the server running?): {e}")
    except (sysv_ipc.Error, OSError) as e:
        return fail(f"cannot open queue {args.key:#010x}: {e}")

    deadline = time.monotonic() + args.timeout_ms / 1000
    try:
        # Never block: a full queue or a dead server must not hang us.
        while True:
            try:
                queue.send(body, block=False, type=REQUEST_MTYPE)
                break
            except sysv_ipc.BusyError:
                if time.monotonic() >= deadline:
                    return fail(f"queue full for {args.timeout_ms} ms")
                time.sleep(POLL_INTERVAL_S)
        while True:
            try:
                raw, _mtype = queue.receive(block=False, type=reply_to)
            except sysv_ipc.BusyError:
                if time.monotonic() >= deadline:
                    return fail(f"no reply within {args.timeout_ms} ms (is the server running?)")
                time.sleep(POLL_INTERVAL_S)
                continue
            reply = decode_reply(raw)
            if reply["request_id"] != request_id:
                # Left for an earlier process that had our pid: drop it.
                warn(f"dropping a stale reply (request_id {reply['request_id']})")
                continue
            break
    except ProtocolError as e:
        return fail(f"bad reply: {e}")
    except (sysv_ipc.Error, OSError) as e:
        return fail(f"queue {args.key:#010x}: {e}")

    print(format_reply(reply))
    return EXIT_OK if reply["status"] == STATUS_OK else EXIT_NOT_OK


if __name__ == "__main__":
    sys.exit(main())
