//! The `classic` check: the classic protocol's codec (`guichet::classic`).

use guichet::__testkit::{listing_text, ReserveText, MAX_TEXT_BYTES};
use guichet::classic::{
    decode_classic_reply, decode_classic_request, ClassicDrop, ClassicReply, ClassicRequest,
    ReplyKind, ReplyText, ReplyViolation, REPLY_BODY_SIZE, REQUEST_BODY_SIZE,
};

/// The input's mtype (its first 8 bytes, native order, zero-padded) and
/// the body after them. Total: any bytes are an input.
fn split(data: &[u8]) -> (i64, &[u8]) {
    let head = data.len().min(8);
    let mut mtype = [0u8; 8];
    mtype[..head].copy_from_slice(&data[..head]);
    (i64::from_ne_bytes(mtype), &data[head..])
}

/// An mtype (the first 8 bytes, native order) and a body into both classic decoders, and
/// their bytes into the reply texts.
///
/// # Panics
///
/// If a decoder panics or disagrees with CLASSIC.md read off the bytes
/// (16 bytes exactly, then mtype 1, 2 or 5; `id_spec` at 4, `nb_places`
/// at 8); if a request that decodes does not survive a re-encode; if a
/// reply that decodes does not re-encode to exactly its body; or if any
/// text built from the bytes passes 511 bytes, holds a NUL, or a listing
/// does not end after a whole line.
pub fn classic(data: &[u8]) {
    let (mtype, body) = split(data);
    check_request(mtype, body);
    check_reply(mtype, body);
    check_texts(body);
}

fn i32_at(body: &[u8], at: usize) -> i32 {
    i32::from_ne_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]])
}

fn check_request(mtype: i64, body: &[u8]) {
    let decoded = decode_classic_request(mtype, body);
    let expected = if body.len() != REQUEST_BODY_SIZE {
        Err(ClassicDrop::Length { len: body.len() })
    } else {
        match mtype {
            1 => Ok(ClassicRequest::List),
            2 => Ok(ClassicRequest::Reserve {
                id_spec: i32_at(body, 4),
                nb_places: i32_at(body, 8),
            }),
            5 => Ok(ClassicRequest::Quit),
            _ => Err(ClassicDrop::Mtype { mtype }),
        }
    };
    assert_eq!(decoded, expected, "mtype {mtype}, body {body:?}");
    if let Ok(request) = decoded {
        let (m, b) = request.encode();
        assert_eq!(decode_classic_request(m, &b), Ok(request), "re-encode");
    }
}

fn check_reply(mtype: i64, body: &[u8]) {
    match decode_classic_reply(mtype, body) {
        Ok(reply) => {
            assert_eq!(
                reply.encode()[..],
                body[..],
                "{reply:?} re-encodes otherwise"
            );
            assert!(matches!(mtype, 10 | 11));
        }
        Err(ReplyViolation::Length { len }) => assert_ne!(len, REPLY_BODY_SIZE),
        Err(ReplyViolation::Mtype { mtype: m }) => assert!(m == mtype && !matches!(m, 10 | 11)),
        Err(ReplyViolation::NoNul) => assert!(!body.contains(&0)),
        Err(ReplyViolation::Fill { offset, found }) => {
            let nul = body.iter().position(|&b| b == 0).expect("a NUL");
            assert!(offset > nul && found != 0 && body[nul..offset].iter().all(|&b| b == 0));
        }
        Err(ReplyViolation::Utf8 { offset }) => {
            let nul = body.iter().position(|&b| b == 0).expect("a NUL");
            assert!(core::str::from_utf8(&body[..nul]).is_err() && offset < nul);
        }
    }
}

fn check_text(text: &ReplyText) {
    let s = text.as_str();
    assert!(s.len() <= MAX_TEXT_BYTES && !s.contains('\0'), "{s:?}");
    let body = ClassicReply {
        kind: ReplyKind::Listing,
        text: *text,
    }
    .encode();
    assert_eq!(decode_classic_reply(10, &body).map(|r| r.text), Ok(*text));
}

fn check_texts(body: &[u8]) {
    let lossy = String::from_utf8_lossy(body);
    check_text(&ReplyText::from_str_cut(&lossy));
    // Names from the bytes, split at 0xFF, as many as there are.
    let names: Vec<String> = body
        .split(|&b| b == 0xFF)
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let listing = listing_text(names.iter().map(|n| (n.as_str(), n.len() as u32)));
    check_text(&listing);
    let s = listing.as_str();
    assert!(
        s.ends_with('\n'),
        "a listing ends after a whole line: {s:?}"
    );
    for name in &names {
        check_text(
            &ReserveText::Booked {
                seats: name.len() as u32,
                name,
            }
            .text(),
        );
    }
}
