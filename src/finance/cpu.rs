//! Process CPU time, the quantity every actual cost is computed from.
//!
//! It is the whole process's user + system time (`getrusage(RUSAGE_SELF)`), not the calling
//! thread's: the renderer encodes on libx264's own threads and blocking tasks run on tokio's
//! pool, so per-thread time would miss most of the work. The consequence: when one process
//! drives several jobs at once, a stage's measured time includes the other jobs' work in the
//! same interval. The CLI drives one job at a time, so there it is exact.

use std::time::Duration;

/// User + system CPU time consumed by this process so far (zero if the call fails).
pub fn process_cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass; a zeroed rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv =
        |t: libc::timeval| Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = process_cpu_time();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(50) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        assert!(process_cpu_time() > before);
    }
}
