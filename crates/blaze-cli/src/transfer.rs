//! `import` and `export`: a collection to and from JSON lines, each line
//! `{"id": "...", "data": {...}}`.
//!
//! Import writes with `set`, in atomic batches, so re-running it leaves the
//! same documents; when it stops it says which line to resume from (`--skip`).
//! Export pages through the collection in id order with `start_after` cursors.

use std::io::Write;

use blaze_client::Blaze;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::args::{ExportArgs, ImportArgs};
use crate::Failure;

/// Bytes of document JSON per batch, well under the server's 4 MiB frame limit.
const BATCH_BYTES: usize = 2 * 1024 * 1024;

/// One parsed input line.
struct Line {
    id: String,
    data: Value,
    bytes: usize,
}

/// `blaze import COLLECTION [FILE] [--skip N] [--batch N]`.
pub async fn import(db: &Blaze, args: &ImportArgs) -> Result<(), Failure> {
    let collection = db.collection(&args.collection);
    let (input, size): (Box<dyn AsyncRead + Unpin>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(tokio::io::stdin()), None)
    } else {
        let file = tokio::fs::File::open(&args.file)
            .await
            .map_err(|e| Failure::Usage(format!("{}: {e}", args.file.display())))?;
        let size = file.metadata().await.ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let progress = progress_bar(size);
    let mut lines = BufReader::new(input).lines();
    let mut batch: Vec<Line> = Vec::new();
    let mut batch_bytes = 0;
    let mut line_number = 0u64;
    let mut done = args.skip;
    let mut imported = 0u64;
    while let Some(text) = lines.next_line().await? {
        line_number += 1;
        progress.inc(text.len() as u64 + 1);
        if line_number <= args.skip || text.trim().is_empty() {
            continue;
        }
        let line = parse_line(&text).map_err(|e| {
            progress.abandon();
            Failure::Usage(format!("line {line_number}: {e}{}", resume_hint(done)))
        })?;
        if batch.len() as u64 == args.batch || batch_bytes + line.bytes > BATCH_BYTES {
            imported += commit(db, &collection, &mut batch, done, &progress).await?;
            done = line_number - 1;
            batch_bytes = 0;
        }
        batch_bytes += line.bytes;
        batch.push(line);
    }
    imported += commit(db, &collection, &mut batch, done, &progress).await?;
    progress.finish_and_clear();
    eprintln!(
        "blaze: imported {imported} documents into {}",
        args.collection
    );
    Ok(())
}

fn parse_line(text: &str) -> Result<Line, String> {
    let mut value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let id = match value.get("id") {
        Some(Value::String(id)) => id.clone(),
        _ => return Err("expected {\"id\": \"...\", \"data\": {...}}: no string \"id\"".into()),
    };
    let data = match value.get_mut("data").map(Value::take) {
        Some(data @ Value::Object(_)) => data,
        _ => {
            return Err(
                "expected {\"id\": \"...\", \"data\": {...}}: \"data\" is not an object".into(),
            )
        }
    };
    Ok(Line {
        id,
        data,
        bytes: text.len(),
    })
}

/// Commits `batch` (emptying it) and returns how many documents it wrote.
async fn commit(
    db: &Blaze,
    collection: &blaze_client::CollectionRef,
    batch: &mut Vec<Line>,
    done: u64,
    progress: &ProgressBar,
) -> Result<u64, Failure> {
    if batch.is_empty() {
        return Ok(0);
    }
    let mut writes = db.batch();
    for line in batch.iter() {
        writes.set(&collection.doc(&line.id), &line.data);
    }
    let count = batch.len() as u64;
    writes.commit().await.map_err(|error| {
        progress.abandon();
        eprintln!("blaze: import stopped{}", resume_hint(done));
        Failure::Client(error)
    })?;
    batch.clear();
    Ok(count)
}

fn resume_hint(done: u64) -> String {
    if done == 0 {
        String::new()
    } else {
        format!("; lines 1-{done} are imported: re-run with --skip {done} to resume")
    }
}

/// A progress bar on standard error (hidden when it is not a terminal):
/// bytes of `size` for a file, a line counter for a stream.
fn progress_bar(size: Option<u64>) -> ProgressBar {
    match size {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {eta}")
                .expect("a valid template"),
        ),
        None => ProgressBar::new_spinner(),
    }
}

/// `blaze export COLLECTION [--out FILE] [--page N]`.
pub async fn export(db: &Blaze, args: &ExportArgs) -> Result<(), Failure> {
    let collection = db.collection(&args.collection);
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::fs::File::create(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::new(&mut out);
    let progress = ProgressBar::new_spinner();
    let mut last: Option<String> = None;
    let mut exported = 0u64;
    loop {
        let mut page = collection.query().limit(args.page);
        if let Some(id) = last.take() {
            page = page.start_after(vec![Value::String(id)]);
        }
        let docs = page.get().await?.docs;
        for doc in &docs {
            writeln!(out, "{}", json!({"id": doc.id(), "data": doc.data}))?;
        }
        exported += docs.len() as u64;
        progress.set_position(exported);
        if (docs.len() as u64) < args.page {
            break;
        }
        last = docs.last().map(|doc| doc.id().to_owned());
    }
    out.flush()?;
    progress.finish_and_clear();
    eprintln!(
        "blaze: exported {exported} documents from {}",
        args.collection
    );
    Ok(())
}
