//! `blaze cp`, `blaze ls` and `blaze rm` against the real worker under
//! `wrangler dev`: a local folder up (recursively) and back down, byte for
//! byte; a file by name; listing; removing; and a large copy (a resumable
//! upload, spec 15.7) stopped part way and resumed by running it again.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use blaze_client::{Blaze, ConnectOptions, Credentials, ErrorCode};
use blaze_tests::live::{e2e, WranglerDev};
use serde_json::Value;

mod common;

const ADMIN_KEY: &str = "blaze-dev-admin-key";

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("blaze-cli-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn command(server: &WranglerDev, cache: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_blaze"));
    command
        .args(["--url", &server.url(), "--key", ADMIN_KEY])
        .args(args)
        .env("BLAZE_CACHE_DIR", cache)
        .stdin(Stdio::null());
    command
}

fn blaze(server: &WranglerDev, cache: &Path, args: &[&str]) -> Output {
    command(server, cache, args).output().expect("blaze runs")
}

/// Runs `blaze`, asserts success, returns its JSON lines.
fn ok(server: &WranglerDev, cache: &Path, args: &[&str]) -> Vec<Value> {
    common::json_lines(blaze(server, cache, args), args)
}

/// `ls` lines split into the files' and the subfolders' (`{"folder": …}`).
fn files_and_folders(lines: Vec<Value>) -> (Vec<Value>, Vec<Value>) {
    lines.into_iter().partition(|l| l.get("folder").is_none())
}

fn field<'a>(lines: &'a [Value], key: &str) -> Vec<&'a str> {
    lines
        .iter()
        .map(|l| l[key].as_str().expect("a string"))
        .collect()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2] ^ seed)
        .collect()
}

#[test]
fn cp_both_ways_ls_and_rm() {
    let Some(_one) = e2e() else { return };
    let server = WranglerDev::start("cli-files");
    let tmp = TempDir::new("cp");
    let cache = tmp.0.join("cache");
    let tree = tmp.0.join("tree");
    std::fs::create_dir_all(tree.join("sub/deep")).unwrap();
    std::fs::write(tree.join("a.txt"), b"hello").unwrap();
    std::fs::write(tree.join("empty.bin"), b"").unwrap();
    let big = pattern(300_000, 1);
    std::fs::write(tree.join("sub/deep/c.bin"), &big).unwrap();
    let tree_arg = tree.to_str().unwrap();

    let up = ok(&server, &cache, &["cp", tree_arg, "blaze:up/"]);
    assert_eq!(
        field(&up, "path"),
        ["up/a.txt", "up/empty.bin", "up/sub/deep/c.bin"]
    );
    assert_eq!(
        up.iter()
            .map(|l| l["size"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [5, 0, 300_000]
    );

    let lines = ok(&server, &cache, &["ls", "blaze:up"]);
    let (listed, folders) = files_and_folders(lines);
    assert_eq!(
        field(&listed, "name"),
        ["a.txt", "empty.bin"],
        "the folder's own files"
    );
    assert_eq!(field(&folders, "folder"), ["up/sub"], "then its subfolders");
    let (_, deeper) = files_and_folders(ok(&server, &cache, &["ls", "blaze:up/sub"]));
    assert_eq!(field(&deeper, "folder"), ["up/sub/deep"]);
    assert_eq!(
        field(&listed, "contentType"),
        ["text/plain", "application/octet-stream"]
    );
    assert_eq!(
        field(&ok(&server, &cache, &["ls", "blaze:up/sub/deep"]), "path"),
        ["up/sub/deep/c.bin"]
    );
    // `--cache-control` sets the files' cacheControl (spec 15.2); ls shows it.
    let a = tree.join("a.txt");
    let cached = ["cp", "--cache-control", "public, max-age=60"];
    let cached = [&cached[..], &[a.to_str().unwrap(), "blaze:cached/"]].concat();
    ok(&server, &cache, &cached);
    assert_eq!(
        field(
            &ok(&server, &cache, &["ls", "blaze:cached"]),
            "cacheControl"
        ),
        ["public, max-age=60"]
    );
    assert!(
        listed.iter().all(|l| l.get("cacheControl").is_none()),
        "unset: absent"
    );

    let out = tmp.0.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let one = out.join("c-copy.bin");
    ok(
        &server,
        &cache,
        &["cp", "blaze:up/sub/deep/c.bin", one.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read(&one).unwrap(),
        big,
        "a file down, byte for byte"
    );
    ok(
        &server,
        &cache,
        &["cp", "blaze:up/sub/deep/c.bin", out.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read(out.join("c.bin")).unwrap(),
        big,
        "into an existing folder, by its name"
    );

    let folder = out.join("folder");
    let down = ok(
        &server,
        &cache,
        &["cp", "blaze:up", folder.to_str().unwrap()],
    );
    assert_eq!(
        field(&down, "path"),
        ["up/a.txt", "up/empty.bin", "up/sub/deep/c.bin"],
        "the folder with its subfolders"
    );
    assert_eq!(std::fs::read(folder.join("a.txt")).unwrap(), b"hello");
    assert_eq!(std::fs::read(folder.join("empty.bin")).unwrap(), b"");
    assert_eq!(std::fs::read(folder.join("sub/deep/c.bin")).unwrap(), big);
    let mut leftovers: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    leftovers.sort();
    assert_eq!(
        leftovers,
        ["a.txt", "empty.bin", "sub"],
        "no partial files left"
    );

    let renamed = ok(
        &server,
        &cache,
        &[
            "cp",
            tree.join("a.txt").to_str().unwrap(),
            "blaze:single/named.txt",
        ],
    );
    assert_eq!(field(&renamed, "path"), ["single/named.txt"]);

    assert!(ok(&server, &cache, &["rm", "blaze:up/a.txt"]).is_empty());
    let (left, _) = files_and_folders(ok(&server, &cache, &["ls", "blaze:up"]));
    assert_eq!(field(&left, "name"), ["empty.bin"]);
    let again = blaze(&server, &cache, &["rm", "blaze:up/a.txt"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not_found"));
    let missing = blaze(
        &server,
        &cache,
        &["cp", "blaze:nothing/here", out.to_str().unwrap()],
    );
    assert_eq!(
        missing.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );

    // A remote file that is also a folder (spec 15.2) cannot go into one
    // local folder: refused before anything is written.
    let a = tree.join("a.txt");
    ok(
        &server,
        &cache,
        &["cp", a.to_str().unwrap(), "blaze:clash/b"],
    );
    ok(
        &server,
        &cache,
        &["cp", a.to_str().unwrap(), "blaze:clash/b/c.txt"],
    );
    let clash = out.join("clash");
    let refused = blaze(
        &server,
        &cache,
        &["cp", "blaze:clash", clash.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(2));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("blaze:clash/b is both a file and a folder"),
        "{why}"
    );
    assert!(!clash.exists(), "nothing written");

    let both_local = blaze(&server, &cache, &["cp", tree_arg, out.to_str().unwrap()]);
    assert_eq!(both_local.status.code(), Some(2));
    assert!(!cache.exists(), "small files leave no upload state");
}

/// The id in the only state file under `cache`, once there is one.
fn saved_upload(cache: &Path) -> Option<String> {
    let entry = std::fs::read_dir(cache.join("uploads"))
        .ok()?
        .next()?
        .ok()?;
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(entry.path()).ok()?).ok()?;
    saved["upload"].as_str().map(str::to_owned)
}

#[test]
fn cp_resumes_a_large_upload_when_run_again() {
    let Some(_one) = e2e() else { return };
    let server = WranglerDev::start("cli-files-resume");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let files = runtime
        .block_on(async {
            let options = ConnectOptions {
                credentials: Credentials::Fixed(ADMIN_KEY.into()),
                ..ConnectOptions::default()
            };
            Blaze::connect_with(&server.url(), options).await
        })
        .unwrap()
        .files()
        .unwrap();

    let tmp = TempDir::new("resume");
    let cache = tmp.0.join("cache");
    let local = tmp.0.join("big.bin");
    let bytes = pattern(48 * 1024 * 1024 + 11, 5);
    std::fs::write(&local, &bytes).unwrap();
    let args = [
        "cp",
        "--resumable-over",
        "0",
        local.to_str().unwrap(),
        "blaze:big/big.bin",
    ];

    // The first run is stopped once the server holds a part.
    let mut first = command(&server, &cache, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let id = loop {
        assert!(Instant::now() < deadline, "no part stored within a minute");
        if let Some(id) = saved_upload(&cache) {
            if let Ok(upload) = runtime.block_on(files.resume_upload("big/big.bin", &id)) {
                if !upload.stored.is_empty() {
                    break id;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    first.kill().unwrap();
    first.wait().unwrap();
    let stored = runtime
        .block_on(files.resume_upload("big/big.bin", &id))
        .expect("the upload is still open");
    assert!(
        stored.stored.len() < stored.parts as usize,
        "stopped before every part was sent"
    );

    let done = ok(&server, &cache, &args);
    assert_eq!(done[0]["size"].as_u64(), Some(bytes.len() as u64));
    let after = runtime.block_on(files.resume_upload("big/big.bin", &id));
    assert_eq!(
        after.unwrap_err().code(),
        Some(ErrorCode::NotFound),
        "the saved upload was the one completed"
    );
    assert!(saved_upload(&cache).is_none(), "the state file is gone");
    let copy = tmp.0.join("copy.bin");
    ok(
        &server,
        &cache,
        &["cp", "blaze:big/big.bin", copy.to_str().unwrap()],
    );
    assert!(
        std::fs::read(&copy).unwrap() == bytes,
        "the resumed file is whole"
    );
}
