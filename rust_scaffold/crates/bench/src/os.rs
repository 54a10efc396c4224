//! The few operating-system calls std lacks, for the harness's own process (never a candidate's).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::raw::{c_char, c_int, c_long, c_uint, c_ulong};

extern "C" {
    fn memfd_create(name: *const c_char, flags: c_uint) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn shmctl(id: c_int, cmd: c_int, buf: *mut u8) -> c_int;
    fn msgctl(id: c_int, cmd: c_int, buf: *mut u8) -> c_int;
    fn semctl(id: c_int, num: c_int, cmd: c_int, ...) -> c_int;
    fn socketpair(domain: c_int, kind: c_int, protocol: c_int, fds: *mut c_int) -> c_int;
    fn poll(fds: *mut PollFd, count: c_ulong, timeout_ms: c_int) -> c_int;
    fn syscall(number: c_long, ...) -> c_long;
}

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: i16,
    revents: i16,
}

const AF_UNIX: c_int = 1;
const SOCK_SEQPACKET: c_int = 5;
const SOCK_CLOEXEC: c_int = 0o2000000;
const POLLIN: i16 = 0x1;
const SYS_PIDFD_OPEN: c_long = 434; // x86_64 and aarch64 alike
const SYS_PIDFD_SEND_SIGNAL: c_long = 424;

const IPC_RMID: c_int = 0;

const MFD_CLOEXEC: c_uint = 0x1;
const MFD_ALLOW_SEALING: c_uint = 0x2;
const F_ADD_SEALS: c_int = 1033;
const F_SEAL_SEAL: c_int = 0x1;
const F_SEAL_SHRINK: c_int = 0x2;
const F_SEAL_GROW: c_int = 0x4;

const PR_SET_DUMPABLE: c_int = 4;
const SIGKILL: c_int = 9;

/// Makes this process non-dumpable: processes of the same user (the candidates it starts) can no
/// longer open its /proc/<pid>/mem, fd/ or environ, nor ptrace it.
pub fn forbid_inspection() -> bool {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes integer arguments and touches no memory of ours.
    unsafe { prctl(PR_SET_DUMPABLE, 0 as c_ulong) == 0 }
}

/// SIGKILL to a process (`pid > 0`) or a process group (`pid < 0`); errors are ignored.
pub fn kill_hard(pid: i32) {
    // SAFETY: kill(2) takes integers only.
    unsafe {
        kill(pid, SIGKILL);
    }
}

/// Kills every process of this PID namespace except its init (pid 1), this one and `spared` (the
/// zygotes, which run no candidate code). Only called when the harness is pid 2 of a sandbox's
/// fresh PID namespace: nothing else lives there.
pub fn kill_all_others(spared: &[i32]) -> usize {
    let me = std::process::id() as i32;
    let mut killed = 0;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
                if pid > 1 && pid != me && !spared.contains(&pid) {
                    kill_hard(pid);
                    killed += 1;
                }
            }
        }
    }
    killed
}

/// Removes every System V shared memory segment, message queue and semaphore set of this IPC
/// namespace (the sandbox's own): they outlive processes, so a run could leave one for the next.
pub fn remove_ipc_objects() -> usize {
    let mut removed = 0;
    for (table, column) in [("shm", 1), ("msg", 1), ("sem", 1)] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/sysvipc/{table}")) else { continue };
        for id in text.lines().skip(1).filter_map(|l| l.split_whitespace().nth(column)?.parse::<c_int>().ok()) {
            // SAFETY: IPC_RMID with a null buffer reads and writes no memory of ours.
            let done = unsafe {
                match table {
                    "shm" => shmctl(id, IPC_RMID, std::ptr::null_mut()),
                    "msg" => msgctl(id, IPC_RMID, std::ptr::null_mut()),
                    _ => semctl(id, 0, IPC_RMID),
                }
            };
            removed += usize::from(done == 0);
        }
    }
    removed
}

/// A fresh anonymous memory file of `len` bytes (zeros) that nobody can shrink or grow: a peer
/// that maps it cannot make this process's own mapping fault by truncating it.
pub fn sealed_memory_file(name: &CStr, len: u64) -> io::Result<File> {
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let fd = unsafe { memfd_create(name.as_ptr(), MFD_CLOEXEC | MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create just returned this descriptor, and nothing else owns it.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.set_len(len)?;
    // SAFETY: F_ADD_SEALS takes an integer argument and touches no memory of ours.
    if unsafe { fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// A connected pair of Unix `SOCK_SEQPACKET` sockets (close-on-exec): messages keep their
/// boundaries, and a peer that goes away reads as end of file.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as c_int; 2];
    // SAFETY: `fds` is a live array of the two ints socketpair writes.
    if unsafe { socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair just returned these two descriptors, owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Whether `fd` becomes readable within `timeout_ms` (-1: no limit); for a pidfd, readable means
/// the process has ended.
pub fn readable(fd: BorrowedFd, timeout_ms: i32) -> io::Result<bool> {
    let mut entry = PollFd { fd: fd.as_raw_fd(), events: POLLIN, revents: 0 };
    loop {
        // SAFETY: one live PollFd.
        let n = unsafe { poll(&mut entry, 1, timeout_ms) };
        if n >= 0 {
            return Ok(n > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A pidfd for `pid`: it stays about that process even once the pid is reused.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes integers only.
    let fd = unsafe { syscall(SYS_PIDFD_OPEN, pid as c_int, 0 as c_uint) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as c_int) })
}

/// The parent pid of `pid` (from `/proc/<pid>/stat`).
pub fn parent_of(pid: i32) -> io::Result<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name in parentheses may hold anything: the fields that follow come after the last ')'.
    let after = stat.rfind(')').map(|i| &stat[i + 1..]).unwrap_or("");
    after
        .split_whitespace()
        .nth(1)
        .and_then(|ppid| ppid.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("/proc/{pid}/stat has no parent")))
}

/// SIGKILL through a pidfd: exactly that process, even if its pid was reused.
pub fn kill_pidfd(pidfd: BorrowedFd) {
    // SAFETY: pidfd_send_signal with a null siginfo reads no memory of ours.
    unsafe {
        syscall(SYS_PIDFD_SEND_SIGNAL, pidfd.as_raw_fd(), SIGKILL, std::ptr::null::<u8>(), 0 as c_uint);
    }
}
