//! `GET /api/export`: every message's raw bytes as mboxrd, oldest first,
//! streamed from the stored chunks: [`ExportReader`] reads one raw chunk per
//! pull, so neither the inbox nor a message is ever whole in memory.
//!
//! Each message is a separator line `From <sender> <asctime UTC>`, its raw
//! bytes with every line matching `^>*From ` given one more `>` (mboxrd, so
//! a reader that removes one `>` from such lines gets the bytes back, even
//! lines that were `>From ` already), a line break if the message did not
//! end with one, and a blank line. A message deleted while the export runs
//! is skipped if it went before its first chunk was read; one whose chunks
//! vanish mid-way ends the body with an error (the export is then cut off,
//! never silently wrong).

use crate::store;
use protocol::Timestamp;
use schema::{Row, Sql, SqlError, Value};

/// mboxrd quoting as a streaming state machine: bytes in, the same bytes
/// out with `>` before every line that matches `^>*From `, whatever the
/// chunk boundaries.
#[derive(Debug, Clone)]
pub(crate) struct Quoter {
    /// At the start of a line, nothing of it seen yet.
    at_line_start: bool,
    /// The start of the current line held back while it may still be
    /// `>*From ` (only `>`s, then a prefix of `From `).
    held: Vec<u8>,
}

const FROM: &[u8] = b"From ";

impl Default for Quoter {
    fn default() -> Self {
        Quoter {
            at_line_start: true,
            held: Vec::new(),
        }
    }
}

impl Quoter {
    /// Quotes `bytes`, appending to `out`.
    pub(crate) fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        for &byte in bytes {
            if self.at_line_start || !self.held.is_empty() {
                self.at_line_start = false;
                let arrows = self.held.iter().take_while(|&&b| b == b'>').count();
                let matched = self.held.len() - arrows;
                if byte == b'>' && matched == 0 {
                    self.held.push(byte);
                    continue;
                }
                if byte == FROM[matched] {
                    self.held.push(byte);
                    if matched + 1 == FROM.len() {
                        out.push(b'>');
                        out.append(&mut self.held);
                    }
                    continue;
                }
                out.append(&mut self.held);
            }
            out.push(byte);
            self.at_line_start = byte == b'\n';
        }
    }

    /// The end of the message: what was held back goes out as it is.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
        self.at_line_start = true;
    }
}

/// Removes one `>` from every line matching `^>+From ` (what an mboxrd
/// reader does): for the properties below.
#[cfg(all(test, not(target_arch = "wasm32")))]
fn unquote(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let arrows = line.iter().take_while(|&&b| b == b'>').count();
        if arrows > 0 && line[arrows..].starts_with(FROM) {
            out.extend_from_slice(&line[1..]);
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

/// The separator line of a message from `sender` received at `at`.
pub(crate) fn separator(sender: &str, at: Timestamp) -> Vec<u8> {
    let sender = if sender.is_empty() || sender.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        "MAILER-DAEMON"
    } else {
        sender
    };
    format!("From {sender} {}\n", asctime(at)).into_bytes()
}

/// `Mon Dec  2 12:00:00 2026` (UTC), as mbox separators write dates.
fn asctime(at: Timestamp) -> String {
    let secs = at.millis().div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {day:>2} {:02}:{:02}:{:02} {year}",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Howard Hinnant's `civil_from_days`: the date of day `z` since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The message being exported.
#[derive(Debug)]
struct Current {
    id: u64,
    next_chunk: u32,
    chunks: u32,
    quoter: Quoter,
    /// The last byte written of it.
    last: Option<u8>,
}

/// Pulls the export one piece at a time (one SQL query or chunk per pull).
#[derive(Debug, Default)]
pub(crate) struct ExportReader {
    /// The id of the last message begun.
    after: u64,
    current: Option<Current>,
    done: bool,
}

impl ExportReader {
    /// The next piece of the body, or `None` at its end.
    pub(crate) fn next(&mut self, sql: &dyn Sql) -> Result<Option<Vec<u8>>, SqlError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let Some(current) = &mut self.current else {
                let rows = sql.exec(
                    "SELECT id, from_addr, received_at FROM messages WHERE id > ?
                     ORDER BY id LIMIT 1",
                    &[Value::Integer(self.after as i64)],
                )?;
                let Some(row) = rows.single()? else {
                    self.done = true;
                    return Ok(None);
                };
                let id = row.int(0)? as u64;
                self.after = id;
                let Some(chunks) = store::raw_chunks(sql, id)? else {
                    continue;
                };
                let at = Timestamp::from_millis(row.int(2)?);
                let head = separator(row.text(1)?, at);
                self.current = Some(Current {
                    id,
                    next_chunk: 0,
                    chunks,
                    quoter: Quoter::default(),
                    last: None,
                });
                return Ok(Some(head));
            };
            let mut out = Vec::new();
            if current.next_chunk < current.chunks {
                let chunk = store::raw_chunk(sql, current.id, current.next_chunk)?
                    .ok_or_else(|| SqlError::new("a raw chunk vanished while it was exported"))?;
                current.next_chunk += 1;
                if let Some(&last) = chunk.last() {
                    current.last = Some(last);
                }
                current.quoter.feed(&chunk, &mut out);
            } else {
                current.quoter.finish(&mut out);
                if current.last != Some(b'\n') {
                    out.push(b'\n');
                }
                out.push(b'\n');
                self.current = None;
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut q = Quoter::default();
        q.feed(bytes, &mut out);
        q.finish(&mut out);
        out
    }

    #[test]
    fn from_lines_are_quoted_once_more() {
        assert_eq!(quote(b"From me\n"), b">From me\n");
        assert_eq!(
            quote(b"a\nFrom x\n>From y\n>>From z\n"),
            b"a\n>From x\n>>From y\n>>>From z\n"
        );
        assert_eq!(quote(b"a From x\nFrom"), b"a From x\nFrom");
        assert_eq!(
            quote(b"From: header\r\n\r\nFrom now on\r\n"),
            b"From: header\r\n\r\n>From now on\r\n"
        );
        assert_eq!(quote(b">Fro\n>>\nFrom"), b">Fro\n>>\nFrom");
        assert_eq!(quote(b""), b"");
    }

    #[test]
    fn dates_are_asctime() {
        assert_eq!(
            asctime(Timestamp::from_millis(0)),
            "Thu Jan  1 00:00:00 1970"
        );
        assert_eq!(
            asctime(Timestamp::from_millis(1_795_953_600_000)),
            "Sun Nov 29 12:00:00 2026"
        );
        assert_eq!(
            separator("a b@x", Timestamp::from_millis(0)),
            b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n"
        );
    }
}

/// Properties over arbitrary bytes and chunkings (proptest does not build
/// for wasm32).
#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"From ".to_vec()),
            Just(b">From ".to_vec()),
            Just(b">>From x".to_vec()),
            Just(b"Fro".to_vec()),
            Just(b">".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            prop::collection::vec(any::<u8>(), 0..8),
        ]
    }

    proptest! {
        /// Quoting in any chunks, then unquoting, gives the bytes back, and
        /// no line of the output starts with `From `.
        #[test]
        fn quoting_round_trips_across_chunks(
            parts in prop::collection::vec(line(), 0..30),
            cuts in prop::collection::vec(0usize..200, 0..8),
        ) {
            let bytes: Vec<u8> = parts.concat();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut out = Vec::new();
            let mut q = Quoter::default();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                q.feed(&bytes[start..cut], &mut out);
                start = cut;
            }
            q.finish(&mut out);
            prop_assert_eq!(unquote(&out), bytes);
            for line in out.split(|&b| b == b'\n') {
                prop_assert!(!line.starts_with(FROM));
            }
        }
    }
}
