//! The memory of the `workerd` process a `wrangler dev` started, read from
//! `/proc` (Linux): its resident set now and at its peak.

/// `VmRSS` and `VmHWM` (kB) of the `workerd` under the `wrangler dev`
/// serving `port` (the harness starts each in its own process group, led by
/// wrangler); `None` when it cannot be found.
pub fn workerd_memory(port: u16) -> Option<(u64, u64)> {
    let port = port.to_string();
    let procs: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    let leader = procs.iter().copied().find(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        args.iter().any(|a| a.ends_with(b"wrangler"))
            && args
                .windows(2)
                .any(|w| w[0] == b"--port" && w[1] == port.as_bytes())
    })?;
    procs
        .iter()
        .filter(|pid| process_group(**pid) == Some(leader))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "workerd")
        })
        .filter_map(|pid| status_kb(*pid))
        .max()
}

fn process_group(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces), from `state`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    fields.get(2)?.parse().ok()
}

fn status_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
