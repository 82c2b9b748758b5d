//! SIGTERM, SIGINT and SIGHUP for the follower, through a self-pipe: the
//! handler only writes the signal's number to a pipe (async-signal-safe);
//! a thread reads it and wakes the follower's loop through its channel, so
//! a signal is seen at once however long the loop sleeps.
//!
//! A stop request also arms a deadline: if the store does not take the
//! last commit within [`STOP_GRACE`] (an outage), the store worker gives up
//! and the process exits anyway — what was not committed is read again on
//! the next start.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Duration;

use super::Wake;

/// How long after SIGTERM/SIGINT a store outage may hold the exit.
pub const STOP_GRACE: Duration = Duration::from_millis(1500);

/// Write end of the self-pipe (-1 before [`install`]).
static PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is one byte on
        // this stack frame. A full pipe drops the byte, which only loses a
        // repeated signal.
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

/// Routes SIGTERM and SIGINT (as [`Wake::Stop`]) and SIGHUP (as
/// [`Wake::Reload`]) to `tx`; `stop` is set [`STOP_GRACE`] after the first
/// stop request.
pub fn install(tx: Sender<Wake>, stop: Arc<AtomicBool>) -> io::Result<()> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The read end blocks; only the handler's end must not.
    // SAFETY: fds[0] is the read end just created and owned by nobody else.
    let mut read_end = unsafe {
        let flags = libc::fcntl(fds[0], libc::F_GETFL);
        libc::fcntl(fds[0], libc::F_SETFL, flags & !libc::O_NONBLOCK);
        File::from_raw_fd(fds[0])
    };
    PIPE.store(fds[1], Ordering::Relaxed);
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction with a handler that only calls
        // write(2); SA_RESTART keeps other threads' reads going.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    std::thread::Builder::new().name("xferstats-signals".into()).spawn(move || {
        let mut armed = false;
        let mut b = [0u8; 1];
        while read_end.read_exact(&mut b).is_ok() {
            let wake = if i32::from(b[0]) == libc::SIGHUP { Wake::Reload } else { Wake::Stop };
            if matches!(wake, Wake::Stop) && !armed {
                armed = true;
                let stop = stop.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(STOP_GRACE);
                    stop.store(true, Ordering::Relaxed);
                });
            }
            if tx.send(wake).is_err() {
                break;
            }
        }
    })?;
    Ok(())
}
