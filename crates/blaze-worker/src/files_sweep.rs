//! The sweep of bytes no metadata document names (spec 15.4), the plain
//! part: where a folder's keys live, which of them a sweep deletes, and
//! when the folder object's alarm runs it next. The runtime part, which
//! lists and deletes in R2, is in `object.rs` (`BlazeCollection::sweep`).
//!
//! Every key of a file in the folder whose metadata collection is `C` is
//! `o/C/<uuid>`, so the object of `C` lists exactly its own keys (with the
//! delimiter `/`, so a subfolder's `o/C/<name>/_files/…` are not among them).
//! An upload or a delete notes that a sweep is needed after the grace
//! period; a young key found by a sweep asks for another once it is old.

use blaze_protocol::{CollectionPath, Query};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The default for `BLAZE_FILES_SWEEP_GRACE` (seconds): how old an unnamed
/// key must be before a sweep deletes it, so no upload in flight loses its bytes.
pub const DEFAULT_GRACE_SECONDS: u64 = 3600;

/// The default for `BLAZE_FILES_SWEEP_PAGE`: keys listed (and at most
/// deleted) by one run of the alarm; R2 lists at most 1,000 at once.
pub const DEFAULT_PAGE: u32 = 1000;

/// The `meta` row the sweep's state is kept in, as JSON.
pub const META_KEY: &str = "files_sweep";

/// The prefix of every key of the files whose metadata collection is `folder`.
pub fn key_prefix(folder: &CollectionPath) -> String {
    format!("o/{}/", folder.as_str())
}

/// A fresh key for a file of `folder`, from a random `uuid`.
pub fn new_key(folder: &CollectionPath, uuid: &str) -> String {
    format!("{}{uuid}", key_prefix(folder))
}

/// The query that finds the metadata document naming `key`, if any.
pub fn naming(folder: &CollectionPath, key: &str) -> Query {
    let query = json!({"collection": folder.as_str(), "limit": 1,
        "where": {"field": "key", "op": "==", "value": key}});
    serde_json::from_value(query).expect("a query on `key` parses")
}

/// What a sweep does with one listed key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Named by a metadata document (or an unfinished upload): kept.
    Named,
    /// Not named, but uploaded within the grace period: kept, looked at
    /// again once it is old (at this time, ms).
    Young(u64),
    /// Not named and old: deleted.
    Orphan,
}

/// The verdict on a key uploaded at `uploaded` (ms), at `now`.
pub fn judge(named: bool, uploaded: u64, now: u64, grace_ms: u64) -> Verdict {
    let old_at = uploaded.saturating_add(grace_ms);
    if named {
        Verdict::Named
    } else if old_at > now {
        Verdict::Young(old_at)
    } else {
        Verdict::Orphan
    }
}

/// When the folder's sweep runs, kept in the object's `meta` ([`META_KEY`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    /// When the alarm runs the sweep next (ms since the Unix epoch).
    pub due: Option<u64>,
    /// From when a new pass over the folder's keys is needed: set by uploads
    /// and deletes (their time plus the grace period) and by young keys.
    pub after: Option<u64>,
    /// Where the pass in progress goes on listing (an R2 list cursor).
    pub cursor: Option<String>,
}

fn earliest(a: Option<u64>, b: u64) -> Option<u64> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Sweep {
    /// Notes that a pass is needed from `at` on (an upload or a delete at
    /// `at` minus the grace period, or a young key old at `at`).
    pub fn needed(&mut self, at: u64) {
        self.after = earliest(self.after, at);
        if self.cursor.is_none() {
            self.due = earliest(self.due, at);
        }
    }

    /// Whether a run is due at `now`.
    pub fn is_due(&self, now: u64) -> bool {
        self.due.is_some_and(|due| due <= now)
    }

    /// Starts a run at `now`: the cursor to list from (`None`: a new pass,
    /// which takes over every need noted up to now).
    pub fn begin(&mut self, now: u64) -> Option<String> {
        if self.cursor.is_none() && self.after.is_some_and(|after| after <= now) {
            self.after = None;
        }
        self.cursor.clone()
    }

    /// Ends a run at `now`; `cursor` is where the listing goes on (`None`:
    /// the pass is over). The next run is at once while the pass goes on,
    /// else when a need noted meanwhile (or a young key) asks.
    pub fn end(&mut self, cursor: Option<String>, now: u64) {
        self.cursor = cursor;
        self.due = match self.cursor {
            Some(_) => Some(now),
            None => self.after,
        };
    }

    /// A run at `now` that failed (R2 did not answer): tried again a minute later.
    pub fn failed(&mut self, now: u64) {
        self.due = Some(now + 60_000);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_under_their_folder() {
        let folder = CollectionPath::parse("_files/avatars/_files").unwrap();
        assert_eq!(key_prefix(&folder), "o/_files/avatars/_files/");
        assert_eq!(new_key(&folder, "u-1"), "o/_files/avatars/_files/u-1");
        let query = serde_json::to_value(naming(&folder, "o/x")).unwrap();
        assert_eq!(query["where"]["value"], "o/x");
        assert_eq!(query["limit"], 1);
    }

    #[test]
    fn only_old_unnamed_keys_are_orphans() {
        assert_eq!(judge(true, 0, 10_000, 1_000), Verdict::Named);
        assert_eq!(judge(false, 9_500, 10_000, 1_000), Verdict::Young(10_500));
        assert_eq!(judge(false, 9_000, 10_000, 1_000), Verdict::Orphan);
        assert_eq!(judge(false, 10_000, 10_000, 0), Verdict::Orphan);
    }

    #[test]
    fn a_sweep_runs_after_the_grace_and_again_for_young_keys() {
        let mut sweep = Sweep::default();
        assert!(!sweep.is_due(u64::MAX));
        // Two uploads: the earlier need decides.
        sweep.needed(5_000);
        sweep.needed(7_000);
        assert_eq!(sweep.due, Some(5_000));
        assert!(!sweep.is_due(4_999) && sweep.is_due(5_000));
        assert_eq!(sweep.begin(5_000), None, "a new pass");
        assert_eq!(sweep.after, None, "taken over by this pass");
        sweep.needed(8_000); // a young key, old at 8,000
        sweep.end(None, 5_000);
        assert_eq!(sweep.due, Some(8_000));
        assert_eq!(sweep.begin(8_000), None);
        sweep.end(None, 8_000);
        assert_eq!(sweep, Sweep::default(), "nothing left to do");
    }

    #[test]
    fn a_long_listing_goes_on_in_later_runs_and_needs_noted_meanwhile_wait() {
        let mut sweep = Sweep::default();
        sweep.needed(1_000);
        sweep.begin(1_000);
        sweep.end(Some("c1".into()), 1_000);
        assert_eq!(
            (sweep.due, sweep.cursor.as_deref()),
            (Some(1_000), Some("c1"))
        );
        // An upload during the pass may land before the cursor: it needs
        // a pass of its own, after this one.
        sweep.needed(9_000);
        assert_eq!(sweep.due, Some(1_000), "the pass goes on first");
        assert_eq!(sweep.begin(1_001).as_deref(), Some("c1"));
        sweep.end(None, 1_001);
        assert_eq!(sweep.due, Some(9_000));
        sweep.failed(9_000);
        assert_eq!(sweep.due, Some(69_000));
    }
}
