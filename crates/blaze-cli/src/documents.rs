//! `get`, `set`, `update` and `delete` of one document.

use std::io::Read;

use blaze_client::Blaze;

use crate::args::{SetArgs, UpdateArgs};
use crate::{output, parse, Failure};

/// `blaze get PATH`.
pub async fn get(db: &Blaze, path: &str) -> Result<(), Failure> {
    let doc = db.doc(path).get::<serde_json::Value>().await?;
    output::print(&output::document(&doc));
    Ok(())
}

/// `blaze set PATH DATA [--create] [--if-version V]`.
pub async fn set(db: &Blaze, args: SetArgs) -> Result<(), Failure> {
    let text = if args.data == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        args.data
    };
    let data = parse::json("the document", &text)?;
    let mut doc = db.doc(&args.path);
    if let Some(version) = args.if_version {
        doc = doc.if_version(version);
    }
    let result = if args.create {
        doc.create(&data).await?
    } else {
        doc.set(&data).await?
    };
    output::print(&output::commit(&result));
    Ok(())
}

/// `blaze update PATH (--merge M | --patch P | --field F=V...)`.
pub async fn update(db: &Blaze, args: UpdateArgs) -> Result<(), Failure> {
    let mut doc = db.doc(&args.path);
    if let Some(version) = args.if_version {
        doc = doc.if_version(version);
    }
    let result = if let Some(merge) = &args.merge {
        doc.merge(&parse::json("--merge", merge)?).await?
    } else if let Some(patch) = &args.patch {
        match parse::json("--patch", patch)? {
            serde_json::Value::Array(operations) => doc.patch(operations).await?,
            _ => {
                return Err(Failure::Usage(
                    "--patch must be a JSON array of operations".into(),
                ))
            }
        }
    } else {
        let fields = args
            .field
            .iter()
            .map(|f| parse::assignment(f))
            .collect::<Result<Vec<_>, _>>()?;
        doc.update(fields.iter().map(|(f, v)| (f.as_str(), v.clone())))
            .await?
    };
    output::print(&output::commit(&result));
    Ok(())
}

/// `blaze delete PATH [--if-version V]`.
pub async fn delete(db: &Blaze, path: &str, if_version: Option<u64>) -> Result<(), Failure> {
    let mut doc = db.doc(path);
    if let Some(version) = if_version {
        doc = doc.if_version(version);
    }
    let result = doc.delete().await?;
    output::print(&output::commit(&result));
    Ok(())
}
