//! Access rules end to end (spec 14): the real worker under `wrangler dev`
//! with rules for private todos (as `blaze.rules`) and rooms whose messages
//! only members read (the room is a document of another object), alice and
//! bob with development tokens, and alice's secrets that no frame or answer
//! bob receives may carry. Every leak path of issue 15: reads, queries and
//! counts, live listeners and their removals, resumes, error messages,
//! probing writes, denied writes, permissions resting on a document of the
//! same object or of another one (the room of a message), floods of denied
//! requests and of requests that each fetch a document of another object,
//! a redeploy with other rules, and workers without usable rules.
//!
//! One `wrangler dev` serves the scenarios, each on collections of its own
//! (`runs/<scenario>/...`), then is redeployed; the workers without rules
//! are the second test. `scripts/build-worker.sh` must have built the worker.

mod deploys;
mod hostile;
mod listeners;
mod reads;
mod rooms;
mod support;
mod writes;

use std::time::{Duration, Instant};

use blaze_tests::live::{self, e2e, WranglerDev};

/// The longest each test may take, `wrangler dev`'s starts included.
const TEST_LIMIT: Duration = Duration::from_secs(150);

/// Runs `scenario`, printing how long it took.
async fn timed(name: &str, scenario: impl std::future::Future<Output = ()>) {
    let started = Instant::now();
    scenario.await;
    println!("{name}: {:?}", started.elapsed());
}

#[test]
fn denied_data_never_reaches_a_user() {
    let Some(_serial) = e2e() else { return };
    live::run(TEST_LIMIT, async {
        let started = Instant::now();
        let var = format!("BLAZE_RULES:{}", support::RULES);
        // Listeners resting on documents of other collections are checked
        // again every 2 s (the room membership scenario waits for one).
        let server = WranglerDev::start_with_vars("rules", &[&var, "BLAZE_RULES_RECHECK_MS:2000"]);
        println!("wrangler dev started in {:?}", started.elapsed());
        let port = server.port;
        timed("denied reads", reads::denied_reads(port)).await;
        timed("queries and counts", reads::queries_and_counts(port)).await;
        timed("live removals", listeners::live_removals(port)).await;
        timed("resume since", listeners::resume_since(port)).await;
        timed(
            "revoked in the same object",
            listeners::revoked_in_the_same_object(port),
        )
        .await;
        timed("write probes", writes::write_probes(port)).await;
        timed("denied writes", writes::denied_writes(port)).await;
        timed(
            "commit ids per caller",
            writes::commit_ids_are_the_callers_own(port),
        )
        .await;
        timed("room membership", rooms::membership(port)).await;
        timed("flood", hostile::flood(port)).await;
        timed("crowded object", hostile::flood_on_the_same_object(port)).await;
        timed("redeploy", deploys::redeploy(server)).await;
    });
}

#[test]
fn without_usable_rules_only_admins_are_served() {
    let Some(_serial) = e2e() else { return };
    live::run(TEST_LIMIT, async {
        let broken = "BLAZE_RULES:rules_version = '2'; service cloud.firestore { \
            match /databases/{database}/documents { match /{doc=**} { allow read: if ; } } }";
        // Both start at once.
        let (missing, broken) = tokio::join!(
            tokio::task::spawn_blocking(|| WranglerDev::start_with_vars(
                "rules-missing",
                &["BLAZE_RULES:"]
            )),
            tokio::task::spawn_blocking(move || WranglerDev::start_with_vars(
                "rules-broken",
                &[broken]
            )),
        );
        let (missing, broken) = (missing.expect("started"), broken.expect("started"));
        timed(
            "no rules",
            deploys::serves_admins_only(&missing, "this server has no access rules"),
        )
        .await;
        timed(
            "rules that do not compile",
            deploys::serves_admins_only(&broken, "Error compiling rules"),
        )
        .await;
    });
}
