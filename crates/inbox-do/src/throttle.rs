//! Rate-limiter objects: a token bucket in an object named for what it
//! limits (see [`protocol::wire::InboxRequest::Throttle`]).
//!
//! The bucket is a pure function, [`take`]: its state and the time in, a
//! decision out. Around it, the SQL is thin: a limiter object never migrates
//! to the inbox schema; it keeps only its one-row `limiter_bucket` table, and
//! sets its alarm for when the bucket is full again. At that alarm it deletes
//! its storage, so that the objects of addresses that stopped calling do not
//! stay forever (the next call starts from a full bucket, as it would have).

use crate::error::InboxError;
use protocol::{ApiError, ErrorCode, Reply, Timestamp};
use schema::{Row, Sql, SqlError, Value};

/// Thousandths of a token: the bucket's unit.
const ONE: i64 = 1000;

/// A bucket's stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket {
    pub(crate) milli_tokens: i64,
    pub(crate) updated_at: Timestamp,
}

/// `limit` tokens per `window_millis`, refilled continuously.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rate {
    pub(crate) limit: u32,
    pub(crate) window_millis: i64,
}

/// What one request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// A token was taken: store `bucket`; it is full again at `full_at`.
    Take { bucket: Bucket, full_at: Timestamp },
    /// None left: retry in this many seconds (at least 1).
    Refuse { retry_after_seconds: u64 },
}

/// Takes a token from `bucket` (`None`: a full one) at `now`.
pub(crate) fn take(bucket: Option<Bucket>, rate: Rate, now: Timestamp) -> Decision {
    let capacity = i64::from(rate.limit.max(1)) * ONE;
    let window = rate.window_millis.max(1);
    let tokens = match bucket {
        Some(bucket) => {
            let elapsed = (now.millis() - bucket.updated_at.millis()).max(0);
            // i128: a long-idle bucket must not overflow on its way to full.
            let refill = i128::from(elapsed) * i128::from(capacity) / i128::from(window);
            let held = i128::from(bucket.milli_tokens.clamp(0, capacity));
            i64::try_from((held + refill).min(i128::from(capacity))).unwrap_or(capacity)
        }
        None => capacity,
    };
    if tokens >= ONE {
        let left = tokens - ONE;
        // The time to refill what is missing, rounded up.
        let (missing, capacity) = (i128::from(capacity - left), i128::from(capacity));
        let refill_millis = (missing * i128::from(window) + capacity - 1) / capacity;
        Decision::Take {
            bucket: Bucket {
                milli_tokens: left,
                updated_at: now,
            },
            full_at: now.plus_millis(i64::try_from(refill_millis).unwrap_or(window)),
        }
    } else {
        let wait_millis = ((ONE - tokens) * window + capacity - 1) / capacity;
        let seconds = u64::try_from(wait_millis)
            .unwrap_or(1)
            .div_ceil(1000)
            .max(1);
        Decision::Refuse {
            retry_after_seconds: seconds,
        }
    }
}

const CREATE_BUCKET: &str = "CREATE TABLE IF NOT EXISTS limiter_bucket (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    milli_tokens INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    full_at INTEGER NOT NULL
) STRICT";

/// Serves one `Throttle`: 204 with the time to set the alarm to, or 429
/// with `Retry-After`.
pub(crate) fn serve(
    sql: &dyn Sql,
    rate: Rate,
    now: Timestamp,
) -> Result<(Reply, Option<Timestamp>), InboxError> {
    sql.exec(CREATE_BUCKET, &[])?;
    let rows = sql.exec(
        "SELECT milli_tokens, updated_at FROM limiter_bucket WHERE id = 1",
        &[],
    )?;
    let bucket = match rows.single()? {
        Some(row) => Some(Bucket {
            milli_tokens: row.int(0)?,
            updated_at: Timestamp::from_millis(row.int(1)?),
        }),
        None => None,
    };
    match take(bucket, rate, now) {
        Decision::Take { bucket, full_at } => {
            sql.exec(
                "INSERT OR REPLACE INTO limiter_bucket (id, milli_tokens, updated_at, full_at)
                 VALUES (1, ?, ?, ?)",
                &[
                    Value::Integer(bucket.milli_tokens),
                    Value::Integer(bucket.updated_at.millis()),
                    Value::Integer(full_at.millis()),
                ],
            )?;
            Ok((Reply::no_content(), Some(full_at)))
        }
        Decision::Refuse {
            retry_after_seconds,
        } => Err(InboxError::from(ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "Too many requests from here: {} per {} s. Retry in {retry_after_seconds} s.",
                rate.limit,
                rate.window_millis.max(1) / 1000
            ),
        ))
        .with_header("retry-after", retry_after_seconds.to_string())),
    }
}

/// What a limiter's alarm found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cleanup {
    /// This object is not a limiter (or no longer has a bucket).
    NotALimiter,
    /// The bucket is full: the object's storage was deleted.
    Cleared,
    /// Not full yet (a token was taken since): wake again then.
    Later(Timestamp),
}

/// A limiter's alarm: once its bucket is full, it deletes every table the
/// object has (an object that served as a limiter under an older build has
/// the whole inbox schema, empty). An object with an inbox owner is never
/// cleared.
pub(crate) fn cleanup(sql: &dyn Sql, now: Timestamp) -> Result<Cleanup, SqlError> {
    if !crate::erase::has_table(sql, "limiter_bucket")? {
        return Ok(Cleanup::NotALimiter);
    }
    let rows = sql.exec("SELECT full_at FROM limiter_bucket WHERE id = 1", &[])?;
    if let Some(row) = rows.single()? {
        let full_at = Timestamp::from_millis(row.int(0)?);
        if full_at > now {
            return Ok(Cleanup::Later(full_at));
        }
    }
    if crate::erase::has_table(sql, "inbox")?
        && !sql
            .exec("SELECT 1 FROM inbox WHERE id = 1", &[])?
            .rows
            .is_empty()
    {
        // Defensive: an inbox is never a limiter; keep its data.
        log::error!("an inbox object holds a limiter bucket; dropping only the bucket");
        sql.exec("DROP TABLE limiter_bucket", &[])?;
        return Ok(Cleanup::NotALimiter);
    }
    sql.transaction(&mut || crate::erase::drop_every_table(sql))?;
    Ok(Cleanup::Cleared)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate {
        limit: 3,
        window_millis: 60_000,
    };

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_millis(millis)
    }

    fn taken(decision: Decision) -> (Bucket, Timestamp) {
        match decision {
            Decision::Take { bucket, full_at } => (bucket, full_at),
            Decision::Refuse { .. } => panic!("refused: {decision:?}"),
        }
    }

    #[test]
    fn a_full_bucket_gives_its_tokens_then_refuses_until_it_refills() {
        let (first, full_at) = taken(take(None, RATE, at(0)));
        assert_eq!(first.milli_tokens, 2000);
        // One token of three refills in a third of the window.
        assert_eq!(full_at, at(20_000));
        let (second, _) = taken(take(Some(first), RATE, at(0)));
        let (third, full_at) = taken(take(Some(second), RATE, at(0)));
        assert_eq!((third.milli_tokens, full_at), (0, at(60_000)));
        assert_eq!(
            take(Some(third), RATE, at(0)),
            Decision::Refuse {
                retry_after_seconds: 20
            }
        );
        assert_eq!(
            take(Some(third), RATE, at(19_500)),
            Decision::Refuse {
                retry_after_seconds: 1
            }
        );
        let (after, full_at) = taken(take(Some(third), RATE, at(20_000)));
        assert_eq!((after.milli_tokens, full_at), (0, at(80_000)));
    }

    #[test]
    fn a_long_idle_bucket_is_full_and_never_overflows() {
        let empty = Bucket {
            milli_tokens: 0,
            updated_at: at(0),
        };
        let (bucket, _) = taken(take(Some(empty), RATE, at(i64::MAX / 2)));
        assert_eq!(bucket.milli_tokens, 2000);
        let huge = Rate {
            limit: u32::MAX,
            window_millis: 1,
        };
        let (bucket, full_at) = taken(take(Some(empty), huge, at(i64::MAX / 2)));
        assert_eq!(bucket.milli_tokens, i64::from(u32::MAX) * ONE - ONE);
        assert!(full_at >= at(i64::MAX / 2));
    }
}
