//! Transfer decoding as the raw message streams past, for attachment
//! downloads: an attachment is sent as its stored raw message's 1 MiB chunks
//! are read, decoded on the way, so a 20 MB attachment is never whole in
//! memory.
//!
//! A [`Decoder`] undoes one Content-Transfer-Encoding and may be fed any
//! split of its input: whatever the pieces, the output is the same as for the
//! input fed whole (a property test holds it to that, malformed input
//! included). It never fails: malformed input decodes to something, by the
//! lenient rules written on each decoder. On valid input it agrees byte for
//! byte with mail-parser, which decodes the same parts at ingest (property
//! tests hold it to that too).
//!
//! A [`Pipeline`] chains decoders over byte ranges ([`Layer`]s): a part inside
//! a base64-encoded `message/rfc822` is a range of that message's decoded
//! bytes, itself a range of the raw message.
//!
//! One call's output is bounded by its input: at most its length plus what
//! was held from before (under a kilobyte), and for uuencode at most three
//! times that (a line cut short in transit is zero-filled, within bounds).

use serde::{Deserialize, Serialize};

/// A part's Content-Transfer-Encoding, as far as decoding goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum TransferEncoding {
    /// The bytes are the content (7bit, 8bit, binary, absent or unknown).
    Identity,
    Base64,
    QuotedPrintable,
    /// Not a MIME encoding, but one that old mailers still declare.
    Uuencode,
}

impl TransferEncoding {
    /// From a Content-Transfer-Encoding header value (case-insensitive,
    /// trimmed): `base64`, `quoted-printable`, and `x-uuencode`, `uuencode`,
    /// `x-uue` or `uue`. Absent, `7bit`, `8bit`, `binary` and any unknown
    /// value are [`Identity`](Self::Identity): the bytes as they are is the
    /// best guess, and what mail-parser gives for them.
    pub(crate) fn from_header(value: Option<&str>) -> Self {
        let Some(value) = value.map(str::trim) else {
            return Self::Identity;
        };
        let is = |name: &str| value.eq_ignore_ascii_case(name);
        if is("base64") {
            Self::Base64
        } else if is("quoted-printable") {
            Self::QuotedPrintable
        } else if ["x-uuencode", "uuencode", "x-uue", "uue"]
            .into_iter()
            .any(is)
        {
            Self::Uuencode
        } else {
            Self::Identity
        }
    }
}

/// One transfer decoder, with what it holds between two slices of input (a
/// partial base64 quantum, held white space, a partial uuencoded line).
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
}

#[derive(Debug)]
enum State {
    Identity,
    Base64(Base64),
    QuotedPrintable(QuotedPrintable),
    Uuencode(Uuencode),
}

impl Decoder {
    pub(crate) fn new(encoding: TransferEncoding) -> Self {
        let state = match encoding {
            TransferEncoding::Identity => State::Identity,
            TransferEncoding::Base64 => State::Base64(Base64::default()),
            TransferEncoding::QuotedPrintable => State::QuotedPrintable(QuotedPrintable::default()),
            TransferEncoding::Uuencode => State::Uuencode(Uuencode::default()),
        };
        Self { state }
    }

    /// Decodes `input`, appending what it can to `out`, and keeps what it
    /// cannot decode yet (a partial quantum or line) for the next call.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match &mut self.state {
            State::Identity => out.extend_from_slice(input),
            State::Base64(decoder) => decoder.feed(input, out),
            State::QuotedPrintable(decoder) => decoder.feed(input, out),
            State::Uuencode(decoder) => decoder.feed(input, out),
        }
    }

    /// Flushes what is left at the end of the input. The decoder is then as
    /// new.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        match &mut self.state {
            State::Identity => {}
            State::Base64(decoder) => decoder.finish(out),
            State::QuotedPrintable(decoder) => decoder.finish(out),
            State::Uuencode(decoder) => decoder.finish(out),
        }
    }
}

/// The decoded length of `input`, decoded in blocks into one reused buffer,
/// so the whole output is never held.
pub(crate) fn decoded_len(encoding: TransferEncoding, input: &[u8]) -> u64 {
    const BLOCK: usize = 16 * 1024;
    if encoding == TransferEncoding::Identity {
        return input.len() as u64;
    }
    let mut decoder = Decoder::new(encoding);
    let mut buffer = Vec::new();
    let mut total = 0;
    for block in input.chunks(BLOCK) {
        decoder.feed(block, &mut buffer);
        total += buffer.len() as u64;
        buffer.clear();
    }
    decoder.finish(&mut buffer);
    total + buffer.len() as u64
}

// --- Base64 ----------------------------------------------------------------

const NOT_BASE64: u8 = 0xFF;

/// Each byte's 6-bit value in the standard alphabet, or [`NOT_BASE64`].
static BASE64: [u8; 256] = base64_table();

const fn base64_table() -> [u8; 256] {
    let mut table = [NOT_BASE64; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut value = 0;
    while value < alphabet.len() {
        table[alphabet[value] as usize] = value as u8;
        value += 1;
    }
    table
}

/// Base64, leniently: every byte outside the alphabet other than `=` (white
/// space, stray punctuation) is skipped, as Python's non-strict `binascii`
/// does; mail-parser gives up on such a part instead and shows it raw.
///
/// `=` ends the current quantum and decoding goes on after it: the quantum's
/// 2 or 3 characters give 1 or 2 bytes, and, as mail-parser does, a lone
/// character gives one byte of its 6 bits. At the end of the input, 2 or 3
/// characters left over give 1 or 2 bytes (unpadded base64) and a lone one
/// is dropped (mail-parser drops all three; valid base64 has none).
#[derive(Debug, Default)]
struct Base64 {
    /// The quantum's characters so far, 6 bits each, the latest lowest.
    bits: u32,
    /// How many characters `bits` holds (0 to 3).
    held: u8,
}

impl Base64 {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() / 4 * 3 + 3);
        let mut rest = input;
        loop {
            if self.held == 0 {
                rest = whole_quanta(rest, out);
            }
            let Some((&byte, tail)) = rest.split_first() else {
                return;
            };
            rest = tail;
            let value = BASE64[usize::from(byte)];
            if value != NOT_BASE64 {
                self.bits = (self.bits << 6) | u32::from(value);
                self.held += 1;
                if self.held == 4 {
                    out.extend_from_slice(&self.bits.to_be_bytes()[1..]);
                    *self = Self::default();
                }
            } else if byte == b'=' {
                self.end_quantum(true, out);
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.end_quantum(false, out);
    }

    /// Writes the bytes a partial quantum holds. `padded`: it was ended by
    /// `=`, where a lone character still gives a byte (mail-parser's rule).
    fn end_quantum(&mut self, padded: bool, out: &mut Vec<u8>) {
        // The casts keep the low 8 bits: the byte being written.
        let bits = self.bits;
        match self.held {
            1 if padded => out.push((bits << 2) as u8),
            2 => out.push((bits >> 4) as u8),
            3 => out.extend_from_slice(&[(bits >> 10) as u8, (bits >> 2) as u8]),
            _ => {}
        }
        *self = Self::default();
    }
}

/// Decodes the whole quanta of four alphabet characters at the start of
/// `input`, the bulk of any base64 body, and returns what follows them (from
/// the first group that is not four alphabet characters).
fn whole_quanta<'a>(mut input: &'a [u8], out: &mut Vec<u8>) -> &'a [u8] {
    while let [a, b, c, d, rest @ ..] = input {
        // Four plain lookups: `[a, b, c, d].map(..)` is four times slower at
        // the release profile's opt-level "s".
        let a = BASE64[usize::from(*a)];
        let b = BASE64[usize::from(*b)];
        let c = BASE64[usize::from(*c)];
        let d = BASE64[usize::from(*d)];
        // Alphabet values are below 64; NOT_BASE64 is not.
        if (a | b | c | d) >= 64 {
            break;
        }
        let word = (u32::from(a) << 18) | (u32::from(b) << 12) | (u32::from(c) << 6) | u32::from(d);
        out.extend_from_slice(&word.to_be_bytes()[1..]);
        input = rest;
    }
    input
}

// --- Quoted-printable ------------------------------------------------------

/// The most white space held back in case a line break follows (where it is
/// dropped): RFC 5321's line length. A longer run is data, kept whatever
/// follows, so memory stays bounded whatever the input.
const MAX_HELD_SPACE: usize = 998;

/// Quoted-printable, as mail-parser decodes it on valid input.
///
/// `=XX` (hex digits in either case) is a byte. `=` followed by optional
/// white space then a line break (CRLF or LF) is a soft line break, nothing
/// written; at the very end of the input it is one too, its line break being
/// the boundary delimiter's. Any other `=` is kept as it is, with what follows
/// it (mail-parser gives up on a few of these, like `==`). At a boundary,
/// after a soft line break, mail-parser also drops the two bytes before it
/// (`a=\r\nbc=` gives `a`): a bug we do not copy. Line breaks are kept as
/// they are, CRLF or LF; a CR alone is data (mail-parser drops it).
///
/// White space (space, tab, form feed — mail-parser's) at the end of a line
/// is dropped, as RFC 2045 asks and mail-parser does; so is white space at the
/// end of the input, whose line break is the delimiter's (mail-parser drops
/// it there too, when the part ends at a boundary). Encoded white space
/// (`=20`) is kept. A run longer than [`MAX_HELD_SPACE`] is kept.
#[derive(Debug, Default)]
struct QuotedPrintable {
    escape: Escape,
    /// White space not written yet: at the end of the text, dropped if a line
    /// break follows; after an `=`, dropped with it if a line break follows.
    space: Vec<u8>,
    /// The current run of white space passed [`MAX_HELD_SPACE`]: it is
    /// written as it comes.
    long_run: bool,
    /// The last byte was a CR: a line break if LF follows, else data.
    cr: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    /// After an `=` (and any white space in `space`).
    Equals,
    /// After an `=` and this hex digit.
    Hex(u8),
}

fn is_qp_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | 0x0C)
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).map(|digit| digit as u8)
}

impl QuotedPrintable {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        let mut rest = input;
        while let Some((&byte, tail)) = rest.split_first() {
            if self.escape == Escape::None && !self.cr {
                // Ordinary text, most of a body, is copied a run at a time.
                let run = rest
                    .iter()
                    .position(|&b| matches!(b, b'=' | b'\r' | b'\n') || is_qp_space(b))
                    .unwrap_or(rest.len());
                if run > 0 {
                    self.settle(out);
                    out.extend_from_slice(&rest[..run]);
                    rest = &rest[run..];
                    continue;
                }
            }
            self.step(byte, out);
            rest = tail;
        }
    }

    fn step(&mut self, byte: u8, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.cr) {
            if byte == b'\n' {
                return self.line_break(b"\r\n", out);
            }
            self.literal(b'\r', out);
        }
        match self.escape {
            Escape::Hex(high) => {
                if let (Some(high), Some(low)) = (hex_value(high), hex_value(byte)) {
                    out.push((high << 4) | low);
                    self.escape = Escape::None;
                    return;
                }
                // No escape: `=` and the digit are data, and `byte` is read
                // as if they were text.
                self.settle(out);
            }
            Escape::Equals if self.space.is_empty() && hex_value(byte).is_some() => {
                self.escape = Escape::Hex(byte);
                return;
            }
            _ => {}
        }
        match byte {
            b'\r' => self.cr = true,
            b'\n' => self.line_break(b"\n", out),
            b'=' => {
                self.settle(out);
                self.escape = Escape::Equals;
            }
            _ if is_qp_space(byte) => self.hold_space(byte, out),
            _ => self.literal(byte, out),
        }
    }

    /// Writes what was held back as the data it turned out to be: an `=`
    /// (and hex digit) that began no escape, and white space that ended no
    /// line.
    fn settle(&mut self, out: &mut Vec<u8>) {
        match std::mem::take(&mut self.escape) {
            Escape::None => {}
            Escape::Equals => out.push(b'='),
            Escape::Hex(digit) => out.extend_from_slice(&[b'=', digit]),
        }
        out.extend_from_slice(&self.space);
        self.space.clear();
        self.long_run = false;
    }

    fn literal(&mut self, byte: u8, out: &mut Vec<u8>) {
        self.settle(out);
        out.push(byte);
    }

    fn hold_space(&mut self, byte: u8, out: &mut Vec<u8>) {
        if self.long_run {
            out.push(byte);
        } else {
            self.space.push(byte);
            if self.space.len() > MAX_HELD_SPACE {
                self.settle(out);
                self.long_run = true;
            }
        }
    }

    fn line_break(&mut self, line_break: &[u8], out: &mut Vec<u8>) {
        match std::mem::take(&mut self.escape) {
            // A soft line break: the `=`, its white space and the break go.
            Escape::Equals => {}
            Escape::Hex(digit) => {
                out.extend_from_slice(&[b'=', digit]);
                out.extend_from_slice(line_break);
            }
            // Trailing white space goes.
            Escape::None => out.extend_from_slice(line_break),
        }
        self.space.clear();
        self.long_run = false;
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.cr) {
            self.literal(b'\r', out);
        }
        if let Escape::Hex(digit) = self.escape {
            out.extend_from_slice(&[b'=', digit]);
        }
        *self = Self::default();
    }
}

// --- Uuencode --------------------------------------------------------------

/// The most of a line the uuencode decoder keeps: a data line is at most 86
/// bytes (a length character, 84 data characters, a checksum character),
/// and a begin line is recognised by its start.
const UU_KEPT_LINE: usize = 128;

/// Uuencode, by lines (CRLF or LF).
///
/// Lines before a `begin <mode> <name>` line are skipped. A part declared
/// uuencoded often has no begin line, and a decoder that streams cannot wait
/// to learn there is none: so a line that is a well-formed data line (a
/// length character, then exactly as many characters of the uuencode range as
/// that length needs, give or take a checksum character) starts the data too.
/// Text before the data is seldom well-formed in that way; what is, is taken
/// for data.
///
/// In the data, each line's first character gives its decoded length,
/// `(c - 32) & 63`; each other character is 6 bits, `(c - 32) & 63` (so a
/// backquote is 0, as a space is). A line shorter than it claims is decoded
/// as far as it goes and zero-filled, within a bound (see
/// [`decode_uu_line`]). A line of length 0 (an
/// empty line too) or `end` ends the data; the rest is ignored.
#[derive(Debug, Default)]
struct Uuencode {
    phase: UuPhase,
    /// The current line's first [`UU_KEPT_LINE`] bytes.
    line: Vec<u8>,
    /// The current line's length so far.
    line_len: usize,
    /// Whether a byte of the line past the kept ones was not white space.
    tail_dirty: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum UuPhase {
    /// Looking for a begin line or a first data line.
    #[default]
    Searching,
    Data,
    Ended,
}

fn uu_value(byte: u8) -> u8 {
    byte.wrapping_sub(b' ') & 63
}

impl Uuencode {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while self.phase != UuPhase::Ended {
            let Some(end) = rest.iter().position(|&b| b == b'\n') else {
                self.take(rest);
                return;
            };
            self.take(&rest[..end]);
            self.end_line(out);
            rest = &rest[end + 1..];
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if self.line_len > 0 {
            self.end_line(out);
        }
        *self = Self::default();
    }

    /// Adds part of the current line.
    fn take(&mut self, bytes: &[u8]) {
        let kept = bytes.len().min(UU_KEPT_LINE - self.line.len());
        self.line.extend_from_slice(&bytes[..kept]);
        self.tail_dirty |= bytes[kept..]
            .iter()
            .any(|&b| !matches!(b, b' ' | b'\t' | b'\r'));
        self.line_len += bytes.len();
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        let whole = self.line_len <= UU_KEPT_LINE;
        let mut line = self.line.as_slice();
        if whole && let [content @ .., b'\r'] = line {
            line = content;
        }
        match self.phase {
            UuPhase::Searching => {
                if is_begin_line(line) {
                    self.phase = UuPhase::Data;
                } else if whole && is_data_line(line) {
                    self.phase = UuPhase::Data;
                    decode_uu_line(line, out);
                }
            }
            UuPhase::Data => {
                let is_end = line.trim_ascii_end() == b"end" && !self.tail_dirty;
                if is_end || line.first().is_none_or(|&c| uu_value(c) == 0) {
                    self.phase = UuPhase::Ended;
                } else {
                    decode_uu_line(line, out);
                }
            }
            UuPhase::Ended => {}
        }
        self.line.clear();
        self.line_len = 0;
        self.tail_dirty = false;
    }
}

/// `begin <octal mode> <name>`.
fn is_begin_line(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"begin ") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| matches!(b, b'0'..=b'7')).count();
    digits > 0 && rest.get(digits) == Some(&b' ')
}

/// A line as an encoder writes it: a non-zero length character, then the
/// characters that length needs (at least those carrying its bits, at most
/// whole groups of four and a checksum character), all of the uuencode range.
fn is_data_line(line: &[u8]) -> bool {
    let Some((&length, chars)) = line.split_first() else {
        return false;
    };
    let length = usize::from(uu_value(length));
    let fewest = (length * 4).div_ceil(3);
    let most = length.div_ceil(3) * 4 + 1;
    length > 0
        && (fewest..=most).contains(&chars.len())
        && line.iter().all(|&b| (b' '..=b'`').contains(&b))
}

/// A uuencoded line yields at most this many bytes for each of its own
/// (its line break counted).
const UU_MOST_PER_BYTE: usize = 3;

/// Writes a data line's bytes: as many as its length character says, the
/// characters it lacks taken as zero (trailing spaces, which are zeros, are
/// often stripped in transit), but at most [`UU_MOST_PER_BYTE`] times the
/// line's own bytes: filling without a bound would let a 2-byte line claim
/// 63 bytes, and a 25 MiB message a file thirty times its size.
fn decode_uu_line(line: &[u8], out: &mut Vec<u8>) {
    let Some((&length, chars)) = line.split_first() else {
        return;
    };
    let mut left = usize::from(uu_value(length)).min((line.len() + 1) * UU_MOST_PER_BYTE);
    let mut groups = chars.chunks(4);
    while left > 0 {
        let group = groups.next().unwrap_or(&[]);
        let value = |i: usize| u32::from(group.get(i).map_or(0, |&c| uu_value(c)));
        let word = (value(0) << 18) | (value(1) << 12) | (value(2) << 6) | value(3);
        let bytes = word.to_be_bytes();
        let take = left.min(3);
        out.extend_from_slice(&bytes[1..1 + take]);
        left -= take;
    }
}

// --- Layers ------------------------------------------------------------------

/// One layer of where a part's bytes are: bytes `[start, end)` of the layer
/// below's decoded output (layer 0: of the raw message), decoded with
/// `encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Layer {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) encoding: TransferEncoding,
}

/// A chain of layers (a part inside a base64-encoded `message/rfc822` inside
/// the message has two), fed the raw message's bytes in order from any offset
/// at or before `layers[0].start`, and giving the innermost decoded bytes.
///
/// A range that ends past the bytes below it (a stale or malformed range)
/// simply ends with them.
#[derive(Debug)]
pub(crate) struct Pipeline {
    stages: Vec<Stage>,
    /// Each stage's output but the last's, reused from call to call.
    between: Vec<Vec<u8>>,
}

#[derive(Debug)]
struct Stage {
    layer: Layer,
    decoder: Decoder,
    /// The offset, in the stream below, of the next byte this stage sees.
    position: u64,
    /// The range is past (or the stream below ended) and the decoder was
    /// finished: nothing more comes out.
    finished: bool,
}

impl Pipeline {
    /// At least one layer; none means the identity over everything.
    pub(crate) fn new(layers: &[Layer]) -> Self {
        let everything = Layer {
            start: 0,
            end: u64::MAX,
            encoding: TransferEncoding::Identity,
        };
        let layers = if layers.is_empty() {
            &[everything][..]
        } else {
            layers
        };
        let stages: Vec<Stage> = layers
            .iter()
            .map(|&layer| Stage {
                layer,
                decoder: Decoder::new(layer.encoding),
                position: 0,
                finished: false,
            })
            .collect();
        let between = vec![Vec::new(); stages.len() - 1];
        Self { stages, between }
    }

    /// `input` is the raw message's bytes from absolute offset `offset`;
    /// consecutive calls are contiguous. What the innermost layer decodes is
    /// appended to `out`.
    pub(crate) fn feed(&mut self, offset: u64, input: &[u8], out: &mut Vec<u8>) {
        self.run(offset, input, false, out);
    }

    /// Ends the input: every layer still open is flushed.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        let offset = self.stages.first().map_or(0, |stage| stage.position);
        self.run(offset, &[], true, out);
    }

    /// Whether nothing more can come out (every layer's range is past, or the
    /// innermost one's is): the caller stops reading chunks.
    pub(crate) fn done(&self) -> bool {
        self.stages.last().is_none_or(|stage| stage.finished)
    }

    fn run(&mut self, offset: u64, input: &[u8], ended: bool, out: &mut Vec<u8>) {
        let last = self.stages.len() - 1;
        for index in 0..=last {
            let (below, rest) = self.between.split_at_mut(index);
            let (data, position, ended_below) = match index.checked_sub(1) {
                None => (input, offset, ended),
                Some(previous) => {
                    let stage = &self.stages[index];
                    (
                        below[previous].as_slice(),
                        stage.position,
                        self.stages[previous].finished,
                    )
                }
            };
            let sink = if index == last {
                &mut *out
            } else {
                &mut rest[0]
            };
            self.stages[index].take(position, data, ended_below, sink);
        }
        for buffer in &mut self.between {
            buffer.clear();
        }
    }
}

impl Stage {
    /// Decodes what of `data` (bytes from `position` of the stream below)
    /// falls in the range, and finishes once the range is past or the stream
    /// below has ended.
    fn take(&mut self, position: u64, data: &[u8], ended_below: bool, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        let len = data.len() as u64;
        // Offsets into `data`, clamped to it; `as` is exact, being at most its length.
        let from = self.layer.start.saturating_sub(position).min(len) as usize;
        let to = self.layer.end.saturating_sub(position).min(len) as usize;
        if from < to {
            self.decoder.feed(&data[from..to], out);
        }
        self.position = position.saturating_add(len);
        if ended_below || self.position >= self.layer.end {
            self.decoder.finish(out);
            self.finished = true;
        }
    }
}

// Native only: proptest runs on the host.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::TransferEncoding::{Base64, Identity, QuotedPrintable, Uuencode};
    use super::*;

    fn decode(encoding: TransferEncoding, input: &[u8]) -> Vec<u8> {
        let mut decoder = Decoder::new(encoding);
        let mut out = Vec::new();
        decoder.feed(input, &mut out);
        decoder.finish(&mut out);
        out
    }

    /// The one place the unit tests call the decoders: fed whole, fed a byte
    /// at a time, and counted by `decoded_len`, `input` gives `expected`.
    fn check(encoding: TransferEncoding, input: impl AsRef<[u8]>, expected: impl AsRef<[u8]>) {
        let (input, expected) = (input.as_ref(), expected.as_ref());
        let shown = String::from_utf8_lossy(input);
        assert_eq!(
            String::from_utf8_lossy(&decode(encoding, input)),
            String::from_utf8_lossy(expected),
            "{encoding:?} {shown:?}"
        );
        assert_eq!(decode(encoding, input), expected, "{encoding:?} {shown:?}");
        let mut decoder = Decoder::new(encoding);
        let mut out = Vec::new();
        for byte in input.chunks(1) {
            decoder.feed(byte, &mut out);
        }
        decoder.finish(&mut out);
        assert_eq!(out, expected, "{encoding:?} {shown:?} byte by byte");
        assert_eq!(
            decoded_len(encoding, input),
            expected.len() as u64,
            "{encoding:?} {shown:?}"
        );
    }

    #[test]
    fn an_encoding_is_read_from_its_header_value() {
        let cases = [
            (None, Identity),
            (Some(""), Identity),
            (Some("7bit"), Identity),
            (Some("8BIT"), Identity),
            (Some("binary"), Identity),
            (Some("x-gzip"), Identity),
            (Some("base 64"), Identity),
            (Some("base64"), Base64),
            (Some(" Base64\t"), Base64),
            (Some("QUOTED-PRINTABLE"), QuotedPrintable),
            (Some("quoted-printable "), QuotedPrintable),
            (Some("x-uuencode"), Uuencode),
            (Some("UUENCODE"), Uuencode),
            (Some("x-uue"), Uuencode),
            (Some("uue"), Uuencode),
        ];
        for (value, expected) in cases {
            assert_eq!(TransferEncoding::from_header(value), expected, "{value:?}");
        }
    }

    #[test]
    fn layers_are_stored_as_this_json() {
        let layer = Layer {
            start: 10,
            end: 20,
            encoding: QuotedPrintable,
        };
        let json = serde_json::to_string(&layer).expect("serialises");
        assert_eq!(
            json,
            r#"{"start":10,"end":20,"encoding":"quoted-printable"}"#
        );
        assert_eq!(
            serde_json::from_str::<Layer>(&json).expect("reads back"),
            layer
        );
        let names = [Identity, Base64, QuotedPrintable, Uuencode]
            .map(|encoding| serde_json::to_string(&encoding).expect("serialises"));
        assert_eq!(
            names,
            [
                r#""identity""#,
                r#""base64""#,
                r#""quoted-printable""#,
                r#""uuencode""#
            ]
        );
    }

    #[test]
    fn identity_is_the_bytes_as_they_are() {
        check(Identity, "", "");
        check(Identity, "a=41\r\n\0 \u{e9}", "a=41\r\n\0 \u{e9}");
    }

    #[test]
    fn base64_skips_what_is_not_its_alphabet_and_ends_quanta_at_padding() {
        let cases = [
            ("", ""),
            ("QUJD", "ABC"),
            ("QUJDREVG", "ABCDEF"),
            ("QUJD\r\nREVG\r\n", "ABCDEF"),
            ("QU\nJD", "ABC"),
            (" Q U\tJ D ", "ABC"),
            ("QUI=", "AB"),
            ("QQ==", "A"),
            ("QUI=QUJD", "ABABC"),
            ("QQ==\r\nQQ==", "AA"),
            ("====", ""),
            // Stray bytes, as Python's non-strict decoder skips them.
            ("!QU*JD~", "ABC"),
            ("QU\u{e9}JD", "ABC"),
            ("-QUJD-\r\n--", "ABC"),
            // Unpadded at the end: 3 or 2 characters give 2 or 1 bytes, 1 none.
            ("QUJ", "AB"),
            ("QQ", "A"),
            ("Q", ""),
            ("QUJDQ", "ABC"),
            // A lone character before `=` gives its 6 bits, as mail-parser does.
            ("Q=", "@"),
            ("Q===QQ==", "@A"),
        ];
        for (input, expected) in cases {
            check(Base64, input, expected);
        }
        check(Base64, "////", [0xFF; 3]);
        check(Base64, "AAAA\nAA==", [0; 4]);
    }

    #[test]
    fn quoted_printable_decodes_escapes_and_soft_breaks_and_keeps_hard_breaks() {
        let cases = [
            ("", ""),
            ("plain text", "plain text"),
            ("a=41b", "aAb"),
            ("=4a=4A", "JJ"),
            ("a=\r\nb", "ab"),
            ("a=\nb", "ab"),
            ("a= \t\r\nb", "ab"),
            ("x=\n=\ny", "xy"),
            ("=\n", ""),
            // Line breaks stay as they came.
            ("a\r\n\r\nb\n", "a\r\n\r\nb\n"),
            ("a\nb\r\nc", "a\nb\r\nc"),
            ("a\rb", "a\rb"),
            // White space at the end of a line goes, unless encoded; before
            // a soft break it is not at the end.
            ("a  \r\nb", "a\r\nb"),
            ("a \t\x0c\nb", "a\nb"),
            ("a=20\nb", "a \nb"),
            ("a=20 \nb", "a \nb"),
            ("a =\nb", "a b"),
            ("a b", "a b"),
            // At the end of the input, as at the end of a line.
            ("a  ", "a"),
            ("a=", "a"),
            ("a= ", "a"),
            // Any other `=` is kept, with what follows it.
            ("=G1", "=G1"),
            ("=4G", "=4G"),
            ("=4\r\nx", "=4\r\nx"),
            ("a==41", "a=A"),
            ("= 41", "= 41"),
            ("a=4", "a=4"),
            ("100%", "100%"),
        ];
        for (input, expected) in cases {
            check(QuotedPrintable, input, expected);
        }
        check(QuotedPrintable, "=e9=E9=FF=00", [0xE9, 0xE9, 0xFF, 0x00]);
    }

    #[test]
    fn quoted_printable_keeps_a_run_of_white_space_too_long_to_be_padding() {
        let held = format!("a{}\nb", " ".repeat(MAX_HELD_SPACE));
        check(QuotedPrintable, held, "a\nb");
        let long = format!("a{}\nb", " ".repeat(MAX_HELD_SPACE + 1));
        check(QuotedPrintable, &long, &long);
        let after_equals = format!("={}\nb", "\t".repeat(MAX_HELD_SPACE + 5));
        check(QuotedPrintable, &after_equals, &after_equals);
    }

    // Encoded lines below are Python's `binascii.b2a_uu`, with and without
    // `backtick=True`.
    #[test]
    fn uuencode_decodes_the_lines_between_begin_and_end() {
        let file = "begin 644 hello.txt\n-2&5L;&\\L('=O<FQD(0``\n`\nend\n";
        check(Uuencode, file, "Hello, world!");
        check(Uuencode, file.replace('\n', "\r\n"), "Hello, world!");
        check(
            Uuencode,
            "begin 600 a\n-2&5L;&\\L('=O<FQD(0  \n \nend",
            "Hello, world!",
        );
        let binary = "M``$\"`P0%!@<(\"0H+#`T.#Q`1$A,4%187&!D:&QP='A\\@(2(C)\"4F)R@I*BLL\n";
        let spaces = "M  $\" P0%!@<(\"0H+# T.#Q 1$A,4%187&!D:&QP='A\\@(2(C)\"4F)R@I*BLL\n";
        let first_45: Vec<u8> = (0..45).collect();
        check(
            Uuencode,
            format!("begin 644 b\n{binary}`\nend\n"),
            &first_45,
        );
        check(
            Uuencode,
            format!("begin 644 b\n{spaces}{binary} \nend\n"),
            [&first_45[..]; 2].concat(),
        );
    }

    #[test]
    fn uuencode_skips_what_comes_before_and_after_the_data() {
        let preamble =
            "Here is the file you asked for:\r\n\r\nbegin 644 abc.txt\r\n#86)C\r\n`\r\nend\r\n";
        check(Uuencode, preamble, "abc");
        let after = "begin 644 a\n#86)C\n`\nend\nbegin 644 b\n#86)C\n`\nend\n";
        check(Uuencode, after, "abc");
        // `end` alone ends the data; so does an empty line.
        check(Uuencode, "begin 644 a\n#86)C\nend\n#86)C\n", "abc");
        check(Uuencode, "begin 644 a\n#86)C\n\n#86)C\n", "abc");
        // Not begin lines: no mode, or no space before the name.
        check(Uuencode, "begin 644\nbegin x a\nbegin 644a\n", "");
        check(Uuencode, "", "");
        check(Uuencode, "just text\n", "");
    }

    #[test]
    fn uuencode_without_a_begin_line_starts_at_the_first_data_line() {
        check(Uuencode, "#86)C\n#86)C", "abcabc");
        check(Uuencode, "Hi,\r\n\r\n#86)C\r\n`\r\nend\r\n", "abc");
        // A line with too few or too many characters for its length is no data.
        check(Uuencode, "#86\n#86)C)C)\n#86)C\n", "abc");
    }

    #[test]
    fn uuencode_zero_fills_a_line_shorter_than_it_claims() {
        // `a\0\0` is `#80  `; transports strip the trailing spaces.
        check(Uuencode, "begin 644 a\n#80\n`\nend\n", b"a\0\0");
        check(Uuencode, "begin 644 a\n#86\n`\nend\n", b"a`\0");
        check(Uuencode, "begin 644 a\n#\n`\nend\n", [0; 3]);
        // But never to more than three times the line's own bytes: no
        // thirty-fold bomb.
        check(Uuencode, "begin 644 a\n_\n", [0; 6]);
        check(
            Uuencode,
            format!("begin 644 a\n{}", "M\n".repeat(1000)),
            [0; 6000],
        );
    }

    fn run_pipeline(layers: &[Layer], raw: &[u8], from: usize, chunk: usize) -> Vec<u8> {
        let mut pipeline = Pipeline::new(layers);
        let mut out = Vec::new();
        for (index, piece) in raw[from..].chunks(chunk).enumerate() {
            pipeline.feed((from + index * chunk) as u64, piece, &mut out);
        }
        pipeline.finish(&mut out);
        out
    }

    #[test]
    fn a_pipeline_decodes_its_range_from_chunks_at_any_offset() {
        let raw = b"headers\r\n\r\nQUJD\r\nREVG\r\n--boundary";
        let layer = Layer {
            start: 11,
            end: 23,
            encoding: Base64,
        };
        for chunk in 1..raw.len() + 1 {
            for from in [0, 5, 11] {
                assert_eq!(
                    run_pipeline(&[layer], raw, from, chunk),
                    b"ABCDEF",
                    "{chunk} {from}"
                );
            }
        }
        assert_eq!(run_pipeline(&[], raw, 0, 7), raw);
        assert_eq!(run_pipeline(&[], raw, 9, 7), &raw[9..]);
        // Layer 1 takes bytes 1..4 of "ABCDEF".
        let inner = Layer {
            start: 1,
            end: 4,
            encoding: Identity,
        };
        assert_eq!(run_pipeline(&[layer, inner], raw, 0, 5), b"BCD");
        // A range past the end of what is below ends with it.
        let beyond = Layer {
            start: 4,
            end: 100,
            encoding: Base64,
        };
        let raw = b"xxxxQUJDQQ";
        assert_eq!(run_pipeline(&[beyond], raw, 0, 3), b"ABCA");
        let inner = Layer {
            start: 2,
            end: 100,
            encoding: Identity,
        };
        assert_eq!(run_pipeline(&[beyond, inner], raw, 0, 3), b"CA");
    }

    #[test]
    fn a_pipeline_is_done_once_its_innermost_range_is_past() {
        let raw = b"QUJDREVGR0hJ";
        let outer = Layer {
            start: 0,
            end: 12,
            encoding: Base64,
        };
        let inner = Layer {
            start: 0,
            end: 2,
            encoding: Identity,
        };
        let mut pipeline = Pipeline::new(&[outer, inner]);
        let mut out = Vec::new();
        pipeline.feed(0, &raw[..3], &mut out);
        assert!(!pipeline.done());
        assert_eq!(out, b"");
        pipeline.feed(3, &raw[3..4], &mut out);
        assert!(
            pipeline.done(),
            "the inner range ended at the 2nd byte of 9"
        );
        assert_eq!(out, b"AB");
        pipeline.feed(4, &raw[4..], &mut out);
        pipeline.finish(&mut out);
        assert_eq!(out, b"AB");

        let mut pipeline = Pipeline::new(&[outer]);
        let mut out = Vec::new();
        pipeline.feed(0, &raw[..11], &mut out);
        assert!(!pipeline.done());
        pipeline.feed(11, &raw[11..], &mut out);
        assert!(pipeline.done());
        assert_eq!(out, b"ABCDEFGHI");
        assert!(!Pipeline::new(&[]).done());
    }
}

/// Properties over arbitrary input, and agreement with mail-parser (proptest
/// does not build for wasm32).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::TransferEncoding::{Base64, Identity, QuotedPrintable, Uuencode};
    use super::*;
    use ::base64::Engine as _;
    use mail_parser::{MessageParser, MimeHeaders as _};
    use proptest::prelude::*;
    use proptest::sample::Index;
    use std::ops::Range;

    fn decode(encoding: TransferEncoding, input: &[u8]) -> Vec<u8> {
        let mut decoder = Decoder::new(encoding);
        let mut out = Vec::new();
        decoder.feed(input, &mut out);
        decoder.finish(&mut out);
        out
    }

    fn header_name(encoding: TransferEncoding) -> &'static str {
        match encoding {
            Identity => "8bit",
            Base64 => "base64",
            QuotedPrintable => "quoted-printable",
            Uuencode => "x-uuencode",
        }
    }

    /// What mail-parser decodes `body` to, as a one-part message.
    fn parsed_alone(encoding: TransferEncoding, body: &[u8]) -> Vec<u8> {
        let mut message = format!(
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: {}\r\n\r\n",
            header_name(encoding)
        )
        .into_bytes();
        message.extend_from_slice(body);
        let parsed = MessageParser::default().parse(&message).expect("parses");
        let part = parsed.part(0).expect("has its part");
        assert!(
            !part.is_encoding_problem,
            "mail-parser gave up on {:?}",
            String::from_utf8_lossy(body)
        );
        part.contents().to_vec()
    }

    /// A multipart message with `body` as its attachment, mail-parser's
    /// decoding of it, and the range of its body (as ingest records it).
    fn parsed_in_multipart(
        encoding: TransferEncoding,
        body: &[u8],
    ) -> (Vec<u8>, Vec<u8>, Range<usize>) {
        let mut message = format!(
            "Content-Type: multipart/mixed; boundary=\"b0undary\"\r\n\r\npreamble\r\n\
             --b0undary\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n\
             --b0undary\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=\"x.bin\"\r\n\
             Content-Transfer-Encoding: {}\r\n\r\n",
            header_name(encoding)
        )
        .into_bytes();
        message.extend_from_slice(body);
        message.extend_from_slice(b"\r\n--b0undary--\r\n");
        let parsed = MessageParser::default().parse(&message).expect("parses");
        let part = parsed.attachment(0).expect("has the attachment");
        assert_eq!(part.attachment_name(), Some("x.bin"));
        assert!(
            !part.is_encoding_problem,
            "mail-parser gave up on {:?}",
            String::from_utf8_lossy(body)
        );
        let range = part.raw_body_offset() as usize..part.raw_end_offset() as usize;
        let contents = part.contents().to_vec();
        (message, contents, range)
    }

    /// Input made mostly of what the decoders look at, malformed included.
    fn hostile() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"=".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b" ".to_vec()),
            Just(b"\t".to_vec()),
            Just(vec![0x0C]),
            Just(b"=4".to_vec()),
            Just(b"=4a".to_vec()),
            Just(b"=\r\n".to_vec()),
            Just(b"==".to_vec()),
            Just(b"QUJD".to_vec()),
            Just(b"QQ==".to_vec()),
            Just(b"M".to_vec()),
            Just(b"`".to_vec()),
            Just(b"#86)C".to_vec()),
            Just(b"begin 644 f\n".to_vec()),
            Just(b"end".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
            "[A-Za-z0-9+/]{0,12}".prop_map(String::into_bytes),
            (MAX_HELD_SPACE - 2..MAX_HELD_SPACE + 3).prop_map(|n| vec![b' '; n]),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
    }

    fn any_encoding() -> impl Strategy<Value = TransferEncoding> {
        prop_oneof![
            Just(Identity),
            Just(Base64),
            Just(QuotedPrintable),
            Just(Uuencode)
        ]
    }

    /// Cut points into a slice of `len` bytes, in order.
    fn cut_points(cuts: &[Index], len: usize) -> Vec<usize> {
        let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(len + 1)).collect();
        points.sort_unstable();
        points
    }

    fn pieces<'a>(input: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
        let mut pieces = Vec::new();
        let mut from = 0;
        for &point in points.iter().chain([&input.len()]) {
            pieces.push(&input[from..point]);
            from = point;
        }
        pieces
    }

    /// `data` quoted-printable encoded as a correct encoder does: `lines` are
    /// the hard lines (CR and LF inside them encoded), soft breaks keep each
    /// encoded line within `width`, white space at the end of a line is
    /// encoded.
    fn qp_encode(lines: &[Vec<u8>], line_break: &str, width: usize, lowercase: bool) -> Vec<u8> {
        let mut encoded = Vec::new();
        for (index, line) in lines.iter().enumerate() {
            if index > 0 {
                encoded.extend_from_slice(line_break.as_bytes());
            }
            let mut column = 0;
            for (at, &byte) in line.iter().enumerate() {
                let last = at + 1 == line.len();
                let plain = (33..=126).contains(&byte) && byte != b'='
                    || matches!(byte, b' ' | b'\t') && !last;
                let token = if plain {
                    vec![byte]
                } else if lowercase {
                    format!("={byte:02x}").into_bytes()
                } else {
                    format!("={byte:02X}").into_bytes()
                };
                if column + token.len() + 1 > width {
                    encoded.push(b'=');
                    encoded.extend_from_slice(line_break.as_bytes());
                    column = 0;
                }
                column += token.len();
                encoded.extend_from_slice(&token);
            }
        }
        encoded
    }

    /// `data` uuencoded: 45 bytes a line, zeros written as `zero` (a backquote
    /// or, as older encoders did, a space).
    fn uu_encode(data: &[u8], zero: u8, line_break: &str) -> Vec<u8> {
        let char_of = |bits: u32| {
            let value = (bits & 63) as u8;
            if value == 0 { zero } else { value + b' ' }
        };
        let mut encoded = Vec::new();
        for line in data.chunks(45) {
            encoded.push(char_of(line.len() as u32));
            for group in line.chunks(3) {
                let byte = |i: usize| u32::from(group.get(i).copied().unwrap_or(0));
                let word = (byte(0) << 16) | (byte(1) << 8) | byte(2);
                encoded.extend([18, 12, 6, 0].map(|shift| char_of(word >> shift)));
            }
            encoded.extend_from_slice(line_break.as_bytes());
        }
        encoded
    }

    #[test]
    fn mail_parser_gives_a_lone_character_before_padding_a_byte_as_we_do() {
        for body in ["QUJDQ=", "QUJDQ==", "QUJDQU=", "Q=QUJD"] {
            assert_eq!(
                decode(Base64, body.as_bytes()),
                parsed_alone(Base64, body.as_bytes()),
                "{body}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_split_decodes_like_the_whole_input(
            encoding in any_encoding(),
            input in hostile(),
            cuts in proptest::collection::vec(any::<Index>(), 0..8),
        ) {
            let whole = decode(encoding, &input);
            let mut decoder = Decoder::new(encoding);
            let mut out = Vec::new();
            for piece in pieces(&input, &cut_points(&cuts, input.len())) {
                decoder.feed(piece, &mut out);
            }
            decoder.finish(&mut out);
            prop_assert_eq!(&out, &whole);
            prop_assert_eq!(decoded_len(encoding, &input), whole.len() as u64);
            // A finished decoder is as new.
            decoder.feed(&input, &mut out);
            decoder.finish(&mut out);
            prop_assert_eq!(&out[whole.len()..], &whole[..]);
        }

        #[test]
        fn base64_agrees_with_mail_parser(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            width in 1usize..100,
            line_break in prop_oneof![Just("\r\n"), Just("\n")],
            ends_with_break in any::<bool>(),
            strays in proptest::collection::vec((any::<Index>(), prop_oneof![Just(b' '), Just(b'\t')]), 0..6),
        ) {
            let text = ::base64::engine::general_purpose::STANDARD.encode(&data);
            let mut body = text
                .as_bytes()
                .chunks(width)
                .collect::<Vec<_>>()
                .join(line_break.as_bytes());
            if ends_with_break {
                body.extend_from_slice(line_break.as_bytes());
            }
            for (at, stray) in strays {
                body.insert(at.index(body.len() + 1), stray);
            }
            prop_assert_eq!(&decode(Base64, &body), &data);
            prop_assert_eq!(&parsed_alone(Base64, &body), &data);
            let (message, contents, range) = parsed_in_multipart(Base64, &body);
            prop_assert_eq!(&contents, &data);
            prop_assert_eq!(&decode(Base64, &message[range]), &data);
        }

        #[test]
        fn quoted_printable_agrees_with_mail_parser(
            lines in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![any::<u8>(), Just(b' '), Just(b'\t'), Just(b'='), Just(b'a')],
                    0..120,
                ),
                1..6,
            ),
            width in 4usize..=76,
            line_break in prop_oneof![Just("\r\n"), Just("\n")],
            lowercase in any::<bool>(),
            padding in proptest::collection::vec((any::<Index>(), "[ \t]{1,3}"), 0..4),
        ) {
            let encoded = qp_encode(&lines, line_break, width, lowercase);
            // Transport padding (white space added at the end of lines, which
            // RFC 2045 has decoders drop), before any line break.
            let mut encoded_lines: Vec<String> = String::from_utf8(encoded)
                .expect("quoted-printable is ASCII")
                .split(line_break)
                .map(str::to_owned)
                .collect();
            let padded = encoded_lines.len() - 1;
            for (line, space) in padding {
                if padded > 0 {
                    encoded_lines[line.index(padded)].push_str(&space);
                }
            }
            let body = encoded_lines.join(line_break).into_bytes();
            let data = lines.join(line_break.as_bytes());
            prop_assert_eq!(&decode(QuotedPrintable, &body), &data);
            prop_assert_eq!(&parsed_alone(QuotedPrintable, &body), &data);
            let (message, contents, range) = parsed_in_multipart(QuotedPrintable, &body);
            prop_assert_eq!(&contents, &data);
            prop_assert_eq!(&decode(QuotedPrintable, &message[range]), &data);
        }

        #[test]
        fn uuencode_round_trips(
            // Zero bytes are often enough at a line's end to be stripped.
            data in proptest::collection::vec(prop_oneof![any::<u8>(), Just(0)], 0..400),
            zero in prop_oneof![Just(b'`'), Just(b' ')],
            line_break in prop_oneof![Just("\r\n"), Just("\n")],
            begin in any::<bool>(),
            strip_trailing_spaces in any::<bool>(),
        ) {
            let mut file = Vec::new();
            if begin {
                file.extend_from_slice(format!("Here is the file:{line_break}{line_break}begin 644 f.bin{line_break}").as_bytes());
            }
            file.extend(uu_encode(&data, zero, line_break));
            file.extend_from_slice(format!("{}{line_break}end{line_break}", char::from(zero)).as_bytes());
            if begin && strip_trailing_spaces {
                // Transports that strip trailing spaces lose zeros: the
                // decoder zero-fills them back.
                let text: Vec<&[u8]> = file.split(|&b| b == b'\n').collect();
                file = text
                    .iter()
                    .map(|line| {
                        let line = line.strip_suffix(b"\r").unwrap_or(line);
                        let kept = line.len() - line.iter().rev().take_while(|&&b| b == b' ').count();
                        let cr = if line_break == "\r\n" { &b"\r"[..] } else { b"" };
                        [&line[..kept], cr].concat()
                    })
                    .collect::<Vec<_>>()
                    .join(&b'\n');
            }
            prop_assert_eq!(decode(Uuencode, &file), data);
        }

        #[test]
        fn a_pipeline_fed_any_chunks_gives_the_nested_part(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            encoding in prop_oneof![Just(Base64), Just(QuotedPrintable), Just(Identity)],
            chunk in 1usize..700,
            from in any::<Index>(),
        ) {
            // Unencoded, the part keeps off line breaks and boundaries.
            let data: Vec<u8> = if encoding == Identity {
                data.iter().map(|&b| if matches!(b, b'\r' | b'\n' | b'-') { b'x' } else { b }).collect()
            } else {
                data
            };
            let body = match encoding {
                Base64 => ::base64::engine::general_purpose::STANDARD
                    .encode(&data)
                    .as_bytes()
                    .chunks(76)
                    .collect::<Vec<_>>()
                    .join(&b"\r\n"[..]),
                QuotedPrintable => qp_encode(std::slice::from_ref(&data), "\r\n", 76, false),
                _ => data.clone(),
            };
            let mut inner = format!(
                "Content-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\n\
                 Content-Type: application/octet-stream\r\n\
                 Content-Transfer-Encoding: {}\r\n\r\n",
                header_name(encoding)
            )
            .into_bytes();
            inner.extend_from_slice(&body);
            inner.extend_from_slice(b"\r\n--inner--\r\n");
            let inner_base64 = ::base64::engine::general_purpose::STANDARD.encode(&inner);
            let mut raw = b"Content-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\n\
                Content-Type: text/plain\r\n\r\nForwarded.\r\n--outer\r\n\
                Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                .to_vec();
            raw.extend(inner_base64.as_bytes().chunks(76).collect::<Vec<_>>().join(&b"\r\n"[..]));
            raw.extend_from_slice(b"\r\n--outer--\r\n");

            let parsed = MessageParser::default().parse(&raw).expect("parses");
            let forwarded = parsed.attachment(0).expect("has the message");
            let nested = forwarded.message().expect("is a message");
            let part = nested.part(1).expect("has the part");
            let expected = part.contents();
            prop_assert_eq!(expected, &data[..]);
            let layers = [
                Layer { start: forwarded.raw_body_offset().into(), end: forwarded.raw_end_offset().into(), encoding: Base64 },
                Layer { start: part.raw_body_offset().into(), end: part.raw_end_offset().into(), encoding },
            ];

            // Reading starts at or before the range, as chunks are read, and
            // stops once the pipeline is done.
            let from = from.index(layers[0].start as usize + 1);
            let mut pipeline = Pipeline::new(&layers);
            let mut out = Vec::new();
            let mut read = from;
            for piece in raw[from..].chunks(chunk) {
                if pipeline.done() {
                    break;
                }
                pipeline.feed(read as u64, piece, &mut out);
                read += piece.len();
            }
            prop_assert!(pipeline.done(), "done once the outer range is past");
            prop_assert!(read < layers[0].end as usize + chunk, "read {} past {}", read, layers[0].end);
            pipeline.finish(&mut out);
            prop_assert_eq!(&out[..], expected);
        }
    }
}
