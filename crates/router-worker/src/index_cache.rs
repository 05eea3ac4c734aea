//! The KV index entries this isolate has read, kept so that the next
//! request with the same key (or mail to the same handle) skips the KV read.
//!
//! Only the two routing indexes are kept, and only entries that were found:
//! `key:<hash>` → inbox id and `handle:<handle>` → inbox id. Both values are
//! fixed for ever once written: a key's hash names one inbox (keys are random
//! and never move), and a handle's object id is derived from the handle. An
//! entry can only go away, never change. The InboxDO re-checks every key and
//! refuses mail and keys once deleted, so a kept entry whose KV entry has
//! since been deleted (by another isolate) grants nothing: it only sends the
//! request to the object that refuses it, as KV's own edge cache (up to 60 s)
//! already may. Absent entries are never kept: a key made a moment ago must
//! work at once.
//!
//! Bounded: past [`MAX_ENTRIES`] the whole cache is dropped and refilled from
//! KV. Forgotten when the router deletes the KV entry itself and when the
//! InboxDO refuses what the entry routed (401 for a key, 404 for mail).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The most entries kept (about 200 bytes each: at most about 2 MB of an
/// isolate's 128 MB).
pub const MAX_ENTRIES: usize = 10_000;

/// Found KV index entries, by KV key.
#[derive(Debug, Default)]
pub struct IndexCache {
    entries: Mutex<BTreeMap<String, String>>,
}

impl IndexCache {
    /// An empty cache (`const`, so a Worker can keep one in a `static`).
    pub const fn new() -> Self {
        IndexCache {
            entries: Mutex::new(BTreeMap::new()),
        }
    }

    /// The value kept for `key`, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        self.lock().get(key).cloned()
    }

    /// Keeps `value` for `key` (a value found in KV).
    pub fn keep(&self, key: &str, value: &str) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_owned(), value.to_owned());
    }

    /// Drops what is kept for `key`.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        // A panic while the map is held leaves it whole (every change is one
        // call on it), so a poisoned lock is still safe to use.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_forgets_and_is_dropped_whole_when_full() {
        let cache = IndexCache::new();
        assert_eq!(cache.get("key:a"), None);
        cache.keep("key:a", "id-a");
        assert_eq!(cache.get("key:a").as_deref(), Some("id-a"));
        cache.forget("key:a");
        assert_eq!(cache.get("key:a"), None);

        for n in 0..MAX_ENTRIES {
            cache.keep(&format!("key:{n}"), "id");
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        // Keeping one already there changes nothing else.
        cache.keep("key:7", "id");
        assert_eq!(cache.len(), MAX_ENTRIES);
        // One more drops the rest: the cache never holds more than the bound.
        cache.keep("key:new", "id-new");
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("key:new").as_deref(), Some("id-new"));
        assert_eq!(cache.get("key:7"), None);
    }
}
