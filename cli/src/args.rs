//! How the command reads numbers, ids and events: one way everywhere.
//!
//! Every number is decimal or hex with `0x`; a value out of its field's
//! range gets one message naming the range, whatever side it is on. clap
//! prints the value as typed, so replies echo the user's own spelling.

use guichet::sysv::Key;
use guichet::Ledger;

/// Largest client-chosen booking id: bit 63 is the server's (PROTOCOL.md).
pub const MAX_CLIENT_BOOKING_ID: u64 = (1 << 63) - 1;

/// `s` as a number of `lo..=hi`, read as decimal or `0x` hex.
pub fn number_in(s: &str, lo: u64, hi: u64, what: &str) -> Result<u64, String> {
    let t = s.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    match parsed {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        Ok(_) => Err(format!("{what} must be in {lo}..={hi}")),
        // Too many digits for 64 bits is out of range too.
        Err(e) if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) => {
            Err(format!("{what} must be in {lo}..={hi}"))
        }
        Err(_) => Err(format!(
            "{what} must be a number, decimal or hex with 0x (in {lo}..={hi})"
        )),
    }
}

fn u32_in(s: &str, lo: u32, what: &str) -> Result<u32, String> {
    let n = number_in(s, lo.into(), u32::MAX.into(), what)?;
    u32::try_from(n).map_err(|_| format!("{what} must be in {lo}..={}", u32::MAX))
}

/// An event id: 1, 2, … as `guichet serve` numbered them.
pub fn event_id(s: &str) -> Result<u32, String> {
    u32_in(s, 1, "an event id")
}

/// A count of seats to book.
pub fn seats(s: &str) -> Result<u32, String> {
    u32_in(s, 1, "a number of seats")
}

/// A booking id to cancel: any the server may have given.
pub fn booking_id(s: &str) -> Result<u64, String> {
    number_in(s, 1, u64::MAX, "a booking id")
}

/// A booking id of the client's choosing.
pub fn client_booking_id(s: &str) -> Result<u64, String> {
    number_in(s, 1, MAX_CLIENT_BOOKING_ID, "a booking id of your choosing")
}

/// Milliseconds, 0 included.
pub fn millis(s: &str) -> Result<u32, String> {
    u32_in(s, 0, "a number of milliseconds")
}

/// A count of 1 or more, below `hi`.
pub fn count_in(s: &str, hi: usize, what: &str) -> Result<usize, String> {
    let hi = u64::try_from(hi).unwrap_or(u64::MAX);
    let n = number_in(s, 1, hi, what)?;
    usize::try_from(n).map_err(|_| format!("{what} must be in 1..={hi}"))
}

/// A queue key.
pub fn key(s: &str) -> Result<Key, String> {
    s.parse::<Key>().map_err(|e| e.to_string())
}

/// An event as `NAME=CAPACITY`. A name holds no `=`, so that what was typed
/// reads one way only (`A=1=2` is refused, not an event `A=1`).
pub fn event(s: &str) -> Result<(String, u32), String> {
    let Some((name, capacity)) = s.split_once('=') else {
        return Err("an event is NAME=CAPACITY".into());
    };
    if name.is_empty() {
        return Err("an event needs a name before the =".into());
    }
    if name.len() > Ledger::MAX_EVENT_NAME_BYTES {
        return Err(format!(
            "an event name has at most {} bytes",
            Ledger::MAX_EVENT_NAME_BYTES
        ));
    }
    if capacity.contains('=') {
        return Err("an event name cannot contain =".into());
    }
    let capacity = u32_in(capacity, 0, "a capacity")?;
    Ok((name.to_owned(), capacity))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_and_hex_read_alike() {
        assert_eq!(event_id("1"), Ok(1));
        assert_eq!(event_id("0x1"), Ok(1));
        assert_eq!(booking_id("0x3039"), booking_id("12345"));
        assert_eq!(client_booking_id("0x10"), Ok(16));
    }

    #[test]
    fn one_range_message_for_both_ends() {
        let low = event_id("0").unwrap_err();
        let high = event_id("1099511627776").unwrap_err();
        assert_eq!(low, high);
        assert_eq!(low, "an event id must be in 1..=4294967295");
        assert_eq!(
            booking_id("99999999999999999999999").unwrap_err(),
            "a booking id must be in 1..=18446744073709551615"
        );
        assert_eq!(
            client_booking_id("0x8000000000000000").unwrap_err(),
            "a booking id of your choosing must be in 1..=9223372036854775807"
        );
    }

    #[test]
    fn events_are_name_equals_capacity_and_nothing_else() {
        assert_eq!(event("A=1"), Ok(("A".into(), 1)));
        assert_eq!(event("A=0x10"), Ok(("A".into(), 16)));
        assert_eq!(event("A=1=2"), Err("an event name cannot contain =".into()));
        assert!(event("=1").is_err());
        assert!(event("A").is_err());
        assert!(event("A=-1").is_err());
    }
}
