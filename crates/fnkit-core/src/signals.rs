//! Termination signals as a readable socket, for every adapter.
//!
//! Tokio's `signal` feature builds a signal driver (a socket pair and a registry of every signal)
//! each time a runtime starts, whether or not a signal is ever awaited. fnkit does not enable it:
//! an adapter that needs SIGTERM or SIGINT calls [`signal_pipe`], which installs handlers for just
//! those signals (signal-hook's self-pipe: the handler writes one byte, nothing else) and returns
//! the socket's read end. The adapter registers it with its own I/O driver and waits for it to be
//! readable.

use std::io;
use std::os::unix::net::UnixStream;

/// SIGTERM: the platform is ending the process (Knative, OpenFaaS and Lambda with an extension).
pub const SIGTERM: i32 = signal_hook::consts::SIGTERM;
/// SIGINT: Ctrl-C in a terminal (local mode).
pub const SIGINT: i32 = signal_hook::consts::SIGINT;

/// Installs handlers for `signals`; each delivery writes a byte to the returned socket, which is
/// non-blocking. The handlers stay for the life of the process.
///
/// # Errors
/// When the socket pair cannot be made or a handler cannot be installed.
///
/// # Panics
/// signal-hook refuses, by panicking, the signals no handler may catch (SIGKILL, SIGSTOP...);
/// fnkit passes only SIGTERM and SIGINT.
pub fn signal_pipe(signals: &[i32]) -> io::Result<UnixStream> {
    let (read, write) = UnixStream::pair()?;
    for &signal in signals {
        signal_hook::low_level::pipe::register(signal, write.try_clone()?)?;
    }
    read.set_nonblocking(true)?;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_raised_signal_becomes_a_readable_byte() {
        // SIGUSR2: no other test in this process handles it.
        let mut pipe = signal_pipe(&[signal_hook::consts::SIGUSR2]).expect("pipe");
        let mut byte = [0_u8; 1];
        assert_eq!(
            pipe.read(&mut byte).map_err(|e| e.kind()).unwrap_err(),
            io::ErrorKind::WouldBlock,
            "nothing to read before the signal"
        );
        signal_hook::low_level::raise(signal_hook::consts::SIGUSR2).expect("raise");
        pipe.set_nonblocking(false).expect("blocking");
        assert_eq!(pipe.read(&mut byte).expect("read"), 1);
    }
}
