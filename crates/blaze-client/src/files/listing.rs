//! Listing a folder: its files from a query on the folder's collection
//! (spec 15.2), its subfolders from `GET /v1/files/{folder}/?prefixes`,
//! both paged by one cursor (`<files' position>|<subfolders' position>`,
//! [`DONE`] for a complete side).

use blaze_protocol::http::PrefixesAnswer;
use blaze_protocol::{check_id, DocSnapshot};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{Body, Request};
use super::paths::{check_folder, folder_collection_path};
use super::{FileMetadata, Files, ListPage, MAX_PAGE_SIZE};
use crate::Error;

/// A side of a cursor that is complete.
const DONE: &str = "!";

impl Files {
    /// One page of the folder `folder` (`""`: the root): up to `page_size`
    /// (1 to [`MAX_PAGE_SIZE`]) entries in all, files directly in it (a
    /// query on its collection ordered by `__name__`) and its subfolders
    /// (`?prefixes`, spec 15.2), asked at once and taken in name order, as
    /// Firebase Storage's `list` pages them, from `cursor` (the previous
    /// page's [`ListPage::next_cursor`]). A page may hold fewer and still
    /// have a next one; `next_cursor` is `None` exactly when both are
    /// complete.
    pub async fn list(
        &self,
        folder: &str,
        page_size: usize,
        cursor: Option<&str>,
    ) -> Result<ListPage, Error> {
        check_folder(folder)?;
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::Usage(format!(
                "page_size must be 1 to {MAX_PAGE_SIZE}, got {page_size}"
            )));
        }
        let (files_at, folders_at) = match cursor {
            None => ("", ""),
            Some(cursor) => positions(cursor)?,
        };
        let files = async {
            match files_at {
                DONE => Ok((Vec::new(), DONE.to_owned())),
                after => self.files_page(folder, page_size, after).await,
            }
        };
        let folders = async {
            match folders_at {
                DONE => Ok((Vec::new(), DONE.to_owned())),
                after => self.folders_page(folder, page_size, after).await,
            }
        };
        let ((mut items, files_next), (mut names, folders_next)) =
            futures_util::future::try_join(files, folders).await?;
        let file_names: Vec<&str> = items.iter().map(|f| f.name.as_str()).collect();
        let (files_taken, folders_taken) = take_in_name_order(&file_names, &names, page_size);
        let files_next = next_position(files_at, &file_names, files_taken, files_next, "");
        let folders_next = next_position(folders_at, &names, folders_taken, folders_next, "/");
        items.truncate(files_taken);
        names.truncate(folders_taken);
        let prefixes = names
            .iter()
            .map(|name| match folder {
                "" => name.clone(),
                folder => format!("{folder}/{name}"),
            })
            .collect();
        let next_cursor = (files_next != DONE || folders_next != DONE)
            .then(|| format!("{files_next}|{folders_next}"));
        Ok(ListPage {
            items,
            prefixes,
            next_cursor,
        })
    }

    /// Every file directly in `folder` and every subfolder: [`Files::list`]
    /// pages of [`MAX_PAGE_SIZE`] gathered (Firebase's `listAll`);
    /// `next_cursor` is `None`.
    pub async fn list_all(&self, folder: &str) -> Result<ListPage, Error> {
        let mut all = ListPage {
            items: Vec::new(),
            prefixes: Vec::new(),
            next_cursor: None,
        };
        let mut cursor: Option<String> = None;
        loop {
            let page = self.list(folder, MAX_PAGE_SIZE, cursor.as_deref()).await?;
            all.items.extend(page.items);
            all.prefixes.extend(page.prefixes);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// Up to `page_size` files after the name `after` (`""`: the first), and
    /// the next position.
    async fn files_page(
        &self,
        folder: &str,
        page_size: usize,
        after: &str,
    ) -> Result<(Vec<FileMetadata>, String), Error> {
        let mut query = json!({
            "collection": folder_collection_path(folder),
            "order_by": [{"field": "__name__"}],
            "limit": page_size + 1,
        });
        if !after.is_empty() {
            query["start_after"] = json!([after]);
        }
        let request = Request::new("POST", "/v1/query".into())
            .header("Content-Type", "application/json")
            .body(Body::Bytes(query.to_string().into_bytes()));
        let answer = self.json(request).await?;
        let docs: Vec<DocSnapshot> = serde_json::from_value(answer["docs"].clone())
            .map_err(|e| Error::Protocol(format!("not a query's answer: {e}")))?;
        let mut items = docs
            .iter()
            .map(FileMetadata::from_doc)
            .collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > page_size;
        items.truncate(page_size);
        let next = match items.last() {
            Some(last) if more => last.name.clone(),
            _ => DONE.to_owned(),
        };
        Ok((items, next))
    }

    /// Up to `page_size` subfolder names after the position `after` (`""`:
    /// the first), and the next position.
    async fn folders_page(
        &self,
        folder: &str,
        page_size: usize,
        after: &str,
    ) -> Result<(Vec<String>, String), Error> {
        let base = match folder {
            "" => "/v1/files/".to_owned(),
            folder => format!("/v1/files/{folder}/"),
        };
        let mut path = format!("{base}?prefixes&max={page_size}");
        if !after.is_empty() {
            path.push_str("&after=");
            path.push_str(&encode(after));
        }
        let answer = self.json(Request::new("GET", path)).await?;
        subfolder_page(&answer, page_size)
            .ok_or_else(|| Error::Protocol(format!("not a subfolder listing: {answer}")))
    }
}

/// How many of `files` and of `folders` (each in its listing's order) the
/// first `max` entries in name order take; a file before a folder of the
/// same name.
fn take_in_name_order(files: &[&str], folders: &[impl AsRef<str>], max: usize) -> (usize, usize) {
    let (mut i, mut j) = (0, 0);
    while i + j < max && (i < files.len() || j < folders.len()) {
        match (files.get(i), folders.get(j).map(AsRef::as_ref)) {
            (Some(file), Some(folder)) if *file > folder => j += 1,
            (Some(_), _) => i += 1,
            (None, _) => j += 1,
        }
    }
    (i, j)
}

/// Where a side's next page starts: past the last of `names` the page took
/// (followed by `suffix`), the side's own `next` when it took them all, or
/// where this page `started` when it took none.
fn next_position(
    started: &str,
    names: &[impl AsRef<str>],
    taken: usize,
    next: String,
    suffix: &str,
) -> String {
    match taken {
        t if t == names.len() => next,
        0 => started.to_owned(),
        t => format!("{}{suffix}", names[t - 1].as_ref()),
    }
}

/// The names and next position of a `?prefixes` answer, if it is one.
fn subfolder_page(answer: &Value, page_size: usize) -> Option<(Vec<String>, String)> {
    // `after` is `null` on the last page, never left out.
    answer.get("after")?;
    let page = PrefixesAnswer::deserialize(answer).ok()?;
    let fits = page.is_valid() && page.prefixes.len() <= page_size;
    let next = page.after.unwrap_or_else(|| DONE.to_owned());
    fits.then_some((page.prefixes, next))
}

/// The two positions of a cursor [`Files::list`] made, else `invalid_argument`.
fn positions(cursor: &str) -> Result<(&str, &str), Error> {
    let valid = cursor.split_once('|').filter(|(files, folders)| {
        (*files == DONE || files.is_empty() || check_id(files).is_ok())
            && (*folders == DONE || folders.is_empty() || PrefixesAnswer::is_position(folders))
            && (*files, *folders) != (DONE, DONE)
            && (*files, *folders) != ("", "")
    });
    valid.ok_or_else(|| Error::Usage(format!("{cursor:?} is not a cursor list() made")))
}

/// `text` percent-encoded for a query string: a segment's characters
/// other than letters, digits, `-`, `_`, `.` and `~`, and `/`.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_two_positions() {
        assert_eq!(positions("a.txt|b/").unwrap(), ("a.txt", "b/"));
        assert_eq!(positions("!|u-1").unwrap(), ("!", "u-1"));
        assert_eq!(positions("a|!").unwrap(), ("a", "!"));
        assert_eq!(positions("a|").unwrap(), ("a", ""));
        assert_eq!(positions("|b/").unwrap(), ("", "b/"));
        for bad in [
            "", "a", "!|!", "|", "a|b|c", "..|!", "a/b|!", "a|b//", "|b//",
        ] {
            assert!(
                matches!(positions(bad), Err(Error::Usage(_))),
                "{bad:?} is refused"
            );
        }
    }

    #[test]
    fn a_page_takes_the_first_entries_in_name_order() {
        let check = |files: &[&str], folders: &[&str], max, expected| {
            assert_eq!(
                take_in_name_order(files, folders, max),
                expected,
                "{files:?} {folders:?} {max}"
            );
        };
        check(&["a", "b", "c"], &["x", "y+z"], 2, (2, 0));
        check(&["c"], &["x", "y+z"], 2, (1, 1));
        check(&[], &["x", "y+z"], 2, (0, 2));
        check(&["b", "d"], &["a", "c", "e"], 4, (2, 2));
        check(&["same"], &["same"], 1, (1, 0));
        check(&["a"], &[], 5, (1, 0));
    }

    #[test]
    fn each_side_goes_on_past_what_the_page_took() {
        let names = ["a", "b"];
        assert_eq!(next_position("", &names, 2, DONE.into(), "/"), DONE);
        assert_eq!(next_position("", &names, 1, DONE.into(), "/"), "a/");
        assert_eq!(next_position("z/", &names, 0, DONE.into(), "/"), "z/");
        assert_eq!(next_position("", &names, 1, "b".into(), ""), "a");
    }

    #[test]
    fn a_subfolder_answer_is_checked() {
        let page = |v: Value| subfolder_page(&v, 2);
        assert_eq!(
            page(json!({"prefixes": ["a", "b+c"], "after": "b+c/"})),
            Some((vec!["a".into(), "b+c".into()], "b+c/".into()))
        );
        assert_eq!(
            page(json!({"prefixes": [], "after": null})),
            Some((vec![], DONE.into()))
        );
        for bad in [
            json!({"prefixes": ["a/b"], "after": null}),
            json!({"prefixes": ["a"]}),
            json!({"prefixes": "a", "after": null}),
            json!({"prefixes": [], "after": ".."}),
            json!({"prefixes": ["a", "b", "c"], "after": null}),
        ] {
            assert_eq!(page(bad.clone()), None, "{bad}");
        }
    }

    #[test]
    fn positions_are_encoded_for_a_query_string() {
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(encode("x+y:z@w/"), "x%2By%3Az%40w%2F");
    }
}
