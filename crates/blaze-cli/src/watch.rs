//! `blaze watch`: a listener printed as JSON lines until interrupted.

use blaze_client::{Blaze, ConnectionState, FromResults, ListenEvent, Listener};
use futures_util::StreamExt;

use crate::args::QueryArgs;
use crate::{output, query, Failure};

/// `blaze watch PATH [...]`: a document path (even segment count) prints the
/// document on every change; a collection path prints one line per change of
/// the query's results (the first snapshot as `added` lines). Connection
/// changes go to standard error. Runs until Ctrl-C or a refused listen.
pub async fn run(db: &Blaze, args: &QueryArgs) -> Result<(), Failure> {
    let is_document = args.path.split('/').count().is_multiple_of(2);
    if is_document {
        if has_query_options(args) {
            return Err(Failure::Usage(format!(
                "{:?} is a document path; --where, --order-by, --limit and cursors need a collection",
                args.path
            )));
        }
        let listener = db.doc(&args.path).listen();
        follow(listener, |doc| output::print(&output::document(&doc))).await
    } else {
        if args.count {
            return Err(Failure::Usage("watch does not take --count".into()));
        }
        let listener = query::build(db, args)?.listen();
        follow(listener, |snapshot: blaze_client::QuerySnapshot| {
            for change in snapshot.changes() {
                output::print(&output::change(change, snapshot.seq));
            }
        })
        .await
    }
}

fn has_query_options(args: &QueryArgs) -> bool {
    !args.filters.is_empty()
        || !args.order_by.is_empty()
        || args.limit.is_some()
        || args.limit_to_last.is_some()
        || args.start_at.is_some()
        || args.start_after.is_some()
        || args.end_at.is_some()
        || args.end_before.is_some()
        || args.count
}

/// Prints `listener`'s snapshots with `show` until Ctrl-C or the stream ends.
async fn follow<S: FromResults>(
    mut listener: Listener<S>,
    mut show: impl FnMut(S),
) -> Result<(), Failure> {
    loop {
        let event = tokio::select! {
            event = listener.next() => event,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        match event {
            Some(Ok(ListenEvent::Snapshot(snapshot))) => show(snapshot),
            Some(Ok(ListenEvent::State(ConnectionState::Online))) => eprintln!("blaze: online"),
            Some(Ok(ListenEvent::State(ConnectionState::Offline { attempt, reason }))) => {
                eprintln!("blaze: offline ({reason}); reconnect attempt {attempt}")
            }
            Some(Err(error)) => return Err(error.into()),
            None => return Ok(()),
        }
    }
}
