//! The result list against the core's own diff: applying the server's changes
//! to the old results gives the new results, and a reset snapshot reports the
//! same changes the server would have sent.

use blaze_core::testing::diff_results;
use blaze_core::StoredDoc;
use blaze_protocol::{Change, CollectionPath};
use proptest::prelude::*;
use serde_json::{json, Map};

use super::Results;
use crate::snapshot::{ChangeKind, DocumentSnapshot};

fn results(version: u64) -> impl Strategy<Value = Vec<StoredDoc>> {
    prop::collection::btree_map(0u8..8, (0u8..3, any::<bool>()), 0..6).prop_flat_map(move |docs| {
        let docs: Vec<StoredDoc> = docs
            .into_iter()
            .map(|(id, (x, bump))| {
                let mut data = Map::new();
                data.insert("x".into(), json!(x));
                StoredDoc {
                    id: format!("d{id}"),
                    data,
                    version: version + u64::from(bump),
                    create_time: 1,
                    update_time: version + u64::from(bump),
                }
            })
            .collect();
        Just(docs).prop_shuffle()
    })
}

/// The new list keeps each old document's data unless its version changed.
fn consistent(old: &[StoredDoc], mut new: Vec<StoredDoc>) -> Vec<StoredDoc> {
    for doc in &mut new {
        if let Some(before) = old.iter().find(|d| d.id == doc.id) {
            if before.version == doc.version {
                *doc = before.clone();
            }
        }
    }
    new
}

proptest! {
    #[test]
    fn applying_server_changes_gives_the_new_results(old in results(1), new in results(2)) {
        let new = consistent(&old, new);
        let c = CollectionPath::parse("c").unwrap();
        let snapshot = |docs: &[StoredDoc]| docs.iter().map(|d| d.snapshot(&c)).collect::<Vec<_>>();
        let mut applied = Results::default();
        applied.replace(1, snapshot(&old));
        let changes = applied.apply(2, &diff_results(&c, &old, &new)).unwrap();

        let mut reset = Results::default();
        reset.replace(1, snapshot(&old));
        let reset_changes = reset.replace(2, snapshot(&new));

        let want: Vec<DocumentSnapshot> = snapshot(&new).into_iter().map(Into::into).collect();
        prop_assert_eq!(&applied.query_snapshot(vec![], false).docs, &want);
        prop_assert_eq!(&reset.query_snapshot(vec![], false).docs, &want);
        prop_assert_eq!(applied.seq(), Some(2));
        prop_assert_eq!(changes, reset_changes);
    }
}

#[test]
fn the_first_snapshot_is_all_added_and_a_bad_change_leaves_the_results_alone() {
    let c = CollectionPath::parse("c").unwrap();
    let doc = |id: &str| StoredDoc {
        id: id.into(),
        data: Map::new(),
        version: 1,
        create_time: 1,
        update_time: 1,
    };
    let mut results = Results::default();
    let first = results.replace(1, vec![doc("a").snapshot(&c), doc("b").snapshot(&c)]);
    let kinds: Vec<_> = first.iter().map(|c| (c.kind, c.new_index)).collect();
    assert_eq!(
        kinds,
        [(ChangeKind::Added, Some(0)), (ChangeKind::Added, Some(1))]
    );
    let before = results.clone();
    let wrong = Change::Removed {
        path: "c/b".into(),
        old_index: 0,
    };
    assert!(results.apply(2, &[wrong]).is_err());
    assert_eq!(results, before);
    let backwards = Change::Removed {
        path: "c/a".into(),
        old_index: 0,
    };
    assert!(results.apply(0, &[backwards]).is_err());
    assert_eq!(results, before);
}
