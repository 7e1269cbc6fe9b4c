//! The memory of the `workerd` processes serving a `wrangler dev`, read from
//! `/proc` (Linux only): for tests that bound what a hostile client can make
//! the worker hold.

use std::fs;

/// `VmRSS` and `VmHWM` (peak), in KiB, summed over the `workerd` processes
/// of the `wrangler dev` serving 127.0.0.1:`port`; `None` when none is found.
pub fn workerd_memory(port: u16) -> Option<(u64, u64)> {
    let group = wrangler_group(port)?;
    let mut found = None;
    for pid in pids() {
        match stat(pid) {
            Some((comm, pgrp)) if pgrp == group && comm == "workerd" => {}
            _ => continue,
        }
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let (rss, hwm) = found.get_or_insert((0, 0));
        *rss += status_kib(&status, "VmRSS:");
        *hwm += status_kib(&status, "VmHWM:");
    }
    found
}

/// The process group of the `wrangler dev` started with `--port port`.
fn wrangler_group(port: u16) -> Option<u32> {
    let wanted = format!("\0--port\0{port}\0");
    let pid = pids().find(|pid| {
        fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&wanted))
            .unwrap_or(false)
    })?;
    Some(stat(pid)?.1)
}

/// A process's command name and process group, from `/proc/<pid>/stat`
/// ("pid (comm) state ppid pgrp ...", where comm may hold spaces).
fn stat(pid: u32) -> Option<(String, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(") ")?;
    let comm = head.split_once(" (")?.1.to_owned();
    let pgrp = rest.split(' ').nth(2)?.parse().ok()?;
    Some((comm, pgrp))
}

fn pids() -> impl Iterator<Item = u32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

fn status_kib(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
