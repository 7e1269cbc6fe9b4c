//! The memory of the `workerd` process a `wrangler dev` started: found by
//! the wrangler process serving a port, then the `workerd` in its process
//! group, and read from `/proc/<pid>/status`.

use std::fs;

/// A process's resident memory, in KiB.
#[derive(Clone, Copy, Debug)]
pub struct Rss {
    /// The process id.
    pub pid: u32,
    /// `VmRSS`: resident now.
    pub now_kib: u64,
    /// `VmHWM`: the most resident so far.
    pub peak_kib: u64,
}

impl Rss {
    /// `VmRSS` in MiB.
    pub fn now_mib(&self) -> f64 {
        self.now_kib as f64 / 1024.0
    }

    /// `VmHWM` in MiB.
    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }
}

/// The memory of the `workerd` serving `port` (the largest, if several),
/// or `None` when it cannot be found (not Linux, or not running).
pub fn workerd_memory(port: u16) -> Option<Rss> {
    let port = port.to_string();
    let procs: Vec<(u32, Vec<String>)> = fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, cmdline(pid)?)))
        .collect();
    let wrangler = procs.iter().find(|(_, args)| {
        args.iter().any(|a| a.contains("wrangler"))
            && args.windows(2).any(|w| w[0] == "--port" && w[1] == port)
    })?;
    let group = process_group(wrangler.0)?;
    procs
        .iter()
        .filter(|(pid, args)| {
            args.first().is_some_and(|a| a.contains("workerd"))
                && process_group(*pid) == Some(group)
        })
        .filter_map(|(pid, _)| status(*pid))
        .max_by_key(|r| r.now_kib)
}

fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

fn process_group(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After "pid (comm) ": state, ppid, pgrp.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(2)?.parse().ok()
}

fn status(pid: u32) -> Option<Rss> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(Rss {
        pid,
        now_kib: field("VmRSS:")?,
        peak_kib: field("VmHWM:")?,
    })
}
