//! The operation codes, without their fields: what a violation names.

use core::fmt;

use crate::wire::{OP_CANCEL, OP_CONFIRM, OP_HOLD, OP_QUERY, OP_RESERVE};

/// An operation code, without its fields.
///
/// What a [`Violation`](super::Violation) names when a field breaks an op's rule; an
/// [`Operation`](super::Operation) carries the fields too. Displayed as the protocol's name.
///
/// # Examples
///
/// ```
/// use guichet::wire::Op;
///
/// assert_eq!(Op::from_code(2), Some(Op::Reserve));
/// assert_eq!(Op::Reserve.code(), 2);
/// assert_eq!(Op::Reserve.to_string(), "RESERVE");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read an event's remaining seats.
    Query,
    /// Book seats.
    Reserve,
    /// Return a booking's seats.
    Cancel,
    /// Book seats for a while (op 4).
    Hold,
    /// Make a hold an ordinary booking (op 5).
    Confirm,
}

impl Op {
    /// The wire code (`op` of a request body): one of the `OP_*`
    /// constants of [`wire`](crate::wire).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::wire::Op;
    ///
    /// assert_eq!(Op::Cancel.code(), 3); // PROTOCOL.md: CANCEL is op 3
    /// ```
    pub const fn code(self) -> u16 {
        match self {
            Op::Query => OP_QUERY,
            Op::Reserve => OP_RESERVE,
            Op::Cancel => OP_CANCEL,
            Op::Hold => OP_HOLD,
            Op::Confirm => OP_CONFIRM,
        }
    }

    /// The op for a wire code, or `None` for a code v1 does not define
    /// (which a server answers BAD_MESSAGE).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::wire::Op;
    ///
    /// assert_eq!(Op::from_code(1), Some(Op::Query));
    /// assert_eq!(Op::from_code(0), None);
    /// assert_eq!(Op::from_code(4), Some(Op::Hold));
    /// assert_eq!(Op::from_code(6), None);
    /// ```
    pub const fn from_code(code: u16) -> Option<Self> {
        match code {
            OP_QUERY => Some(Op::Query),
            OP_RESERVE => Some(Op::Reserve),
            OP_CANCEL => Some(Op::Cancel),
            OP_HOLD => Some(Op::Hold),
            OP_CONFIRM => Some(Op::Confirm),
            _ => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Query => "QUERY",
            Op::Reserve => "RESERVE",
            Op::Cancel => "CANCEL",
            Op::Hold => "HOLD",
            Op::Confirm => "CONFIRM",
        })
    }
}
