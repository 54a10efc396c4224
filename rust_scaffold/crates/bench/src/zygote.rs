//! The harness's end of a candidate binary's fork server (`frontier_core::zygote`): one zygote per
//! binary and arguments, started at this process's first run of it and kept while this process
//! lives; a run's process is then a fork of it instead of an `exec`.
//!
//! A binary that does not answer like a zygote (an older candidate, a script) is remembered as
//! such and its runs are started by `exec`, as before. What the zygote says is checked, not
//! trusted: a pid it names must be its own child before this process signals it.

use crate::os;
use crate::remote::RemoteConfig;
use frontier_core::zygote::{self as wire, receive_message, send_message};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::rc::Rc;

/// How long a zygote may take to answer: it forks or reaps, nothing else.
const REPLY_MS: i32 = 2_000;

pub struct Zygote {
    process: Child,
    socket: OwnedFd,
}

/// A candidate binary and the arguments of its runs.
type Key = (PathBuf, Vec<String>);

thread_local! {
    /// Per binary and arguments: its zygote, or None once it failed to serve as one.
    static ZYGOTES: RefCell<HashMap<Key, Option<Rc<Zygote>>>> = RefCell::new(HashMap::new());
}

/// The zygote for `config`'s binary, started on first use; None if it cannot serve.
pub fn for_config(config: &RemoteConfig) -> Option<Rc<Zygote>> {
    let key = (config.binary.clone(), config.args.clone());
    ZYGOTES.with(|all| {
        all.borrow_mut().entry(key).or_insert_with(|| Zygote::start(&config.binary, &config.args).ok().map(Rc::new)).clone()
    })
}

/// Stops using `config`'s zygote (it failed): its later runs start by `exec`.
pub fn give_up(config: &RemoteConfig) {
    ZYGOTES.with(|all| all.borrow_mut().insert((config.binary.clone(), config.args.clone()), None));
}

/// The pids of this process's live zygotes (a sweep must spare them).
pub fn pids() -> Vec<i32> {
    ZYGOTES.with(|all| all.borrow().values().flatten().map(|z| z.process.id() as i32).collect())
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

impl Zygote {
    /// `args` as a run would get them (`serve` first); the zygote gets `zygote` in its place.
    fn start(binary: &Path, args: &[String]) -> io::Result<Zygote> {
        let Some(("serve", rest)) = args.split_first().map(|(first, rest)| (first.as_str(), rest)) else {
            return Err(invalid("not a candidate's serve command"));
        };
        let (ours, theirs) = os::seqpacket_pair()?;
        let process = Command::new(binary)
            .arg("zygote")
            .args(rest)
            .env_clear()
            .current_dir(Path::new("/"))
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        Ok(Zygote { process, socket: ours })
    }

    fn ask(&self, request: &[u8], file: Option<&File>) -> io::Result<(u8, i32)> {
        send_message(self.socket.as_fd(), request, file.map(|f| f.as_fd()))?;
        if !os::readable(self.socket.as_fd(), REPLY_MS)? {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "the zygote did not answer"));
        }
        let mut reply = [0u8; 8];
        let (n, fd) = receive_message(self.socket.as_fd(), &mut reply)?;
        if n != 5 || fd.is_some() {
            return Err(invalid("the zygote broke its protocol"));
        }
        Ok((reply[0], i32::from_le_bytes(reply[1..5].try_into().expect("4 bytes"))))
    }

    /// A new run process with `file` as its stdin and stdout: its pid and a pidfd for it.
    pub fn fork(&self, file: &File) -> io::Result<(i32, OwnedFd)> {
        let pid = match self.ask(&[wire::FORK], Some(file))? {
            (wire::PID, pid) if pid > 1 => pid,
            (wire::FAILED, errno) => return Err(io::Error::from_raw_os_error(errno)),
            _ => return Err(invalid("the zygote broke its protocol")),
        };
        // Not reaped until this process asks, so the pid is still the zygote's child.
        let pidfd = os::pidfd_open(pid)?;
        if os::parent_of(pid)? != self.process.id() as i32 {
            return Err(invalid("the zygote named a process that is not its child"));
        }
        Ok((pid, pidfd))
    }

    /// Reaps `pid` (a child of the zygote, already killed or ended): its exit status.
    pub fn reap(&self, pid: i32) -> io::Result<ExitStatus> {
        let mut request = [wire::REAP, 0, 0, 0, 0];
        request[1..].copy_from_slice(&pid.to_le_bytes());
        match self.ask(&request, None)? {
            (wire::STATUS, status) => Ok(ExitStatus::from_raw(status)),
            (wire::FAILED, errno) => Err(io::Error::from_raw_os_error(errno)),
            _ => Err(invalid("the zygote broke its protocol")),
        }
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
