//! The `handle` check: the server's per-message core, without a queue.

use core::convert::Infallible;

use guichet::__testkit::{handle_message, Handled};
use guichet::wire::{decode_reply, decode_request, Reply};
use guichet::wire::{BODY_SIZE, MIN_REPLY_TO};
use guichet::RequestId;
use guichet::Status;

use super::codec_checks::answerable;
use super::input::{timed_messages, Setup, HOLD_MS};
use super::ledger_checks::swept;
use crate::model::Model;
use guichet::ledger::ManualClock;

/// A ledger set up from the first bytes, then every message after them
/// through [`handle_message`], as a dispatcher would (see [`super::input`]).
///
/// # Panics
///
/// If handling panics; if a reply is not a valid wire-v1 reply (40 bytes
/// that [`decode_reply`] reads back equal, `reply_to >= 2`, the body's own
/// `reply_to` and `request_id`); if a message is answered or dropped against
/// PROTOCOL.md, or with another status than its decode error, SHUTTING_DOWN
/// or the reference model calls for; if the ledger changes without the
/// outcome reporting it (a replica fed only the reported changes must stay
/// equal); or if its invariants break.
pub fn handle(data: &[u8]) {
    let (setup, rest) = Setup::read(data);
    // The replica sees only the changes the outcomes report, so comparing
    // it with the ledger after each message catches any unreported change.
    let clock = ManualClock::new(0);
    let (mut ledger, mut replica) = match (setup.ledger_on(&clock), setup.ledger_on(&clock)) {
        (Ok(ledger), Ok(replica)) => (ledger, replica),
        (Err(e), _) | (_, Err(e)) => panic!("{setup:?} is a valid set-up, yet: {e}"),
    };
    let mut model = Model::new(&setup.capacities, setup.max_bookings).with_hold_ms(HOLD_MS);
    for ((body, shutting_down), pause_ms) in timed_messages(rest) {
        clock.advance_ms(pause_ms);
        model.advance_ms(pause_ms);
        let handled = match handle_message(body, shutting_down, |op| {
            Ok::<_, Infallible>(ledger.apply(op))
        }) {
            Ok(handled) => handled,
            Err(never) => match never {},
        };
        check_one(body, shutting_down, &handled, &mut model);
        if let Handled::Reply {
            outcome: Some(outcome),
            ..
        } = handled
        {
            if let Some(change) = outcome.change() {
                if let Err(e) = replica.replay(&change) {
                    panic!("replaying {change:?}: {e}");
                }
            }
        }
        assert_eq!(
            swept(&ledger),
            swept(&replica),
            "{handled:?} changed the ledger unreported"
        );
        if let Err(e) = ledger.check_invariants() {
            panic!("after {handled:?}: {e}");
        }
    }
}

/// Checks what was done with one message against what PROTOCOL.md and the
/// model call for.
fn check_one(body: &[u8], shutting_down: bool, handled: &Handled, model: &mut Model) {
    if let Handled::Reply { to, reply, .. } = handled {
        // Valid on the wire, whatever it answers.
        let encoded = reply.encode();
        assert_eq!(encoded.len(), BODY_SIZE);
        assert_eq!(
            decode_reply(&encoded),
            Ok(*reply),
            "reply does not decode back"
        );
        assert!(to.get() >= MIN_REPLY_TO, "reply to mtype {to}");
        // Addressed and tagged from the body's own bytes.
        assert_eq!(
            answerable(body),
            Some((to.get(), reply.request_id.0)),
            "{reply:?} sent to {to} for body {body:02x?}"
        );
    }
    let request = match decode_request(body) {
        Err(error) => {
            let expected = match error.answer() {
                Some(answer) => Handled::Reply {
                    to: answer.reply_to,
                    reply: answer.reply(),
                    outcome: None,
                    wait_for: None,
                },
                None => Handled::Drop(error),
            };
            assert_eq!(*handled, expected, "malformed body {body:02x?}");
            if let Some(status) = handled.status() {
                assert!(matches!(
                    status,
                    Status::BadMessage | Status::InvalidRequest
                ));
            }
            return;
        }
        Ok(request) => request,
    };
    if shutting_down {
        let expected = Handled::Reply {
            to: request.reply_to,
            reply: Reply::bare(Status::ShuttingDown, request.request_id),
            outcome: None,
            wait_for: None,
        };
        assert_eq!(*handled, expected, "{request:?} while shutting down");
        return;
    }
    let (predicted, model_changed) = model.apply(&request.operation);
    let Handled::Reply {
        to,
        reply,
        outcome: Some(outcome),
        wait_for: None,
    } = *handled
    else {
        panic!("{request:?} reached no ledger outcome: {handled:?}");
    };
    assert_eq!(to, request.reply_to);
    assert_eq!(reply, outcome.reply(request.request_id));
    assert_eq!(
        Reply {
            request_id: RequestId(0),
            ..reply
        },
        predicted,
        "{request:?}: the ledger and the reference model disagree"
    );
    assert_eq!(
        outcome.change().is_some(),
        model_changed,
        "{request:?}: whether it changed anything"
    );
}
