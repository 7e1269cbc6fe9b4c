//! `wrangler dev` as a child process group, on loopback, with its own state directory.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The Blaze worker's wrangler config, relative to the repository root.
const BLAZE_CONFIG: &str = "crates/blaze-worker/wrangler.toml";

/// The local development identity (README, "Identity"; `scripts/run.sh`
/// passes the same) and open access rules: every worker a test starts has
/// them unless the test names a variable itself, so requests without a
/// credential are anonymous and every identity may read and write (a test
/// of the rules passes its own `BLAZE_RULES`).
pub const DEV_IDENTITY: [&str; 4] = [
    r#"BLAZE_AUTH:{"hs256":{"issuer":"blaze-dev","audience":"blaze"}}"#,
    "BLAZE_HS256_SECRET:blaze-dev-secret-not-for-production",
    "BLAZE_ADMIN_KEYS:blaze-dev-admin-key",
    OPEN_RULES,
];

/// `BLAZE_RULES` allowing everything to everyone: for tests of everything
/// but the rules.
pub const OPEN_RULES: &str = "BLAZE_RULES:rules_version = '2'; service cloud.firestore { \
    match /databases/{database}/documents { match /{document=**} { allow read, write: if true; } } }";

/// A running `wrangler dev`; killed with its whole process group on drop.
pub struct WranglerDev {
    child: Option<Child>,
    /// The port it serves on, on 127.0.0.1.
    pub port: u16,
    state: PathBuf,
    log: PathBuf,
}

impl WranglerDev {
    /// Starts the built worker (see `scripts/build-worker.sh`) with a fresh state directory.
    pub fn start(name: &str) -> Self {
        Self::start_config(BLAZE_CONFIG, name)
    }

    /// Starts the worker of wrangler config `config` (relative to the
    /// repository root) with a fresh state directory.
    pub fn start_config(config: &str, name: &str) -> Self {
        let state = std::env::temp_dir().join(format!("blaze-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        Self::launch(config, state, &[])
    }

    /// Starts the worker of wrangler config `config` with `[vars]`
    /// overridden as [`Self::start_with_vars`] does, with a fresh state
    /// directory.
    pub fn start_config_with_vars(config: &str, name: &str, vars: &[&str]) -> Self {
        let state = std::env::temp_dir().join(format!("blaze-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        Self::launch(config, state, vars)
    }

    /// Starts the Blaze worker on a new port, keeping the state directory `state`.
    pub fn start_with_state(state: PathBuf) -> Self {
        Self::launch(BLAZE_CONFIG, state, &[])
    }

    /// Starts the Blaze worker on a new port, keeping the state directory
    /// `state`, with `[vars]` overridden as [`Self::start_with_vars`] does:
    /// a redeploy with another configuration.
    pub fn start_with_state_and_vars(state: PathBuf, vars: &[&str]) -> Self {
        Self::launch(BLAZE_CONFIG, state, vars)
    }

    /// Starts the Blaze worker with `[vars]` overridden (`NAME:VALUE` each;
    /// a name of [`DEV_IDENTITY`] named here replaces its value there).
    pub fn start_with_vars(name: &str, vars: &[&str]) -> Self {
        Self::start_config_with_vars(BLAZE_CONFIG, name, vars)
    }

    fn launch(config: &str, state: PathBuf, vars: &[&str]) -> Self {
        let root = repo_root();
        let wrangler = root.join(super::availability::WRANGLER);
        let shim = root.join(super::availability::WORKER_SHIM);
        assert!(
            wrangler.exists() && (config != BLAZE_CONFIG || shim.exists()),
            "run scripts/build-worker.sh first (it installs wrangler and builds the worker)"
        );
        std::fs::create_dir_all(&state).expect("state directory");
        // A port another process takes between `free_port` and workerd's
        // bind makes wrangler exit: start again on another, up to three times.
        for attempt in 1..=3 {
            match Self::launch_once(config, &state, vars) {
                Ok(server) => return server,
                Err(log) if attempt < 3 && log.contains("Address already in use") => continue,
                Err(log) => panic!("wrangler dev did not start; log:\n{log}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// One start on a fresh port: the server once it answers, or wrangler's
    /// log if it exited or did not answer in 60 s.
    fn launch_once(config: &str, state: &Path, vars: &[&str]) -> Result<Self, String> {
        let root = repo_root();
        let wrangler = root.join(super::availability::WRANGLER);
        let port = free_port();
        let log = state.with_extension(format!("{port}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(wrangler)
            .current_dir(&root)
            .args(["dev", "--config", config])
            .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-port", &free_port().to_string()])
            .args(with_dev_identity(vars).flat_map(|v| ["--var", v]))
            .arg("--persist-to")
            .arg(state)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("CI", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("wrangler starts");
        if wait_ready(&mut child, port) {
            return Ok(Self {
                child: Some(child),
                port,
                state: state.to_path_buf(),
                log,
            });
        }
        // Not a server yet: its group is killed and its log kept for the
        // message; the state directory stays for the next attempt.
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = child.wait();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        Err(text)
    }

    /// Everything wrangler printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The state directory (to start again on the same state).
    pub fn state(&self) -> &Path {
        &self.state
    }

    /// Kills the whole process group with SIGKILL, at once, keeping the state directory.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
        }
    }

    /// The base HTTP URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Stops the worker and deletes its state directory and log, except while
/// a test is failing (they are kept for its post-mortem; the failure
/// message names the log).
impl Drop for WranglerDev {
    fn drop(&mut self) {
        self.kill();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.state);
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Whether the wrangler `child` answers `GET /v1/health` on `port` within
/// 60 s (false as soon as it exits).
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let req = "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
            let mut answer = String::new();
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_to_string(&mut answer).is_ok()
                && answer.starts_with("HTTP/1.1 200")
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// `vars` and the [`DEV_IDENTITY`] variables `vars` does not name.
fn with_dev_identity<'a>(vars: &'a [&'a str]) -> impl Iterator<Item = &'a str> {
    let name = |v: &str| v.split(':').next().unwrap_or_default().to_owned();
    let named: Vec<String> = vars.iter().map(|v| name(v)).collect();
    DEV_IDENTITY
        .into_iter()
        .filter(move |d| !named.contains(&name(d)))
        .chain(vars.iter().copied())
}
