//! The commit budget is an upper bound on what a JSON Patch allocates: a
//! counting allocator measures the bytes `apply_json_patch_within` asks for,
//! and they stay within a small multiple of the bytes it charged (plus the
//! patch's own parsed pointers). A patch that would blow up is refused
//! before it allocates much.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use blaze_json::budget::CommitBudget;
use blaze_json::patch::apply_json_patch_within;
use blaze_protocol::{ErrorCode, Limits};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

struct Counting;

thread_local! {
    /// Bytes this thread has allocated (frees are not subtracted).
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    ALLOCATED.with(|a| a.set(a.get().saturating_add(bytes)));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes this thread allocated (never subtracting frees) while `f` ran.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.with(Cell::get);
    let out = f();
    (out, ALLOCATED.with(Cell::get) - before)
}

/// A document `{"a": [<n> strings of <len> bytes]}` and a patch of `copies`
/// operations each copying the whole of `/a` (so each doubles the document).
fn doubling(n: usize, len: usize, copies: usize) -> (Map<String, Value>, Value) {
    let items: Vec<Value> = (0..n).map(|i| json!(format!("{i:0len$}"))).collect();
    let doc = json!({ "a": items }).as_object().unwrap().clone();
    let ops: Vec<Value> = (0..copies)
        .map(|i| json!({"op": "copy", "from": "/a", "path": format!("/c{i}")}))
        .collect();
    (doc, Value::Array(ops))
}

fn check(
    n: usize,
    len: usize,
    copies: usize,
    max_commit_bytes: usize,
) -> Result<(), TestCaseError> {
    let limits = Limits {
        max_commit_bytes,
        max_document_bytes: usize::MAX / 4,
        ..Limits::default()
    };
    let (doc, patch) = doubling(n, len, copies);
    let mut budget = CommitBudget::new(&limits);
    let (result, allocated) =
        allocated_by(|| apply_json_patch_within(&doc, &patch, &limits, &mut budget).map(drop));
    // Per value: a `String` header's heap bytes plus vector and map slack;
    // the parsed pointers are charged nowhere, so they get a fixed allowance.
    let overhead = 64 * (n + 1) * (copies + 1) + 64 * 1024;
    prop_assert!(
        allocated <= 4 * budget.spent() + overhead,
        "allocated {allocated} bytes for {} charged",
        budget.spent()
    );
    if let Err(refused) = result {
        prop_assert_eq!(refused.code, ErrorCode::CommitTooLarge);
        prop_assert!(budget.spent() > max_commit_bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn what_a_patch_allocates_is_bounded_by_what_it_charges(
        n in 1usize..20,
        len in 1usize..400,
        copies in 1usize..30,
        max_commit_bytes in 1usize..200_000,
    ) {
        check(n, len, copies, max_commit_bytes)?;
    }
}

#[test]
fn a_blowup_is_refused_before_it_allocates() {
    // 500 copies of a 100 KB array would materialise 50 MB.
    let limits = Limits {
        max_commit_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let (doc, patch) = doubling(1000, 100, 500);
    let mut budget = CommitBudget::new(&limits);
    let (result, allocated) =
        allocated_by(|| apply_json_patch_within(&doc, &patch, &limits, &mut budget));
    assert_eq!(result.unwrap_err().code, ErrorCode::CommitTooLarge);
    assert!(allocated < 8 * 1024 * 1024, "allocated {allocated} bytes");
}
