//! What a client says about a file besides its bytes (Firebase's
//! `UploadMetadata` and `SettableMetadata`): its content type, custom
//! metadata and presentation (spec 15.2), checked before anything is sent.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::http::Request;
use crate::Error;

/// The longest value of a [`Presentation`] field, in bytes (spec 15.2).
pub const MAX_PRESENTATION_BYTES: usize = 1024;

/// How downloads present a file (spec 15.2), Firebase's settable
/// `cacheControl`, `contentDisposition` and `contentLanguage`: each the value
/// of that download header, `None` when not set (downloads then say
/// `Cache-Control: private, max-age=0`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presentation {
    /// The downloads' `Cache-Control` (`public, max-age=86400` lets every
    /// page and cache keep an image).
    pub cache_control: Option<String>,
    /// The downloads' `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// The downloads' `Content-Language`.
    pub content_language: Option<String>,
}

/// One [`Presentation`] field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PresentationField {
    /// `cacheControl`.
    CacheControl,
    /// `contentDisposition`.
    ContentDisposition,
    /// `contentLanguage`.
    ContentLanguage,
}

impl PresentationField {
    /// Every field.
    pub const ALL: [Self; 3] = [
        Self::CacheControl,
        Self::ContentDisposition,
        Self::ContentLanguage,
    ];

    /// Its name in a metadata document and in answers.
    pub fn name(self) -> &'static str {
        match self {
            Self::CacheControl => "cacheControl",
            Self::ContentDisposition => "contentDisposition",
            Self::ContentLanguage => "contentLanguage",
        }
    }

    /// The header an upload sets it with.
    fn upload_header(self) -> &'static str {
        match self {
            Self::CacheControl => "X-Blaze-Cache-Control",
            Self::ContentDisposition => "X-Blaze-Content-Disposition",
            Self::ContentLanguage => "X-Blaze-Content-Language",
        }
    }

    /// Its value, checked: printable ASCII, not blank, at most
    /// [`MAX_PRESENTATION_BYTES`] (it is sent as a header value).
    fn checked(self, value: &str) -> Result<&str, Error> {
        let valid = !value.trim().is_empty()
            && value.len() <= MAX_PRESENTATION_BYTES
            && value.bytes().all(|b| (0x20..=0x7e).contains(&b));
        if !valid {
            return Err(Error::Usage(format!(
                "{} must be non-blank printable ASCII of at most {MAX_PRESENTATION_BYTES} bytes, got {value:?}",
                self.name()
            )));
        }
        Ok(value)
    }
}

impl Presentation {
    /// The value of `field`.
    pub fn get(&self, field: PresentationField) -> Option<&str> {
        match field {
            PresentationField::CacheControl => self.cache_control.as_deref(),
            PresentationField::ContentDisposition => self.content_disposition.as_deref(),
            PresentationField::ContentLanguage => self.content_language.as_deref(),
        }
    }

    /// The fields a metadata document or an answer sets: its string members
    /// of those names.
    pub(crate) fn of(data: &Map<String, Value>) -> Self {
        let field = |f: PresentationField| data.get(f.name())?.as_str().map(str::to_owned);
        Self {
            cache_control: field(PresentationField::CacheControl),
            content_disposition: field(PresentationField::ContentDisposition),
            content_language: field(PresentationField::ContentLanguage),
        }
    }
}

/// What an upload says about its file (Firebase's `UploadMetadata`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadMetadata {
    /// Its content type (printable ASCII); `None`: `application/octet-stream`.
    pub content_type: Option<String>,
    /// Its custom metadata.
    pub metadata: BTreeMap<String, String>,
    /// How downloads present it.
    pub presentation: Presentation,
}

impl UploadMetadata {
    /// A file of `content_type`, with nothing else set.
    pub fn typed(content_type: &str) -> Self {
        Self {
            content_type: Some(content_type.to_owned()),
            ..Self::default()
        }
    }

    /// `request` with the headers that say all this (`type_header` carries
    /// the content type), each checked.
    pub(crate) fn headers<'a>(
        &self,
        mut request: Request<'a>,
        type_header: &'static str,
    ) -> Result<Request<'a>, Error> {
        request = request.header(
            type_header,
            checked_content_type(self.content_type.as_deref())?,
        );
        if !self.metadata.is_empty() {
            request = request.header("X-Blaze-Metadata", ascii_json(&json!(self.metadata)));
        }
        for field in PresentationField::ALL {
            if let Some(value) = self.presentation.get(field) {
                request = request.header(field.upload_header(), field.checked(value)?.to_owned());
            }
        }
        Ok(request)
    }
}

/// What [`Files::update_metadata`](super::Files::update_metadata) changes
/// (Firebase's `SettableMetadata`); what it leaves out is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataUpdate {
    /// A new content type.
    pub content_type: Option<String>,
    /// Custom metadata merged into the file's: `Some` sets a key, `None`
    /// removes it.
    pub metadata: BTreeMap<String, Option<String>>,
    /// Presentation fields: `Some` sets one, `None` removes it.
    pub presentation: BTreeMap<PresentationField, Option<String>>,
}

impl MetadataUpdate {
    /// The `PATCH` body (spec 15.3), checked; `Usage` when it changes nothing.
    pub(crate) fn body(&self) -> Result<Value, Error> {
        let mut body = Map::new();
        if self.content_type.is_some() {
            let checked = checked_content_type(self.content_type.as_deref())?;
            body.insert("contentType".into(), checked.into());
        }
        if !self.metadata.is_empty() {
            body.insert("metadata".into(), json!(self.metadata));
        }
        for (field, value) in &self.presentation {
            let value = match value {
                Some(value) => Value::from(field.checked(value)?),
                None => Value::Null,
            };
            body.insert(field.name().into(), value);
        }
        if body.is_empty() {
            return Err(Error::Usage("update_metadata: nothing to change".into()));
        }
        Ok(Value::Object(body))
    }
}

/// The content type to send: `given` (printable ASCII) or `application/octet-stream`.
fn checked_content_type(given: Option<&str>) -> Result<String, Error> {
    let value = given.unwrap_or("application/octet-stream");
    if value.trim().is_empty() || !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(Error::Usage(format!(
            "a content type must be non-empty printable ASCII, got {value:?}"
        )));
    }
    Ok(value.to_owned())
}

/// JSON with every character outside printable ASCII escaped, so it is a valid header value.
fn ascii_json(value: &Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        if (' '..='~').contains(&c) {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_json_is_printable_ascii_and_parses_back() {
        let value = json!({"note": "naïve ☃ 😀\n"});
        let header = ascii_json(&value);
        assert!(
            header.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "{header}"
        );
        assert_eq!(serde_json::from_str::<Value>(&header).unwrap(), value);
    }

    #[test]
    fn content_types_are_checked() {
        assert_eq!(
            checked_content_type(None).unwrap(),
            "application/octet-stream"
        );
        assert_eq!(
            checked_content_type(Some("image/png")).unwrap(),
            "image/png"
        );
        for bad in ["", " ", "text/plain\r\nX: 1", "tëxt"] {
            assert!(checked_content_type(Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn updates_are_patch_bodies_of_what_they_change() {
        let update = MetadataUpdate {
            presentation: BTreeMap::from([
                (
                    PresentationField::CacheControl,
                    Some("public, max-age=60".to_owned()),
                ),
                (PresentationField::ContentLanguage, None),
            ]),
            ..MetadataUpdate::default()
        };
        assert_eq!(
            update.body().unwrap(),
            json!({"cacheControl": "public, max-age=60", "contentLanguage": null})
        );
        assert!(
            MetadataUpdate::default().body().is_err(),
            "nothing to change"
        );
        let long = "a".repeat(MAX_PRESENTATION_BYTES + 1);
        for bad in ["", " ", "a\r\nSet-Cookie: x", "é", long.as_str()] {
            let update = MetadataUpdate {
                presentation: BTreeMap::from([(
                    PresentationField::ContentDisposition,
                    Some(bad.to_owned()),
                )]),
                ..MetadataUpdate::default()
            };
            assert!(matches!(update.body(), Err(Error::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn presentation_is_read_from_documents() {
        let data = json!({"cacheControl": "no-store", "contentLanguage": 3});
        let read = Presentation::of(data.as_object().unwrap());
        assert_eq!(read.cache_control.as_deref(), Some("no-store"));
        assert_eq!(read.content_language, None, "not a string: not set");
        assert_eq!(read.get(PresentationField::CacheControl), Some("no-store"));
    }
}
