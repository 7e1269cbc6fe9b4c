//! The memory of the `workerd` process serving a `wrangler dev`, read from
//! `/proc/<pid>/status` (Linux only).

use super::WranglerDev;

/// Resident memory of one process, in kibibytes.
#[derive(Clone, Copy, Debug)]
pub struct WorkerMemory {
    /// The `workerd` process id.
    pub pid: u32,
    /// `VmRSS`: resident now.
    pub rss_kb: u64,
    /// `VmHWM`: the most ever resident.
    pub hwm_kb: u64,
}

impl WorkerMemory {
    /// `VmRSS` in MiB.
    pub fn rss_mb(&self) -> f64 {
        self.rss_kb as f64 / 1024.0
    }

    /// `VmHWM` in MiB.
    pub fn hwm_mb(&self) -> f64 {
        self.hwm_kb as f64 / 1024.0
    }
}

/// The memory of the `workerd` in `server`'s process group (the largest, if
/// there are several), or `None` when there is none (stopped, or killed).
pub fn worker_memory(server: &WranglerDev) -> Option<WorkerMemory> {
    let group = server.process_group()?;
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| is_workerd_in(pid, group))
        .filter_map(status_of)
        .max_by_key(|m| m.rss_kb)
}

/// Whether process `pid` is a `workerd` in process group `group`.
fn is_workerd_in(pid: u32, group: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ppid pgrp ...": comm may hold spaces, so split at the last ')'.
    let Some((head, tail)) = stat.rsplit_once(')') else {
        return false;
    };
    let comm = head.split_once('(').map_or("", |(_, c)| c);
    comm == "workerd" && tail.split_whitespace().nth(2) == Some(group.to_string().as_str())
}

fn status_of(pid: u32) -> Option<WorkerMemory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()
    };
    Some(WorkerMemory {
        pid,
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}
