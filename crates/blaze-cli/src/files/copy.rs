//! `blaze cp`: local files and folders up to the server, remote files and
//! folders down, with a progress bar of bytes on standard error (hidden when
//! it is not a terminal) and one JSON line per file copied. Files over
//! `--resumable-over` bytes go up in resumable parts (spec 15.7), the upload
//! id kept in a state file (`upload_state`) so that running the same copy
//! again sends only the parts the server does not hold. A download goes to
//! `<file>.blaze-part` and is renamed when whole.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use blaze_client::files::{Files, Presentation, ResumableUpload, UploadMetadata};
use blaze_client::{Blaze, ErrorCode};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

use super::upload_state::UploadState;
use super::{files_of, list_tree, remote};
use crate::args::CpArgs;
use crate::output;
use crate::Failure;

/// `blaze cp FROM TO`: exactly one side is remote (`blaze:PATH`).
pub async fn run(db: &Blaze, url: &str, args: &CpArgs) -> Result<(), Failure> {
    let files = files_of(db)?;
    match (remote(&args.from), remote(&args.to)) {
        (None, Some(to)) => upload(&files, url, Path::new(&args.from), to, args).await,
        (Some(from), None) => download(&files, from.trim_matches('/'), Path::new(&args.to)).await,
        _ => Err(Failure::Usage(
            "blaze cp copies between a local path and a remote blaze:PATH: exactly one side must start with blaze:".into(),
        )),
    }
}

/// One file to upload: where it is and where it goes.
struct Upload {
    local: PathBuf,
    remote: String,
    size: u64,
}

async fn upload(
    files: &Files,
    url: &str,
    from: &Path,
    to: &str,
    args: &CpArgs,
) -> Result<(), Failure> {
    let jobs = upload_jobs(from, to)?;
    let progress = bar(jobs.iter().map(|j| j.size).sum());
    for job in &jobs {
        let content_type = args
            .content_type
            .clone()
            .unwrap_or_else(|| guess_content_type(&job.local).to_owned());
        let meta = UploadMetadata {
            content_type: Some(content_type),
            presentation: Presentation {
                cache_control: args.cache_control.clone(),
                ..Presentation::default()
            },
            ..UploadMetadata::default()
        };
        let result = if job.size > args.resumable_over {
            upload_in_parts(files, url, job, &meta, &progress).await?
        } else {
            let file = tokio::fs::File::open(&job.local).await?;
            let mut reader = Counting {
                inner: file,
                progress: &progress,
            };
            files
                .upload(&job.remote, &mut reader, job.size, &meta)
                .await?
        };
        output::print(&json!({
            "local": job.local.to_string_lossy(),
            "path": result.path,
            "size": result.size,
            "md5": result.md5,
            "version": result.version,
        }));
    }
    progress.finish_and_clear();
    Ok(())
}

/// The files under `from` (a file, or a folder walked recursively, in name
/// order) and their remote paths under `to`.
fn upload_jobs(from: &Path, to: &str) -> Result<Vec<Upload>, Failure> {
    let meta =
        std::fs::metadata(from).map_err(|e| Failure::Usage(format!("{}: {e}", from.display())))?;
    let into = to.trim_matches('/');
    if meta.is_file() {
        let name = file_name(from)?;
        let remote = if to.is_empty() || to.ends_with('/') {
            join(into, &name)
        } else {
            into.to_owned()
        };
        return Ok(vec![Upload {
            local: from.to_owned(),
            remote,
            size: meta.len(),
        }]);
    }
    let mut jobs = Vec::new();
    walk(from, into, &mut jobs)?;
    Ok(jobs)
}

fn walk(dir: &Path, remote: &str, jobs: &mut Vec<Upload>) -> Result<(), Failure> {
    let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = file_name(&path)?;
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            walk(&path, &join(remote, &name), jobs)?;
        } else if meta.is_file() {
            jobs.push(Upload {
                local: path,
                remote: join(remote, &name),
                size: meta.len(),
            });
        }
    }
    Ok(())
}

/// Sends `job` in parts: resumes the upload the state file names (only its
/// missing parts), or starts one and saves its id first.
async fn upload_in_parts(
    files: &Files,
    url: &str,
    job: &Upload,
    meta: &UploadMetadata,
    progress: &ProgressBar,
) -> Result<blaze_client::files::UploadResult, Failure> {
    let state = UploadState::of(url, &job.remote, &job.local, job.size);
    let saved = state.as_ref().and_then(UploadState::load);
    let resumed = match saved {
        Some(id) => match files.resume_upload(&job.remote, &id).await {
            Ok(upload) if upload.size == job.size => Some(upload),
            Ok(_) => None,
            Err(e) if e.code() == Some(ErrorCode::NotFound) => None,
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let mut upload: ResumableUpload = match resumed {
        Some(upload) => upload,
        None => {
            let upload = files.start_upload(&job.remote, job.size, meta).await?;
            if let Some(state) = &state {
                state.save(&upload.id)?;
            }
            upload
        }
    };
    let base = progress.position();
    progress.set_position(base + upload.stored_bytes());
    let mut file = tokio::fs::File::open(&job.local).await?;
    let result = files
        .upload_resumable(&mut upload, &mut file, |u| {
            progress.set_position(base + u.stored_bytes())
        })
        .await?;
    if let Some(state) = &state {
        state.remove();
    }
    Ok(result)
}

async fn download(files: &Files, from: &str, to: &Path) -> Result<(), Failure> {
    let into_dir = to.is_dir() || to.to_string_lossy().ends_with('/');
    let (jobs, base) = match files.metadata(from).await {
        Ok(file) => {
            let local = if into_dir {
                to.join(&file.name)
            } else {
                to.to_owned()
            };
            (vec![(file, local)], None)
        }
        Err(e) if e.code() == Some(ErrorCode::NotFound) || from.is_empty() => {
            let listed = list_tree(files, from).await?;
            if listed.is_empty() {
                return Err(e.into());
            }
            if let Some(path) = file_and_folder(listed.iter().map(|f| f.path.as_str())) {
                return Err(Failure::Usage(format!(
                    "blaze:{path} is both a file and a folder, which a local folder cannot hold: copy them one at a time"
                )));
            }
            let jobs = listed.into_iter().map(|f| {
                // The file's path below `from`, segment by segment.
                let below = f.path.get(from.len()..).unwrap_or(&f.name);
                let local = below.split('/').filter(|s| !s.is_empty());
                let local = local.fold(to.to_owned(), |dir, s| dir.join(s));
                (f, local)
            });
            (jobs.collect(), Some(to))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(dir) = base {
        tokio::fs::create_dir_all(dir).await?;
    }
    let progress = bar(jobs.iter().map(|(f, _)| f.size).sum());
    for (file, local) in &jobs {
        if let Some(dir) = local.parent().filter(|_| base.is_some()) {
            tokio::fs::create_dir_all(dir).await?;
        }
        download_one(files, &file.path, local, &progress).await?;
        output::print(
            &json!({"path": file.path, "local": local.to_string_lossy(), "size": file.size}),
        );
    }
    progress.finish_and_clear();
    Ok(())
}

async fn download_one(
    files: &Files,
    path: &str,
    local: &Path,
    progress: &ProgressBar,
) -> Result<(), Failure> {
    let mut part = local.as_os_str().to_owned();
    part.push(".blaze-part");
    let part = PathBuf::from(part);
    let mut out = tokio::fs::File::create(&part).await?;
    let mut stream = files.download(path, None).await?;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                drop(out);
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e.into());
            }
        };
        out.write_all(&chunk).await?;
        progress.inc(chunk.len() as u64);
    }
    out.flush().await?;
    out.sync_all().await?;
    tokio::fs::rename(&part, local).await?;
    Ok(())
}

/// A bar of bytes on standard error (indicatif hides it when that is not a terminal).
fn bar(total: u64) -> ProgressBar {
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .expect("a valid template"),
    )
}

/// A reader that advances the progress bar by what it reads.
struct Counting<'a, R> {
    inner: R,
    progress: &'a ProgressBar,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<'_, R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.progress.inc((buf.filled().len() - before) as u64);
        polled
    }
}

fn file_name(path: &Path) -> Result<String, Failure> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| Failure::Usage(format!("{}: no file name in UTF-8", path.display())))
}

/// A path among `paths` that is also a folder of another (spec 15.2 lets a
/// file and a folder share a name; a local folder cannot), if any.
fn file_and_folder<'a>(paths: impl Iterator<Item = &'a str> + Clone) -> Option<&'a str> {
    let folders: std::collections::HashSet<&str> = paths
        .clone()
        .flat_map(|path| path.match_indices('/').map(move |(at, _)| &path[..at]))
        .collect();
    paths.into_iter().find(|path| folders.contains(path))
}

fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

/// The content type of a common file extension, else `application/octet-stream`.
fn guess_content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "json" => "application/json",
        "csv" => "text/csv",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "mp3" => "audio/mpeg",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_also_a_folder_is_found_before_any_download() {
        let check = |paths: &[&str], expected: Option<&str>| {
            assert_eq!(
                file_and_folder(paths.iter().copied()),
                expected,
                "{paths:?}"
            );
        };
        check(&["a/x", "a/y/z", "b"], None);
        check(&["up/b", "up/b/c.txt"], Some("up/b"));
        check(&["up/b/c/d", "up/b/c"], Some("up/b/c"));
        check(&["up/b.txt", "up/b/c"], None);
        check(&[], None);
    }

    #[test]
    fn a_folder_maps_to_remote_paths_recursively_and_a_file_by_the_destination() {
        let dir = std::env::temp_dir().join(format!("blaze-cli-cp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        std::fs::write(dir.join("b.txt"), b"bb").unwrap();
        std::fs::write(dir.join("a.txt"), b"a").unwrap();
        std::fs::write(dir.join("sub/deeper/c.bin"), b"ccc").unwrap();
        let jobs = upload_jobs(&dir, "dest/").unwrap();
        let got: Vec<(&str, u64)> = jobs.iter().map(|j| (j.remote.as_str(), j.size)).collect();
        assert_eq!(
            got,
            [
                ("dest/a.txt", 1),
                ("dest/b.txt", 2),
                ("dest/sub/deeper/c.bin", 3)
            ]
        );
        let file = dir.join("a.txt");
        assert_eq!(upload_jobs(&file, "x/").unwrap()[0].remote, "x/a.txt");
        assert_eq!(upload_jobs(&file, "x/y.txt").unwrap()[0].remote, "x/y.txt");
        assert_eq!(upload_jobs(&file, "").unwrap()[0].remote, "a.txt");
        assert!(matches!(
            upload_jobs(&dir.join("missing"), "x"),
            Err(Failure::Usage(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(guess_content_type(Path::new("a/b.PNG")), "image/png");
        assert_eq!(guess_content_type(Path::new("notes.txt")), "text/plain");
        assert_eq!(
            guess_content_type(Path::new("blob")),
            "application/octet-stream"
        );
    }
}
