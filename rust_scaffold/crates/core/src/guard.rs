//! Running untrusted optimizer code: panics are caught and turned into messages.
//!
//! The process-wide panic hook stays silent while candidate code runs (the message goes into the
//! JSON result instead) and prints the usual report to stderr for panics anywhere else.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static IN_GUARD: Cell<bool> = const { Cell::new(false) };
    static LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs the hook (idempotent).
pub fn install_hook() {
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_GUARD.with(|g| g.get()) {
                let loc = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
                LOCATION.with(|s| *s.borrow_mut() = loc);
            } else {
                default(info);
            }
        }));
    });
}

/// A caught panic: its message and where it happened.
#[derive(Debug, Clone)]
pub struct Caught {
    pub message: String,
    pub location: Option<String>,
    /// A failure reported on another process's behalf ([`Reported`]), not a panic of this one.
    pub reported: bool,
}

impl Caught {
    /// The run's error text: `panic: <message>` for a panic here, a reported failure as it came.
    pub fn describe(&self) -> String {
        if self.reported {
            self.message.clone()
        } else {
            format!("panic: {}", self.message)
        }
    }
}

/// A panic payload that carries its own location: a failure the harness reports on behalf of
/// another process (the candidate's panic, read from its pipe).
#[derive(Debug, Clone)]
pub struct Reported {
    pub message: String,
    pub location: Option<String>,
}

/// Runs `f`, catching a panic.
pub fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, Caught> {
    install_hook();
    IN_GUARD.with(|g| g.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    IN_GUARD.with(|g| g.set(false));
    r.map_err(|payload| {
        let location = LOCATION.with(|s| s.borrow_mut().take());
        if let Some(r) = payload.downcast_ref::<Reported>() {
            return Caught { message: r.message.clone(), location: r.location.clone(), reported: true };
        }
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "non-string panic payload".to_string()
        };
        Caught { message, location, reported: false }
    })
}
