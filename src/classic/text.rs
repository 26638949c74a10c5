//! The reply texts, built into a buffer that can never pass
//! [`MAX_TEXT_BYTES`].

use core::fmt::{self, Write};

use super::layout::{ClassicReplyBody, MAX_TEXT_BYTES, REPLY_BODY_SIZE};

/// The header of a listing, before its first line.
pub const LIST_HEADER: &str = "\n--- SPECTACLES ---\n";

/// A reply text: UTF-8, no NUL, at most 511 bytes, so that
/// it always fits the 512-byte body with its terminating NUL.
///
/// Every way of adding to it is bounded: [`ReplyText::push_whole`] adds
/// all of a piece or none of it (a listing ends after its last whole
/// line), [`ReplyText::push_cut`] adds what fits, cut at a character
/// boundary. NULs are never added (a C client would stop reading there).
///
/// # Examples
///
/// ```
/// use guichet::classic::ReplyText;
///
/// let mut text = ReplyText::new();
/// assert!(text.push_whole("OK"));
/// assert!(!text.push_whole(&"x".repeat(511))); // all or nothing
/// text.push_cut(&"é".repeat(511)); // as much as fits
/// assert_eq!(text.as_str().len(), 511 - 1); // 'é' is 2 bytes
/// assert!(text.as_str().starts_with("OKéé"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplyText {
    bytes: [u8; MAX_TEXT_BYTES],
    len: usize,
}

impl Default for ReplyText {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ReplyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ReplyText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ReplyText {
    /// An empty text.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(guichet::classic::ReplyText::new().as_str(), "");
    /// ```
    pub const fn new() -> Self {
        Self {
            bytes: [0; MAX_TEXT_BYTES],
            len: 0,
        }
    }

    /// The text.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::classic::ReplyText;
    ///
    /// let text = ReplyText::from_str_cut("ECHEC : ID Invalide.");
    /// assert_eq!(text.as_str(), "ECHEC : ID Invalide.");
    /// ```
    pub fn as_str(&self) -> &str {
        // Only whole `str`s (or prefixes cut at a char boundary) are ever
        // copied in, so this never fails; an empty text is the safe answer
        // if that ever broke.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    /// Bytes left before the 511-byte limit.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::classic::ReplyText;
    ///
    /// assert_eq!(ReplyText::new().room(), 511);
    /// ```
    pub const fn room(&self) -> usize {
        MAX_TEXT_BYTES - self.len
    }

    /// Appends all of `piece` if it fits and holds no NUL; returns whether
    /// it did. Nothing is added otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::classic::ReplyText;
    ///
    /// let mut text = ReplyText::new();
    /// assert!(!text.push_whole("a\0b"));
    /// assert!(text.push_whole("ab"));
    /// assert_eq!(text.as_str(), "ab");
    /// ```
    pub fn push_whole(&mut self, piece: &str) -> bool {
        if piece.len() > self.room() || piece.as_bytes().contains(&0) {
            return false;
        }
        self.bytes[self.len..self.len + piece.len()].copy_from_slice(piece.as_bytes());
        self.len += piece.len();
        true
    }

    /// Appends as much of `piece` as fits, cut at a character boundary,
    /// and stops at a NUL; returns whether all of it went in.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::classic::ReplyText;
    ///
    /// let mut text = ReplyText::new();
    /// assert!(!text.push_cut(&"y".repeat(600)));
    /// assert_eq!(text.as_str().len(), 511);
    /// ```
    pub fn push_cut(&mut self, piece: &str) -> bool {
        let piece = piece.split('\0').next().unwrap_or_default();
        let mut end = piece.len().min(self.room());
        while !piece.is_char_boundary(end) {
            end -= 1;
        }
        self.push_whole(&piece[..end]) && end == piece.len()
    }

    /// A text of as much of `s` as fits ([`ReplyText::push_cut`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::classic::ReplyText;
    ///
    /// assert_eq!(ReplyText::from_str_cut("OK").as_str(), "OK");
    /// ```
    pub fn from_str_cut(s: &str) -> Self {
        let mut text = Self::new();
        text.push_cut(s);
        text
    }

    /// The 512-byte body: the text, its NUL, and zeros to the end.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::classic::ReplyText;
    ///
    /// let body = ReplyText::from_str_cut("OK").to_body();
    /// assert_eq!(&body.texte[..3], b"OK\0");
    /// assert!(body.texte[2..].iter().all(|&b| b == 0));
    /// ```
    pub fn to_body(&self) -> ClassicReplyBody {
        let mut body = ClassicReplyBody::default();
        body.texte[..self.len].copy_from_slice(&self.bytes[..self.len]);
        body
    }

    /// The body as the bytes msgsnd(2) sends.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::classic::ReplyText;
    ///
    /// assert_eq!(ReplyText::new().encode(), [0u8; 512]);
    /// ```
    pub fn encode(&self) -> [u8; REPLY_BODY_SIZE] {
        self.to_body().texte
    }
}

/// Formatting into a text cuts what does not fit rather than fail, so a
/// `write!` never passes the 511-byte limit; it reports `fmt::Error` when
/// it had to cut.
impl Write for ReplyText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.push_cut(s) {
            Ok(())
        } else {
            Err(fmt::Error)
        }
    }
}

/// Formats `args` as one whole piece: added only if all of it fits.
fn push_formatted(text: &mut ReplyText, args: fmt::Arguments<'_>) -> bool {
    let mut line = ReplyText::new();
    line.write_fmt(args).is_ok() && text.push_whole(line.as_str())
}

/// The reply to a listing: [`LIST_HEADER`], then one line per event,
/// `"[%d] %s : %d places\n"` (0-based index, name, remaining), ending after
/// the last whole line that fits in [`MAX_TEXT_BYTES`].
///
/// # Examples
///
/// ```
/// use guichet::__testkit::listing_text;
///
/// let text = listing_text([("Concert", 100), ("Opera", 48)]);
/// assert_eq!(
///     text.as_str(),
///     "\n--- SPECTACLES ---\n[0] Concert : 100 places\n[1] Opera : 48 places\n"
/// );
/// ```
pub fn listing_text<'a>(events: impl IntoIterator<Item = (&'a str, u32)>) -> ReplyText {
    let mut text = ReplyText::new();
    text.push_whole(LIST_HEADER);
    for (index, (name, remaining)) in events.into_iter().enumerate() {
        if !push_formatted(
            &mut text,
            format_args!("[{index}] {name} : {remaining} places\n"),
        ) {
            break;
        }
    }
    text
}

/// What a reservation came to, as the classic protocol can say it.
///
/// # Examples
///
/// ```
/// use guichet::__testkit::ReserveText;
///
/// let ok = ReserveText::Booked { seats: 2, name: "Concert" };
/// assert_eq!(ok.text().as_str(), "OK ! 2 places réservées pour Concert.");
/// assert_eq!(ReserveText::SoldOut { remaining: 1 }.text().as_str(),
///            "ECHEC : Pas assez de places (Reste: 1).");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReserveText<'a> {
    /// Booked `seats` of the event `name`.
    Booked {
        /// Seats booked.
        seats: u32,
        /// The event's name.
        name: &'a str,
    },
    /// Fewer than asked remain.
    SoldOut {
        /// Seats left.
        remaining: u32,
    },
    /// No event has this id.
    InvalidId,
    /// `nb_places <= 0`.
    InvalidCount,
    /// Any other refusal: ledger full, shutting down, journal failed.
    Unavailable,
}

impl ReserveText<'_> {
    /// The reply text (at most [`MAX_TEXT_BYTES`], cut at a character
    /// boundary if an event name were ever that long).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet::__testkit::ReserveText;
    ///
    /// assert_eq!(ReserveText::InvalidId.text().as_str(), "ECHEC : ID Invalide.");
    /// ```
    pub fn text(&self) -> ReplyText {
        let mut text = ReplyText::new();
        // A cut text is still a text: `write!` fails only when it had to cut.
        let _ = match self {
            ReserveText::Booked { seats, name } => {
                write!(text, "OK ! {seats} places réservées pour {name}.")
            }
            ReserveText::SoldOut { remaining } => {
                write!(text, "ECHEC : Pas assez de places (Reste: {remaining}).")
            }
            ReserveText::InvalidId => text.write_str("ECHEC : ID Invalide."),
            ReserveText::InvalidCount => text.write_str("ECHEC : Nombre de places invalide."),
            ReserveText::Unavailable => text.write_str("ECHEC : Serveur indisponible."),
        };
        text
    }
}
