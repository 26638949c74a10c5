//! quickcheck suite of the classic codec (`guichet::classic`), against a
//! naive oracle written here from CLASSIC.md alone: it reads the raw bytes
//! at the offsets the spec's table gives and predicts what each (mtype,
//! body) decodes to. Round trips, every single-byte mutation of valid
//! messages, truncations and extensions, and the 511-byte bound of every
//! reply text.
//!
//! `QUICKCHECK_TESTS`, when set, replaces every test count.

use guichet::__testkit::{listing_text, ReserveText, LIST_HEADER, MAX_TEXT_BYTES};
use guichet::classic::{
    decode_classic_reply, decode_classic_request, ClassicDrop, ClassicReply, ClassicRequest,
    ReplyKind, ReplyText, ReplyViolation,
};
use quickcheck::{Arbitrary, Gen, QuickCheck};

type Outcome = Result<(), String>;

fn quickcheck(default_tests: u64) -> QuickCheck {
    let tests = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_tests);
    QuickCheck::new().tests(tests).max_tests(tests)
}

fn i32_at(body: &[u8], at: usize) -> i32 {
    i32::from_ne_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]])
}

// ---------------------------------------------------------------------------
// The oracle.

/// CLASSIC.md's request table: 16 bytes exactly, then the mtype decides;
/// `id_spec` at 4, `nb_places` at 8; `action` and the padding ignored.
fn request_oracle(mtype: i64, body: &[u8]) -> Result<ClassicRequest, ClassicDrop> {
    if body.len() != 16 {
        return Err(ClassicDrop::Length { len: body.len() });
    }
    match mtype {
        1 => Ok(ClassicRequest::List),
        2 => Ok(ClassicRequest::Reserve {
            id_spec: i32_at(body, 4),
            nb_places: i32_at(body, 8),
        }),
        5 => Ok(ClassicRequest::Quit),
        _ => Err(ClassicDrop::Mtype { mtype }),
    }
}

/// What guichet promises of a reply: 512 bytes, mtype 10 or 11, a NUL,
/// zeros after it, UTF-8 before it.
fn reply_oracle(mtype: i64, body: &[u8]) -> Result<(ReplyKind, String), ReplyViolation> {
    if body.len() != 512 {
        return Err(ReplyViolation::Length { len: body.len() });
    }
    let kind = match mtype {
        10 => ReplyKind::Listing,
        11 => ReplyKind::Reservation,
        _ => return Err(ReplyViolation::Mtype { mtype }),
    };
    let Some(nul) = body.iter().position(|&b| b == 0) else {
        return Err(ReplyViolation::NoNul);
    };
    for (i, &b) in body.iter().enumerate().skip(nul) {
        if b != 0 {
            return Err(ReplyViolation::Fill {
                offset: i,
                found: b,
            });
        }
    }
    match String::from_utf8(body[..nul].to_vec()) {
        Ok(text) => Ok((kind, text)),
        Err(e) => Err(ReplyViolation::Utf8 {
            offset: e.utf8_error().valid_up_to(),
        }),
    }
}

fn check_request(mtype: i64, body: &[u8]) -> Outcome {
    let got = decode_classic_request(mtype, body);
    let want = request_oracle(mtype, body);
    if got != want {
        return Err(format!(
            "mtype {mtype} body {body:?}: decoded {got:?}, oracle {want:?}"
        ));
    }
    // What decodes re-encodes to a body that decodes the same.
    if let Ok(request) = got {
        let (m, b) = request.encode();
        if decode_classic_request(m, &b) != Ok(request) {
            return Err(format!("{request:?} does not survive a re-encode"));
        }
    }
    Ok(())
}

fn check_reply(mtype: i64, body: &[u8]) -> Outcome {
    let got = decode_classic_reply(mtype, body);
    let want = reply_oracle(mtype, body);
    let same = match (&got, &want) {
        (Ok(reply), Ok((kind, text))) => reply.kind == *kind && reply.text.as_str() == text,
        (Err(a), Err(b)) => a == b,
        _ => false,
    };
    if !same {
        return Err(format!("mtype {mtype}: decoded {got:?}, oracle {want:?}"));
    }
    if let Ok(reply) = got {
        if reply.encode()[..] != body[..] {
            return Err(format!("{reply:?} does not re-encode to its body"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Generators.

#[derive(Clone, Debug)]
struct AnyRequest(ClassicRequest);

/// An i32 biased to the edges the server treats apart (<= 0, small, huge).
fn edgy_i32(g: &mut Gen) -> i32 {
    match u8::arbitrary(g) % 4 {
        0 => *g
            .choose(&[i32::MIN, -1, 0, 1, 2, i32::MAX])
            .expect("non-empty"),
        1 => i32::from(u8::arbitrary(g) % 8),
        _ => i32::arbitrary(g),
    }
}

impl Arbitrary for AnyRequest {
    fn arbitrary(g: &mut Gen) -> Self {
        AnyRequest(match u8::arbitrary(g) % 3 {
            0 => ClassicRequest::List,
            1 => ClassicRequest::Quit,
            _ => ClassicRequest::Reserve {
                id_spec: edgy_i32(g),
                nb_places: edgy_i32(g),
            },
        })
    }
}

/// Text of any characters (multi-byte ones often), of lengths around the
/// 511-byte bound as often as short ones, without NUL.
#[derive(Clone, Debug)]
struct AnyText(String);

impl Arbitrary for AnyText {
    fn arbitrary(g: &mut Gen) -> Self {
        let target = match u8::arbitrary(g) % 3 {
            0 => usize::from(u8::arbitrary(g) % 32),
            1 => 500 + usize::from(u8::arbitrary(g) % 24),
            _ => usize::from(u16::arbitrary(g) % 700),
        };
        let mut s = String::new();
        while s.len() < target {
            let c = match u8::arbitrary(g) % 4 {
                0 => *g.choose(&['é', 'è', '€', '😀', 'ß']).expect("non-empty"),
                1 => char::arbitrary(g),
                _ => char::from(b' ' + u8::arbitrary(g) % 95),
            };
            if c != '\0' {
                s.push(c);
            }
        }
        AnyText(s)
    }
}

// ---------------------------------------------------------------------------
// Requests.

#[test]
fn classic_requests_round_trip_at_the_specs_offsets() {
    fn prop(AnyRequest(request): AnyRequest) -> Outcome {
        let (mtype, body) = request.encode();
        let (want_mtype, id, nb) = match request {
            ClassicRequest::List => (1, 0, 0),
            ClassicRequest::Reserve { id_spec, nb_places } => (2, id_spec, nb_places),
            ClassicRequest::Quit => (5, 0, 0),
        };
        let layout = (mtype, i32_at(&body, 0), i32_at(&body, 4), i32_at(&body, 8));
        if layout != (want_mtype, want_mtype as i32, id, nb) || body[12..] != [0; 4] {
            return Err(format!("{request:?} laid out as {layout:?} {body:?}"));
        }
        if decode_classic_request(mtype, &body) != Ok(request) {
            return Err(format!("{request:?} does not decode back"));
        }
        check_request(mtype, &body)
    }
    quickcheck(20_000).quickcheck(prop as fn(AnyRequest) -> Outcome);
}

#[test]
fn every_byte_and_mtype_mutation_of_a_request_decodes_as_the_oracle_says() {
    fn prop(AnyRequest(request): AnyRequest, mtypes: Vec<i64>) -> Outcome {
        let (mtype, original) = request.encode();
        for at in 0..original.len() {
            for value in 0..=u8::MAX {
                let mut body = original;
                body[at] = value;
                check_request(mtype, &body)?;
            }
        }
        for m in (-12..=14).chain(mtypes) {
            check_request(m, &original)?;
        }
        Ok(())
    }
    quickcheck(500).quickcheck(prop as fn(AnyRequest, Vec<i64>) -> Outcome);
}

#[test]
fn any_mtype_and_bytes_decode_as_the_oracle_says() {
    fn prop(small: u8, raw_mtype: i64, body: Vec<u8>, shape: u8) -> Outcome {
        // The protocol's mtypes and their neighbours as often as any.
        let mtype = match shape % 3 {
            0 => i64::from(small % 16),
            1 => [i64::MIN, -9, -1, 0, i64::MAX][usize::from(small) % 5],
            _ => raw_mtype,
        };
        // Lengths 15 to 17 as often as any.
        let mut body = body;
        match (shape / 3) % 3 {
            0 => body.resize(16, 0xA5),
            1 => body.resize(15 + usize::from(small) % 3, 0),
            _ => {}
        }
        check_request(mtype, &body)
    }
    quickcheck(50_000).quickcheck(prop as fn(u8, i64, Vec<u8>, u8) -> Outcome);
}

#[test]
fn truncated_or_extended_requests_are_dropped_for_their_length() {
    fn prop(AnyRequest(request): AnyRequest, tail: Vec<u8>) -> Outcome {
        let (mtype, body) = request.encode();
        for cut in 0..body.len() {
            let got = decode_classic_request(mtype, &body[..cut]);
            if got != Err(ClassicDrop::Length { len: cut }) {
                return Err(format!("{request:?} cut to {cut}: {got:?}"));
            }
        }
        let mut long = body.to_vec();
        long.push(0);
        long.extend(tail);
        let got = decode_classic_request(mtype, &long);
        if got != Err(ClassicDrop::Length { len: long.len() }) {
            return Err(format!("{request:?} extended to {}: {got:?}", long.len()));
        }
        Ok(())
    }
    quickcheck(5_000).quickcheck(prop as fn(AnyRequest, Vec<u8>) -> Outcome);
}

// ---------------------------------------------------------------------------
// Replies and texts.

#[test]
fn classic_replies_round_trip_zero_filled() {
    fn prop(AnyText(s): AnyText, listing: bool) -> Outcome {
        let text = ReplyText::from_str_cut(&s);
        let t = text.as_str();
        if t.len() > MAX_TEXT_BYTES || !s.starts_with(t) {
            return Err(format!("{} bytes kept of {:?}", t.len(), s));
        }
        // Cut only when needed, and then at the last whole character.
        if s.len() <= MAX_TEXT_BYTES && t != s {
            return Err(format!("{s:?} cut although it fits"));
        }
        if let Some(next) = s[t.len()..].chars().next() {
            if t.len() + next.len_utf8() <= MAX_TEXT_BYTES {
                return Err(format!("{next:?} would still fit after {} bytes", t.len()));
            }
        }
        let kind = if listing {
            ReplyKind::Listing
        } else {
            ReplyKind::Reservation
        };
        let reply = ClassicReply { kind, text };
        let body = reply.encode();
        if body[..t.len()] != *t.as_bytes() || body[t.len()..].iter().any(|&b| b != 0) {
            return Err(format!("{reply:?} encodes as {body:?}"));
        }
        if decode_classic_reply(kind.mtype(), &body) != Ok(reply) {
            return Err(format!("{reply:?} does not decode back"));
        }
        check_reply(kind.mtype(), &body)
    }
    quickcheck(20_000).quickcheck(prop as fn(AnyText, bool) -> Outcome);
}

#[test]
fn byte_mutations_of_a_reply_decode_as_the_oracle_says() {
    fn prop(AnyText(s): AnyText, values: Vec<u8>) -> Outcome {
        let reply = ClassicReply {
            kind: ReplyKind::Reservation,
            text: ReplyText::from_str_cut(&s),
        };
        let original = reply.encode();
        let values: Vec<u8> = [0, 1, 0x7F, 0x80, 0xC3, 0xFF]
            .into_iter()
            .chain(values.into_iter().take(4))
            .collect();
        for at in 0..original.len() {
            for &value in &values {
                let mut body = original;
                body[at] = value;
                check_reply(11, &body)?;
            }
        }
        for m in [9, 10, 12, 0, -11] {
            check_reply(m, &original)?;
        }
        for len in [0, 511, 513] {
            let mut body = original.to_vec();
            body.resize(len, 0);
            check_reply(11, &body)?;
        }
        Ok(())
    }
    quickcheck(40).quickcheck(prop as fn(AnyText, Vec<u8>) -> Outcome);
}

/// A name as the ledger allows them: 1 to 64 bytes, no control character.
#[derive(Clone, Debug)]
struct Name(String);

impl Arbitrary for Name {
    fn arbitrary(g: &mut Gen) -> Self {
        let AnyText(s) = AnyText::arbitrary(g);
        let mut name: String = s.chars().filter(|c| !c.is_control()).collect();
        while name.len() > 64 {
            name.pop();
        }
        if name.is_empty() {
            name.push('E');
        }
        Name(name)
    }
}

#[test]
fn a_listing_ends_after_the_last_whole_line_that_fits() {
    fn prop(events: Vec<(Name, u32)>, many: u8) -> Outcome {
        // Up to a few hundred events, so the 511-byte bound is often hit.
        let events: Vec<(String, u32)> = events
            .into_iter()
            .cycle()
            .take(usize::from(many) + 1)
            .map(|(Name(n), r)| (n, r))
            .collect();
        let text = listing_text(events.iter().map(|(n, r)| (n.as_str(), *r)));
        let t = text.as_str();
        let lines: Vec<String> = events
            .iter()
            .enumerate()
            .map(|(i, (n, r))| format!("[{i}] {n} : {r} places\n"))
            .collect();
        let mut want = LIST_HEADER.to_owned();
        for line in &lines {
            if want.len() + line.len() > MAX_TEXT_BYTES {
                break;
            }
            want.push_str(line);
        }
        if t != want {
            return Err(format!("listing {t:?}, expected {want:?}"));
        }
        if t.len() > MAX_TEXT_BYTES {
            return Err(format!("{} bytes", t.len()));
        }
        Ok(())
    }
    quickcheck(3_000).quickcheck(prop as fn(Vec<(Name, u32)>, u8) -> Outcome);
}

#[test]
fn reserve_texts_are_the_specs_and_never_pass_511_bytes() {
    fn prop(seats: u32, remaining: u32, Name(name): Name) -> Outcome {
        let cases = [
            (
                ReserveText::Booked { seats, name: &name },
                format!("OK ! {seats} places réservées pour {name}."),
            ),
            (
                ReserveText::SoldOut { remaining },
                format!("ECHEC : Pas assez de places (Reste: {remaining})."),
            ),
            (ReserveText::InvalidId, "ECHEC : ID Invalide.".into()),
            (
                ReserveText::InvalidCount,
                "ECHEC : Nombre de places invalide.".into(),
            ),
            (
                ReserveText::Unavailable,
                "ECHEC : Serveur indisponible.".into(),
            ),
        ];
        for (reserve, want) in cases {
            let text = reserve.text();
            if text.as_str() != want {
                return Err(format!(
                    "{reserve:?}: {:?}, expected {want:?}",
                    text.as_str()
                ));
            }
        }
        Ok(())
    }
    quickcheck(5_000).quickcheck(prop as fn(u32, u32, Name) -> Outcome);
}

#[test]
fn no_sequence_of_pushes_passes_511_bytes() {
    fn prop(pieces: Vec<(AnyText, bool)>) -> Outcome {
        let mut text = ReplyText::new();
        let mut shadow = String::new();
        for (AnyText(piece), whole) in pieces {
            let before = text.as_str().len();
            if whole {
                let added = text.push_whole(&piece);
                if added != (before + piece.len() <= MAX_TEXT_BYTES) {
                    return Err(format!("push_whole of {} bytes at {before}", piece.len()));
                }
                if added {
                    shadow.push_str(&piece);
                }
            } else {
                text.push_cut(&piece);
                shadow.push_str(&text.as_str()[before..]);
            }
            if text.as_str() != shadow || text.as_str().len() > MAX_TEXT_BYTES {
                return Err(format!(
                    "{} bytes, shadow {}",
                    text.as_str().len(),
                    shadow.len()
                ));
            }
        }
        Ok(())
    }
    quickcheck(3_000).quickcheck(prop as fn(Vec<(AnyText, bool)>) -> Outcome);
}
