//! `blaze query`, and the query builder `watch` shares.

use blaze_client::{Blaze, QueryRef};

use crate::args::QueryArgs;
use crate::{output, parse, Failure};

/// Builds the query the arguments describe over `args.path`.
pub fn build(db: &Blaze, args: &QueryArgs) -> Result<QueryRef, Failure> {
    let mut query = db.collection(&args.path).query();
    for text in &args.filters {
        let (field, op, value) = parse::filter(text)?;
        query = query.where_(&field, &op, value);
    }
    for text in &args.order_by {
        let (field, direction) = parse::order(text)?;
        query = query.order_by(&field, direction);
    }
    if let Some(n) = args.limit {
        query = query.limit(n);
    }
    if let Some(n) = args.limit_to_last {
        query = query.limit_to_last(n);
    }
    if let Some(text) = &args.start_at {
        query = query.start_at(parse::cursor("--start-at", text)?);
    }
    if let Some(text) = &args.start_after {
        query = query.start_after(parse::cursor("--start-after", text)?);
    }
    if let Some(text) = &args.end_at {
        query = query.end_at(parse::cursor("--end-at", text)?);
    }
    if let Some(text) = &args.end_before {
        query = query.end_before(parse::cursor("--end-before", text)?);
    }
    Ok(query)
}

/// `blaze query COLLECTION [...]`: one JSON line per result, or the count.
pub async fn run(db: &Blaze, args: &QueryArgs) -> Result<(), Failure> {
    let query = build(db, args)?;
    if args.count {
        println!("{}", query.count().await?);
        return Ok(());
    }
    for doc in &query.get().await?.docs {
        output::print(&output::document(doc));
    }
    Ok(())
}
