//! The signals that stop a command that waits (`run`, `bench`): Ctrl-C
//! (SIGINT), SIGTERM and SIGHUP, and the exit status each gives.

/// A signal that stopped a command: its name and the exit status (128 +
/// its number, as a shell reports a process killed by it).
#[derive(Clone, Copy)]
pub(crate) struct Stop {
    pub name: &'static str,
    pub exit: u8,
    /// Why a run stopped, as its report says it.
    pub reason: &'static str,
}

impl Stop {
    pub const INT: Stop = Stop {
        name: "Ctrl-C (SIGINT)",
        exit: 130,
        reason: "cancelled by Ctrl-C",
    };
    pub const TERM: Stop = Stop {
        name: "SIGTERM",
        exit: 143,
        reason: "stopped by SIGTERM",
    };
    pub const HUP: Stop = Stop {
        name: "SIGHUP",
        exit: 129,
        reason: "stopped by SIGHUP",
    };
}

/// Installs the handlers now, before the command starts anything a
/// signal should stop, and returns the first of the signals to come. Call
/// it inside the runtime.
pub(crate) fn signals() -> impl std::future::Future<Output = Stop> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    async move {
        let term = async {
            match term.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        let hup = async {
            match hup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => Stop::INT,
            _ = term => Stop::TERM,
            _ = hup => Stop::HUP,
        }
    }
}
