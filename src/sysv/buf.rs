//! Message buffers laid out as the kernel expects: a `long mtype` followed by
//! the body, contiguous and `long`-aligned.
//!
//! Both buffers are arrays of `c_long` viewed as bytes through zerocopy, so
//! the alignment comes for free and no `unsafe` is needed to fill them.

use std::fmt;
use std::mem::size_of;

use libc::c_long;
use zerocopy::IntoBytes;

use super::{SysvError, MAX_BODY_BYTES};

const WORD_BYTES: usize = size_of::<c_long>();

/// Words needed for `mtype` plus `body_bytes` bytes.
const fn words_for(body_bytes: usize) -> usize {
    1 + body_bytes.div_ceil(WORD_BYTES)
}

/// Bodies up to this many bytes are sent from a stack buffer; longer ones
/// from a heap buffer (one allocation per send).
pub(crate) const STACK_BODY_BYTES: usize = 256;

/// An owned receive buffer: room for the `mtype` and up to
/// [`body_capacity`](MessageBuf::body_capacity) body bytes, plus the length
/// of the last message received into it.
///
/// It is `Send`, so a receive loop can hand a filled buffer to a worker
/// thread and allocate (or recycle) another.
///
/// # Examples
///
/// ```
/// use guichet::sysv::{MessageBuf, Mode, OwnedQueue};
///
/// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
/// owned.send(7, b"hello", None)?;
/// let mut buf = MessageBuf::with_body_capacity(64)?;
/// owned.recv(0, &mut buf, None)?;
/// let worker = std::thread::spawn(move || (buf.mtype(), buf.body().to_vec()));
/// assert_eq!(worker.join().unwrap(), (7, b"hello".to_vec()));
/// owned.remove()?;
/// # Ok::<(), guichet::sysv::SysvError>(())
/// ```
#[derive(Clone)]
pub struct MessageBuf {
    /// `words[0]` is the mtype; the body bytes follow. Never empty, so
    /// indexing `[0]` cannot panic.
    words: Box<[c_long]>,
    body_capacity: usize,
    body_len: usize,
    /// Receive with `MSG_NOERROR`: cut an over-long message to fit.
    truncates: bool,
}

impl MessageBuf {
    /// A buffer for bodies of up to `body_capacity` bytes.
    ///
    /// The capacity is what is passed to msgrcv(2) as `msgsz`; a longer
    /// message fails with [`SysvError::TooBig`] and stays queued, so a
    /// receiver of messages it does not trust should use
    /// [`MessageBuf::truncating`] instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{MessageBuf, MAX_BODY_BYTES};
    ///
    /// let buf = MessageBuf::with_body_capacity(41)?;
    /// assert_eq!(buf.body_capacity(), 41);
    /// assert!(buf.body().is_empty());
    /// assert!(MessageBuf::with_body_capacity(MAX_BODY_BYTES + 1).is_err());
    /// # Ok::<(), guichet::sysv::SysvError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SysvError::InvalidArgument`] if `body_capacity` exceeds
    /// [`MAX_BODY_BYTES`].
    pub fn with_body_capacity(body_capacity: usize) -> Result<MessageBuf, SysvError> {
        if body_capacity > MAX_BODY_BYTES {
            return Err(SysvError::InvalidArgument {
                what: "MessageBuf body capacity exceeds MAX_BODY_BYTES",
            });
        }
        Ok(MessageBuf {
            words: vec![0; words_for(body_capacity)].into_boxed_slice(),
            body_capacity,
            body_len: 0,
            truncates: false,
        })
    }

    /// A buffer for bodies of up to `body_capacity` bytes that takes a
    /// longer message off the queue cut to `body_capacity` bytes
    /// (msgrcv(2) with `MSG_NOERROR`; the rest is lost), instead of
    /// refusing it.
    ///
    /// One message too long for its receiver must not stop the queue: with
    /// a buffer that refuses, it stays first in line and every later
    /// receive of its type fails the same way. Make the capacity one byte
    /// more than the longest valid message, so that a cut one still shows
    /// as too long (PROTOCOL.md: the server receives 41 bytes for 40).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::sysv::{MessageBuf, Mode, OwnedQueue};
    ///
    /// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
    /// owned.send(1, &[7; 100], None)?;
    /// let mut buf = MessageBuf::truncating(41)?; // 40-byte messages, + 1
    /// let got = owned.recv(1, &mut buf, None)?;
    /// assert_eq!(got.body_len, 41); // over-long: cut, and off the queue
    /// assert_eq!(owned.stat()?.messages, 0);
    /// owned.remove()?;
    /// # Ok::<(), guichet::sysv::SysvError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SysvError::InvalidArgument`] if `body_capacity` exceeds
    /// [`MAX_BODY_BYTES`].
    pub fn truncating(body_capacity: usize) -> Result<MessageBuf, SysvError> {
        let mut buf = Self::with_body_capacity(body_capacity)?;
        buf.truncates = true;
        Ok(buf)
    }

    /// The msgrcv(2) flags this buffer asks for.
    pub(crate) fn recv_flags(&self) -> libc::c_int {
        if self.truncates {
            libc::MSG_NOERROR
        } else {
            0
        }
    }

    /// The most body bytes one receive can store.
    #[must_use]
    pub fn body_capacity(&self) -> usize {
        self.body_capacity
    }

    /// The body of the last message received, or empty if none was (or the
    /// last receive failed).
    #[must_use]
    pub fn body(&self) -> &[u8] {
        // `body_len <= body_capacity`, and the words hold that many bytes
        // after the mtype; `get` keeps it panic-free regardless.
        self.words
            .as_bytes()
            .get(WORD_BYTES..WORD_BYTES + self.body_len)
            .unwrap_or_default()
    }

    /// The length of [`body`](MessageBuf::body).
    #[must_use]
    pub fn body_len(&self) -> usize {
        self.body_len
    }

    /// The `mtype` of the last message received, or 0 if none was.
    #[must_use]
    pub fn mtype(&self) -> c_long {
        self.words[0]
    }

    /// Forgets the last message so a failed receive leaves an empty body.
    pub(crate) fn clear(&mut self) {
        self.words[0] = 0;
        self.body_len = 0;
    }

    /// The raw buffer and `msgsz` for msgrcv(2).
    pub(crate) fn raw_mut(&mut self) -> (&mut [c_long], usize) {
        (&mut self.words, self.body_capacity)
    }

    /// Records a successful receive of `body_len` bytes.
    pub(crate) fn set_received(&mut self, body_len: usize) -> Received {
        self.body_len = body_len.min(self.body_capacity);
        Received {
            mtype: self.words[0],
            body_len: self.body_len,
        }
    }
}

impl fmt::Debug for MessageBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageBuf")
            .field("mtype", &self.mtype())
            .field("body_len", &self.body_len)
            .field("body_capacity", &self.body_capacity)
            .finish_non_exhaustive()
    }
}

/// What one receive got: the message's type and how many body bytes were
/// stored (see [`MessageBuf::body`]).
///
/// # Examples
///
/// ```
/// use guichet::sysv::{MessageBuf, Mode, OwnedQueue, Received};
///
/// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
/// owned.send(1, &[0; 30], None)?;
/// let mut buf = MessageBuf::with_body_capacity(40)?;
/// let got = owned.recv(1, &mut buf, None)?;
/// assert_eq!(got, Received { mtype: 1, body_len: 30 });
/// owned.remove()?;
/// # Ok::<(), guichet::sysv::SysvError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The message's `mtype` (always > 0).
    pub mtype: c_long,
    /// The number of body bytes received (msgrcv(2)'s return value).
    pub body_len: usize,
}

/// A message laid out for msgsnd(2), on the stack when small.
#[expect(
    clippy::large_enum_variant,
    reason = "the inline variant is the point: small sends allocate nothing"
)]
pub(crate) enum Outgoing {
    Stack([c_long; words_for(STACK_BODY_BYTES)]),
    Heap(Vec<c_long>),
}

impl Outgoing {
    /// Copies `mtype` and `body` into one contiguous buffer.
    ///
    /// The caller has checked `body.len() <= MAX_BODY_BYTES`.
    pub(crate) fn new(mtype: c_long, body: &[u8]) -> Outgoing {
        let mut out = if body.len() <= STACK_BODY_BYTES {
            Outgoing::Stack([0; words_for(STACK_BODY_BYTES)])
        } else {
            Outgoing::Heap(vec![0; words_for(body.len())])
        };
        let words = out.words_mut();
        words[0] = mtype;
        let bytes = words.as_mut_bytes();
        // Both sizes were derived from `body.len()`, so the range fits.
        if let Some(dst) = bytes.get_mut(WORD_BYTES..WORD_BYTES + body.len()) {
            dst.copy_from_slice(body);
        }
        out
    }

    fn words_mut(&mut self) -> &mut [c_long] {
        match self {
            Outgoing::Stack(w) => w,
            Outgoing::Heap(w) => w,
        }
    }

    pub(crate) fn words(&self) -> &[c_long] {
        match self {
            Outgoing::Stack(w) => w,
            Outgoing::Heap(w) => w,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_lays_out_mtype_then_body() {
        for len in [
            0,
            1,
            7,
            8,
            9,
            STACK_BODY_BYTES,
            STACK_BODY_BYTES + 1,
            MAX_BODY_BYTES,
        ] {
            let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let out = Outgoing::new(0x0102_0304, &body);
            assert_eq!(
                matches!(out, Outgoing::Stack(_)),
                len <= STACK_BODY_BYTES,
                "{len}"
            );
            let w = out.words();
            assert_eq!(w[0], 0x0102_0304);
            assert_eq!(&w.as_bytes()[8..8 + len], &body[..]);
            assert!(w.len() >= words_for(len));
        }
    }

    #[test]
    fn message_buf_is_send_and_bounded() -> Result<(), SysvError> {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<MessageBuf>();
        let mut b = MessageBuf::with_body_capacity(41)?;
        let (words, cap) = b.raw_mut();
        assert_eq!(cap, 41);
        assert!(words.len() * 8 - 8 >= 41);
        words[0] = 5;
        let r = b.set_received(1000);
        assert_eq!(
            r,
            Received {
                mtype: 5,
                body_len: 41
            }
        );
        assert_eq!(b.body().len(), 41);
        b.clear();
        assert_eq!((b.mtype(), b.body_len()), (0, 0));
        assert!(MessageBuf::with_body_capacity(MAX_BODY_BYTES).is_ok());
        assert!(MessageBuf::with_body_capacity(0).is_ok());
        Ok(())
    }
}
