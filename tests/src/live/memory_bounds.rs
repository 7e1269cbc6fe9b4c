//! The memory of the `workerd` process a `wrangler dev` started, from /proc.

use super::WranglerDev;

/// `(VmRSS, VmHWM)` in KiB of the largest `workerd` process in `server`'s
/// process group; `None` when there is none (or no /proc).
pub fn workerd_memory(server: &WranglerDev) -> Option<(u64, u64)> {
    let group = server.group()?.to_string();
    let mut best: Option<(u64, u64)> = None;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let dir = entry.path();
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp ...`: comm may hold spaces, so split after ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let pgrp = rest.split_whitespace().nth(2);
        if !head.ends_with("(workerd") || pgrp != Some(group.as_str()) {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(dir.join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        };
        if let (Some(rss), Some(hwm)) = (field("VmRSS:"), field("VmHWM:")) {
            if best.is_none_or(|(r, _)| rss > r) {
                best = Some((rss, hwm));
            }
        }
    }
    best
}
