//! Process CPU time, the quantity every actual cost is computed from.
//!
//! It is the whole process's user + system time (`getrusage(RUSAGE_SELF)`), not the calling
//! thread's: the renderer encodes on libx264's own threads and blocking tasks run on tokio's
//! pool, so per-thread time would miss most of the work. The tools a stage runs as child
//! processes (espeak-ng, Apertium, ffmpeg, tesseract, pocketsphinx) are added once they have
//! been waited for (`RUSAGE_CHILDREN`): semantic QA spends most of its CPU time in them, and
//! without them its actual cost read a tenth of the real one. The consequence: when one process
//! drives several jobs at once, a stage's measured time includes the other jobs' work in the
//! same interval. The CLI drives one job at a time, so there it is exact.

use std::time::Duration;

/// User + system CPU time consumed by this process and its finished child processes so far.
pub fn process_cpu_time() -> Duration {
    usage(libc::RUSAGE_SELF) + usage(libc::RUSAGE_CHILDREN)
}

/// User + system time `getrusage` reports for `who` (zero if the call fails).
fn usage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes into the struct we pass; a zeroed rusage is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(who, &mut usage) };
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

    #[test]
    fn a_finished_child_process_counts() {
        let before = process_cpu_time();
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let spent = process_cpu_time() - before;
        assert!(spent > Duration::from_millis(50), "the child's CPU time is not counted: {spent:?}");
    }
}
