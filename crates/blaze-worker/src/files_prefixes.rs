//! A folder's subfolders (spec 15.2, `GET /v1/files/{folder}/?prefixes`),
//! the plain part: the page a request asks for, where in the folder's
//! keys it starts, and the names and next position one listing gives.
//!
//! A subfolder `s` of the folder whose metadata collection is `C` holds its
//! bytes under `o/C/s/_files/…` (`files_sweep`), so listing `o/C/` with the
//! delimiter `/` names it once (`o/C/s/`) among the folder's own keys
//! (`o/C/<uuid>`). A page's position is the last thing it looked at: a
//! key's last segment (`<uuid>`) or a subfolder (`s/`), so no position a
//! client sends can start the listing outside `o/C/`.

use blaze_protocol::http::PrefixesAnswer;
use blaze_protocol::{check_id, ErrorCode};

use crate::files_plan::query_param;
use crate::http_types::{percent_decode, HttpResponse};

/// Most subfolder names one page answers, and the default page size; also
/// how many keys one page looks at (R2 lists at most 1,000 at once).
pub const MAX_PREFIXES: u32 = 1000;

/// One page of a folder's subfolders: at most `max` names after `after`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixPage {
    /// How many names at most.
    pub max: u32,
    /// Where the previous page stopped (`None`: the start).
    pub after: Option<String>,
}

/// What one listing of a folder's keys gave.
#[derive(Debug, Default)]
pub struct Listed {
    /// The subfolders' delimited prefixes (`o/C/s/`), in key order.
    pub prefixes: Vec<String>,
    /// The last key of the folder's own (`o/C/<uuid>`), if any.
    pub last_key: Option<String>,
    /// Whether the store has more keys after these.
    pub truncated: bool,
}

impl PrefixPage {
    /// The page a request's query string asks for: `max` (1 to
    /// [`MAX_PREFIXES`], default [`MAX_PREFIXES`]) and `after` (a position a
    /// previous page answered, percent-encoded). Anything else is 400
    /// `invalid_frame`.
    pub fn parse(query: Option<&str>) -> Result<Self, HttpResponse> {
        let refuse = |why: &str| HttpResponse::rejected(ErrorCode::InvalidFrame, why.to_owned());
        let max = match query_param(query, "max") {
            None => MAX_PREFIXES,
            Some(max) => max
                .parse()
                .ok()
                .filter(|m| (1..=MAX_PREFIXES).contains(m))
                .ok_or_else(|| refuse(&format!("max is 1 to {MAX_PREFIXES}")))?,
        };
        let after = match query_param(query, "after") {
            None => None,
            Some(raw) => Some(
                percent_decode(raw)
                    .filter(|after| PrefixesAnswer::is_position(after))
                    .ok_or_else(|| refuse("after is not a position a page answered"))?,
            ),
        };
        Ok(Self { max, after })
    }

    /// The page as the value of the internal files header the Worker sends
    /// the folder's object (`prefixes <max>[ <after>]`).
    pub fn to_op(&self) -> String {
        match &self.after {
            Some(after) => format!("prefixes {} {after}", self.max),
            None => format!("prefixes {}", self.max),
        }
    }

    /// The page of an internal files header value, if it is one.
    pub fn from_op(op: &str) -> Option<Self> {
        let mut parts = op.strip_prefix("prefixes ")?.splitn(2, ' ');
        let max = parts.next()?.parse().ok()?;
        let after = parts.next().map(str::to_owned);
        let page = Self { max, after };
        let valid = (1..=MAX_PREFIXES).contains(&max)
            && page
                .after
                .as_deref()
                .is_none_or(PrefixesAnswer::is_position);
        valid.then_some(page)
    }

    /// The key the listing of `prefix` (`o/C/`) starts after: past the key
    /// `<uuid>`, or past every key of the subfolder `s/` (all are
    /// `o/C/s/_files/…`, and `_` sorts before `~`).
    pub fn start_after(&self, prefix: &str) -> Option<String> {
        let after = self.after.as_deref()?;
        Some(match after.strip_suffix('/') {
            Some(_) => format!("{prefix}{after}~"),
            None => format!("{prefix}{after}"),
        })
    }

    /// The subfolder names of one listing of `prefix`, at most `max`, and
    /// the position of the next page (`None` when this was the last).
    pub fn answer(&self, prefix: &str, listed: Listed) -> PrefixesAnswer {
        let (prefixes, after) = self.names_and_next(prefix, listed);
        PrefixesAnswer { prefixes, after }
    }

    /// [`PrefixPage::answer`]'s names and next position.
    fn names_and_next(&self, prefix: &str, listed: Listed) -> (Vec<String>, Option<String>) {
        let mut names = Vec::new();
        let mut position = None::<String>;
        for delimited in &listed.prefixes {
            let Some(name) = delimited
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix('/'))
                .filter(|name| check_id(name).is_ok())
            else {
                continue;
            };
            if names.len() == self.max as usize {
                // More than a page: the next one starts after the last named.
                return (names, position);
            }
            names.push(name.to_owned());
            position = Some(format!("{name}/"));
        }
        if !listed.truncated {
            return (names, None);
        }
        // The later of the last subfolder and the last key looked at.
        let key = listed
            .last_key
            .as_deref()
            .and_then(|k| k.strip_prefix(prefix));
        let next = match (position, key) {
            (Some(folder), Some(key)) if format!("{folder}~").as_str() < key => key.to_owned(),
            (Some(folder), _) => folder,
            (None, Some(key)) => key.to_owned(),
            // Truncated with nothing looked at cannot happen; start again
            // where this page started rather than loop on nothing.
            (None, None) => return (names, None),
        };
        (names, Some(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "o/_files/a/_files/";

    fn page(max: u32, after: Option<&str>) -> PrefixPage {
        PrefixPage {
            max,
            after: after.map(str::to_owned),
        }
    }

    fn check_parse(query: Option<&str>, expected: Result<PrefixPage, ErrorCode>) {
        let parsed = PrefixPage::parse(query).map_err(|e| e.error.unwrap());
        assert_eq!(parsed, expected, "{query:?}");
    }

    #[test]
    fn a_request_asks_for_a_page_and_a_position() {
        let bad = Err(ErrorCode::InvalidFrame);
        check_parse(Some("prefixes"), Ok(page(1000, None)));
        check_parse(Some("prefixes&max=3&after=b%2F"), Ok(page(3, Some("b/"))));
        check_parse(Some("prefixes&after=x%2By"), Ok(page(1000, Some("x+y"))));
        check_parse(Some("prefixes&max=0"), bad.clone());
        check_parse(Some("prefixes&max=1001"), bad.clone());
        check_parse(Some("prefixes&max=x"), bad.clone());
        check_parse(Some("prefixes&after="), bad.clone());
        check_parse(Some("prefixes&after=.."), bad.clone());
        check_parse(Some("prefixes&after=a%2Fb"), bad.clone());
        check_parse(Some("prefixes&after=a//"), bad.clone());
        check_parse(Some("prefixes&after=%ZZ"), bad.clone());
        check_parse(Some("prefixes&after=a%20b"), bad);
    }

    #[test]
    fn the_op_header_carries_the_page_whole() {
        for p in [page(1000, None), page(5, Some("b/")), page(1, Some("u-1"))] {
            assert_eq!(PrefixPage::from_op(&p.to_op()), Some(p));
        }
        assert_eq!(PrefixPage::from_op("prefixes 0"), None);
        assert_eq!(PrefixPage::from_op("prefixes 5 ../"), None);
        assert_eq!(PrefixPage::from_op("keys"), None);
    }

    #[test]
    fn a_page_starts_past_what_the_last_one_looked_at() {
        assert_eq!(page(5, None).start_after(PREFIX), None);
        let after_key = page(5, Some("3f2c")).start_after(PREFIX);
        assert_eq!(after_key.as_deref(), Some("o/_files/a/_files/3f2c"));
        let after_folder = page(5, Some("b/")).start_after(PREFIX).unwrap();
        assert_eq!(after_folder, "o/_files/a/_files/b/~");
        // Past every key of `b`, before the next subfolder or key.
        assert!("o/_files/a/_files/b/_files/zz" < after_folder.as_str());
        assert!(after_folder.as_str() < "o/_files/a/_files/b0/");
    }

    fn listed(prefixes: &[&str], last_key: Option<&str>, truncated: bool) -> Listed {
        Listed {
            prefixes: prefixes.iter().map(|p| format!("{PREFIX}{p}")).collect(),
            last_key: last_key.map(|k| format!("{PREFIX}{k}")),
            truncated,
        }
    }

    fn check_answer(max: u32, got: Listed, names: &[&str], next: Option<&str>) {
        let answer = page(max, None).answer(PREFIX, got);
        assert_eq!(answer.prefixes, names);
        assert_eq!(answer.after.as_deref(), next);
        assert!(answer.is_valid());
    }

    #[test]
    fn a_page_names_subfolders_and_says_where_the_next_starts() {
        // The whole folder in one listing: no next page.
        check_answer(
            10,
            listed(&["b/", "c/"], Some("0a"), false),
            &["b", "c"],
            None,
        );
        // More subfolders than the page: the next starts after the last named.
        check_answer(1, listed(&["b/", "c/"], None, false), &["b"], Some("b/"));
        // Truncated: the later of the last subfolder and the last key.
        check_answer(9, listed(&["b/"], Some("f0"), true), &["b"], Some("f0"));
        check_answer(9, listed(&["x/"], Some("f0"), true), &["x"], Some("x/"));
        // A page of the folder's own keys only names nothing but goes on.
        check_answer(9, listed(&[], Some("f0"), true), &[], Some("f0"));
        check_answer(9, listed(&[], None, false), &[], None);
    }

    #[test]
    fn what_is_not_a_subfolder_is_never_named() {
        let odd = Listed {
            prefixes: vec!["o/_files/other/".into(), format!("{PREFIX}a%2Fb/")],
            last_key: None,
            truncated: false,
        };
        check_answer(9, odd, &[], None);
    }
}
