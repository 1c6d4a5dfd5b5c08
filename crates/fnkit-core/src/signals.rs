//! Termination signals as a readable socket, for every adapter.
//!
//! Tokio's `signal` feature builds a signal driver (a socket pair and a registry of every signal)
//! each time a runtime starts, whether or not a signal is ever awaited. fnkit does not enable it:
//! an adapter that needs SIGTERM or SIGINT calls [`signal_pipe`], which installs a handler for just
//! those signals and returns the read end of a socket pair. The handler does one thing, which is
//! safe in a signal handler: it sends the signal's number, as one byte, into the pair. The adapter
//! registers the read end with its own I/O driver and waits for it to be readable.
//!
//! At start this costs a socket pair and one `sigaction` per signal: 4 system calls for SIGTERM
//! and SIGINT, against 22 through signal-hook's registry and two pairs (strace of `hello`,
//! BENCHMARKS.md).

use std::io;
use std::os::unix::net::UnixStream;

/// SIGTERM: the platform is ending the process (Knative, OpenFaaS and Lambda with an extension).
pub const SIGTERM: i32 = libc::SIGTERM;
/// SIGINT: Ctrl-C in a terminal (local mode).
pub const SIGINT: i32 = libc::SIGINT;

/// Installs handlers for `signals`; each delivery writes the signal's number, as one byte, to
/// the returned socket, which is non-blocking. The handlers stay for the life of the process; a
/// later call for the same signal sends it to the later socket instead.
///
/// # Errors
/// When the socket pair cannot be made, or a signal is not one a handler may catch (SIGKILL,
/// SIGSTOP, or out of range).
pub fn signal_pipe(signals: &[i32]) -> io::Result<UnixStream> {
    raw::signal_pipe(signals)
}

#[allow(unsafe_code)]
mod raw {
    use std::io;
    use std::os::fd::{FromRawFd, IntoRawFd};
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicI32, Ordering};

    /// Signal numbers a handler can be installed for here (Linux numbers real-time signals up
    /// to 64).
    const MAX_SIGNAL: usize = 64;

    /// The write end each signal's byte goes to; -1 for none.
    static WRITE_END: [AtomicI32; MAX_SIGNAL + 1] = [const { AtomicI32::new(-1) }; MAX_SIGNAL + 1];

    pub(super) fn signal_pipe(signals: &[i32]) -> io::Result<UnixStream> {
        for &signal in signals {
            let ok = usize::try_from(signal).is_ok_and(|s| (1..=MAX_SIGNAL).contains(&s))
                && signal != libc::SIGKILL
                && signal != libc::SIGSTOP;
            if !ok {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("signal {signal} cannot be handled"),
                ));
            }
        }
        let (read, write) = pair()?;
        // The write end lives as long as the handlers that use it: for the process.
        let write = write.into_raw_fd();
        for &signal in signals {
            let slot = &WRITE_END[signal as usize];
            slot.store(write, Ordering::Release);
            // SAFETY: a zeroed sigaction is a valid value (empty mask, no flags) before the
            // fields are set; `on_signal` has the signature SA_SIGINFO-less handlers take, and
            // only calls async-signal-safe functions.
            let installed = unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut())
            };
            if installed != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(read)
    }

    /// A non-blocking, close-on-exec socket pair: one system call on Linux.
    #[cfg(target_os = "linux")]
    fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let mut fds = [-1; 2];
        // SAFETY: `fds` has room for the two descriptors socketpair writes.
        let made = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
                fds.as_mut_ptr(),
            )
        };
        if made != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: socketpair succeeded: both descriptors are open and owned by nobody else.
        Ok(unsafe {
            (
                UnixStream::from_raw_fd(fds[0]),
                UnixStream::from_raw_fd(fds[1]),
            )
        })
    }

    /// Elsewhere (macOS, for local runs) std's pair, made non-blocking.
    #[cfg(not(target_os = "linux"))]
    fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        Ok((read, write))
    }

    /// Where the thread's `errno` lives.
    fn errno() -> *mut libc::c_int {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        // SAFETY: always valid for the calling thread.
        return unsafe { libc::__errno_location() };
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        // SAFETY: always valid for the calling thread (macOS, iOS and the BSDs name it so).
        return unsafe { libc::__error() };
    }

    /// The handler: one non-blocking `send` of the signal's number. When the socket is full (a
    /// byte is already waiting) the new one is dropped, which loses nothing: the reader only
    /// needs to know that the signal came. `errno` is restored for the interrupted code.
    extern "C" fn on_signal(signal: libc::c_int) {
        let Some(slot) = usize::try_from(signal).ok().and_then(|s| WRITE_END.get(s)) else {
            return;
        };
        let fd = slot.load(Ordering::Acquire);
        if fd < 0 {
            return;
        }
        let byte = signal as u8;
        // SAFETY: `send` is async-signal-safe and `errno()` points at this thread's errno;
        // `byte` outlives the call. (SIGPIPE cannot come of it: Rust programs ignore SIGPIPE.)
        unsafe {
            let saved = *errno();
            libc::send(fd, std::ptr::addr_of!(byte).cast(), 1, libc::MSG_DONTWAIT);
            *errno() = saved;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_raised_signal_becomes_a_readable_byte_naming_it() {
        // SIGUSR2: no other test in this process handles it.
        let mut pipe = signal_pipe(&[libc::SIGUSR2]).expect("pipe");
        let mut byte = [0_u8; 1];
        assert_eq!(
            pipe.read(&mut byte).map_err(|e| e.kind()).unwrap_err(),
            io::ErrorKind::WouldBlock,
            "nothing to read before the signal"
        );
        // SAFETY: raising a signal this process handles.
        #[allow(unsafe_code)]
        let raised = unsafe { libc::raise(libc::SIGUSR2) };
        assert_eq!(raised, 0);
        pipe.set_nonblocking(false).expect("blocking");
        assert_eq!(pipe.read(&mut byte).expect("read"), 1);
        assert_eq!(
            i32::from(byte[0]),
            libc::SIGUSR2,
            "the byte is the signal's number"
        );
    }

    #[test]
    fn signals_no_handler_may_catch_are_refused_with_an_error() {
        for signal in [libc::SIGKILL, libc::SIGSTOP, 0, -1, 65] {
            let err = signal_pipe(&[signal]).expect_err("refused");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{signal}");
        }
    }
}
