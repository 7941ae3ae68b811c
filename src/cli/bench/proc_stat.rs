//! What the benchmarks read of a process from Linux's `/proc`: its peak memory and its CPU
//! time, the figures that say where a shared machine's memory and cores went. Elsewhere each
//! reading is `None` and the benchmarks print "?".

/// Lets the kernel restart the peak-RSS counter, so each scenario reports its own peak.
pub(in crate::cli) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A process's peak resident memory (VmHWM) in KiB: `"self"` or a pid. Linux only; `None`
/// elsewhere.
pub(in crate::cli) fn peak_rss_kib(process: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU time (user + system) a process has used so far, in seconds: `"self"` or a pid. Read
/// from `/proc/<pid>/stat`, whose times are in USER_HZ ticks, 100 a second on Linux whatever
/// the kernel's own tick. Linux only; `None` elsewhere.
pub(in crate::cli) fn cpu_seconds(process: &str) -> Option<f64> {
    cpu_seconds_in_stat(&std::fs::read_to_string(format!("/proc/{process}/stat")).ok()?)
}

/// User + system seconds from the text of a `/proc/<pid>/stat`.
fn cpu_seconds_in_stat(stat: &str) -> Option<f64> {
    // The command name in field 2 may hold spaces or parentheses: count from the last ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    // After the name: state is field 3, utime field 14 and stime field 15.
    let user: f64 = fields.nth(11)?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / 100.0)
}

#[cfg(test)]
mod tests {
    //! The parsing on made-up text, and the reading on this process itself.
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn cpu_seconds_count_user_and_system_ticks_after_an_awkward_name() {
        // A command name with a space and a ')' of its own; utime (field 14) 250 ticks and
        // stime (field 15) 50: (250 + 50) / 100 ticks a second = 3.0 s.
        let stat = "4242 (odd) name) S 1 4242 4242 0 -1 4194560 10 0 0 0 250 50 0 0 20 0 3 0";
        assert_eq!(cpu_seconds_in_stat(stat), Some(3.0));
        assert_eq!(cpu_seconds_in_stat("4242 no name field"), None);
        assert_eq!(cpu_seconds_in_stat("4242 (short) S 1 2"), None);
    }

    #[test]
    fn this_process_cpu_seconds_grow_with_work() {
        if !cfg!(target_os = "linux") {
            // Elsewhere the benchmark prints "?" instead of a figure.
            return;
        }
        let before = cpu_seconds("self").expect("/proc/self/stat readable on Linux");
        // Spin until the kernel has charged at least two ticks (20 ms) to this process, or give
        // up after 10 s of wall time (the figure would then be stuck, which fails below).
        let give_up = Instant::now() + Duration::from_secs(10);
        let mut spins = 0u64;
        while cpu_seconds("self").unwrap_or(before) < before + 0.02 && Instant::now() < give_up {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
        let after = cpu_seconds("self");
        assert!(
            after.is_some_and(|after| after >= before + 0.02),
            "{before} s then {after:?} after {spins} spins"
        );
    }
}
