//! The `decode` and `roundtrip` checks: the codec alone.

use arbitrary::{Arbitrary, Unstructured};
use zerocopy::IntoBytes;

use guichet::wire::{decode_reply, decode_request, Op, Reply, Request, Violation};
use guichet::wire::{ANSWERABLE_PREFIX, BODY_SIZE, MAGIC, MIN_REPLY_TO, VERSION};
use guichet::Status;

/// A native-endian integer of `N` bytes at `at`, if `body` reaches that far.
/// Read straight from the bytes, not through the codec, so the checks below
/// test the decoder against PROTOCOL.md's offsets rather than against itself.
fn field<const N: usize>(body: &[u8], at: usize) -> Option<[u8; N]> {
    body.get(at..at + N)?.try_into().ok()
}

fn u16_at(body: &[u8], at: usize) -> Option<u16> {
    field(body, at).map(u16::from_ne_bytes)
}

fn u32_at(body: &[u8], at: usize) -> Option<u32> {
    field(body, at).map(u32::from_ne_bytes)
}

fn i64_at(body: &[u8], at: usize) -> Option<i64> {
    field(body, at).map(i64::from_ne_bytes)
}

fn u64_at(body: &[u8], at: usize) -> Option<u64> {
    field(body, at).map(u64::from_ne_bytes)
}

/// PROTOCOL.md, *Malformed messages*, read off the bytes: where a server
/// answers this request body (its `reply_to` and `request_id`), or `None`
/// if it must drop it. A well-formed request is always answerable.
pub(super) fn answerable(body: &[u8]) -> Option<(i64, u64)> {
    if body.len() < ANSWERABLE_PREFIX || u32_at(body, 0)? != MAGIC {
        return None;
    }
    let reply_to = i64_at(body, 8).filter(|&r| r >= MIN_REPLY_TO)?;
    Some((reply_to, u64_at(body, 16)?))
}

/// Arbitrary bytes into the request decoder and the reply decoder.
///
/// # Panics
///
/// If either decoder panics, if a body that decodes does not re-encode to
/// exactly its bytes, if an error does not name the first framing rule the
/// bytes break (length, magic, version, op or status, `reply_to`), or if a
/// malformed request is answered (or dropped) against PROTOCOL.md.
pub fn decode(data: &[u8]) {
    check_request_body(data);
    check_reply_body(data);
}

fn check_request_body(body: &[u8]) {
    let where_to = answerable(body);
    let error = match decode_request(body) {
        Ok(request) => {
            assert_eq!(
                request.encode().as_slice(),
                body,
                "{request:?} decoded from bytes it does not re-encode to"
            );
            assert_eq!(
                where_to,
                Some((request.reply_to.get(), request.request_id.0)),
                "{request:?} decoded from a body PROTOCOL.md would not answer"
            );
            return;
        }
        Err(error) => error,
    };
    // Rendering the error must not panic either (servers log it).
    let _ = error.to_string();
    let violation = *error.violation();
    // Framing rules, in PROTOCOL.md's order; only then the field rules.
    let first_framing_rule = if body.len() != BODY_SIZE {
        Some(Violation::Length { len: body.len() })
    } else if u32_at(body, 0) != Some(MAGIC) {
        u32_at(body, 0).map(|found| Violation::Magic { found })
    } else if u16_at(body, 4) != Some(VERSION) {
        u16_at(body, 4).map(|found| Violation::Version { found })
    } else if u16_at(body, 6).and_then(Op::from_code).is_none() {
        u16_at(body, 6).map(|found| Violation::Op { found })
    } else if where_to.is_none() {
        i64_at(body, 8).map(|found| Violation::ReplyTo { found })
    } else {
        None
    };
    match first_framing_rule {
        Some(expected) => assert_eq!(violation, expected, "wrong first rule for {body:02x?}"),
        None => assert!(
            matches!(
                violation,
                Violation::Missing { .. }
                    | Violation::NotZero { .. }
                    | Violation::ServerBookingBit { .. }
            ),
            "a well-framed request failed on {violation:?}, not a field rule"
        ),
    }
    match (error.answer(), where_to) {
        (Some(answer), Some((reply_to, request_id))) => {
            assert_eq!(
                (answer.reply_to.get(), answer.request_id.0),
                (reply_to, request_id),
                "answer to {violation:?} misaddressed"
            );
            assert_eq!(answer.status, violation.status());
            assert!(
                matches!(answer.status, Status::BadMessage | Status::InvalidRequest),
                "a malformed request answered {}",
                answer.status
            );
            let reply = answer.reply();
            assert_eq!(reply, Reply::bare(answer.status, answer.request_id));
            assert_eq!(decode_reply(&reply.encode()), Ok(reply));
        }
        (None, None) => {}
        (answer, expected) => {
            panic!("{violation:?}: answer {answer:?}, but PROTOCOL.md says {expected:?}")
        }
    }
}

fn check_reply_body(body: &[u8]) {
    let violation = match decode_reply(body) {
        Ok(reply) => {
            assert_eq!(
                reply.encode().as_slice(),
                body,
                "{reply:?} decoded from bytes it does not re-encode to"
            );
            return;
        }
        Err(violation) => violation,
    };
    let _ = violation.to_string();
    let expected = if body.len() != BODY_SIZE {
        Some(Violation::Length { len: body.len() })
    } else if u32_at(body, 0) != Some(MAGIC) {
        u32_at(body, 0).map(|found| Violation::Magic { found })
    } else if u16_at(body, 4) != Some(VERSION) {
        u16_at(body, 4).map(|found| Violation::Version { found })
    } else {
        u16_at(body, 6)
            .filter(|&code| Status::from_code(code).is_none())
            .map(|found| Violation::Status { found })
    };
    assert_eq!(
        Some(violation),
        expected,
        "reply body {body:02x?} refused for the wrong reason"
    );
}

/// One message of either direction, as `arbitrary` builds it.
#[derive(Debug, Arbitrary)]
enum Message {
    Request(Request),
    Reply(Reply),
}

/// Bytes read by `arbitrary` into a sequence of valid requests and replies
/// (their `Arbitrary` impls only make values the protocol allows).
///
/// # Panics
///
/// If one does not encode to a 40-byte body with the right magic, version
/// and code that decodes back equal.
pub fn roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    while !u.is_empty() {
        let Ok(message) = Message::arbitrary(&mut u) else {
            break;
        };
        match message {
            Message::Request(request) => {
                let body = request.encode();
                assert_eq!(body.as_slice(), request.to_wire().as_bytes());
                assert_eq!(u32_at(&body, 0), Some(MAGIC));
                assert_eq!(u16_at(&body, 4), Some(VERSION));
                assert_eq!(u16_at(&body, 6), Some(request.operation.op().code()));
                assert_eq!(i64_at(&body, 8), Some(request.reply_to.get()));
                assert!(request.reply_to.get() >= MIN_REPLY_TO);
                assert_eq!(decode_request(&body), Ok(request), "{body:02x?}");
                assert_eq!(
                    answerable(&body),
                    Some((request.reply_to.get(), request.request_id.0))
                );
            }
            Message::Reply(reply) => {
                let body = reply.encode();
                assert_eq!(body.as_slice(), reply.to_wire().as_bytes());
                assert_eq!(u32_at(&body, 0), Some(MAGIC));
                assert_eq!(u16_at(&body, 4), Some(VERSION));
                assert_eq!(u16_at(&body, 6), Some(reply.status.code()));
                assert_eq!(Status::from_code(reply.status.code()), Some(reply.status));
                assert_eq!(decode_reply(&body), Ok(reply), "{body:02x?}");
            }
        }
    }
}
