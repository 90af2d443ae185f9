//! Node processes each lead a process group of their own, so that whatever a node starts
//! (and does not move to another group or session) is signalled with it: killed at
//! teardown and by the crash fault, stopped and resumed by the pause fault
//! (docs/maelstrom-compatibility.md 2.4). Since nodes are then out of the terminal's
//! foreground group, a Ctrl-C (or SIGTERM, SIGHUP) to the runner kills every group it
//! still has before the runner dies of the signal.

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};

/// Groups the signal handler can reach; past this many live nodes, the extra ones are
/// still killed at teardown, only not on a Ctrl-C.
const SLOTS: usize = 4096;

static GROUPS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static HANDLER: Once = Once::new();

/// Makes `command` start its process as the leader of a new group.
pub fn in_own_group(command: &mut Command) -> &mut Command {
    HANDLER.call_once(install_handler);
    command.process_group(0)
}

/// Remembers the group led by `pid` for the Ctrl-C handler.
pub fn register(pid: u32) {
    let pid = pid as i32;
    for slot in &GROUPS {
        if slot
            .compare_exchange(0, pid, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}

/// Sends `signal` to every process of the group led by `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill has no memory effects; a negative pid names a process group.
    unsafe {
        libc::kill(-(pid as i32), signal);
    }
}

/// Kills the group led by `pid` with SIGKILL and forgets it. Call it before reaping the
/// leader: while the leader is not reaped its id cannot be given to another process, so
/// the signal cannot reach a stranger's group.
pub fn kill(pid: u32) {
    signal(pid, libc::SIGKILL);
    let pid = pid as i32;
    for slot in &GROUPS {
        let _ = slot.compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// Whether our child `pid` has ended, without reaping it (so that its group can still
/// be killed safely, see `kill`).
pub fn has_ended(pid: u32) -> bool {
    // SAFETY: waitid with WNOWAIT only reads the state of our own child into `info`,
    // which is zeroed first so that `si_pid` reads 0 when no child has changed state.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let found = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        found == 0 && info.si_pid() != 0
    }
}

fn install_handler() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only loads atomics and calls async-signal-safe functions.
        unsafe {
            let previous = libc::signal(sig, on_signal as *const () as libc::sighandler_t);
            if previous == libc::SIG_IGN {
                // Started with the signal ignored (nohup): keep it so.
                libc::signal(sig, libc::SIG_IGN);
            }
        }
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    for slot in &GROUPS {
        let pid = slot.load(Ordering::Acquire);
        if pid > 0 {
            // SAFETY: kill is async-signal-safe.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
    // SAFETY: signal and raise are async-signal-safe; the default action ends the runner
    // as the signal would have.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn killing_the_group_kills_what_the_leader_started() {
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 30 & echo $!; wait"]);
        command.stdout(std::process::Stdio::piped());
        let mut leader = in_own_group(&mut command).spawn().unwrap();
        register(leader.id());
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(leader.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let sleeper: u32 = line.trim().parse().unwrap();
        assert!(!has_ended(leader.id()));
        kill(leader.id());
        let start = Instant::now();
        while !has_ended(leader.id()) {
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(5));
        }
        leader.wait().unwrap();
        // The sleeper is reparented and reaped elsewhere, or a zombie for a moment.
        let start = Instant::now();
        loop {
            let state = std::fs::read_to_string(format!("/proc/{sleeper}/stat"))
                .ok()
                .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()?.to_string()));
            if state.as_deref().is_none_or(|s| s == "Z" || s == "X") {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(5), "{state:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
