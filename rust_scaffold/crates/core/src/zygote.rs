//! A candidate binary's fork server: one process per harness process that forks each run's
//! candidate process, so a run pays a `fork` (~0.15 ms) instead of an `exec` (~1.3 ms here: the
//! dynamic loader, libc's and libgcc's CPU probes, which trap to the hypervisor in a VM, and
//! std's start-up).
//!
//! The zygote runs none of the candidate's code: Rust has no code before `main` without the
//! attributes and `unsafe` a candidate's source may not contain, and the zygote only waits for
//! requests and forks. Every run therefore starts from the same untouched process, as a fresh
//! `exec` would: a run cannot leave anything in the zygote for a later run (after the fork they
//! share no writable memory, the child keeps no descriptor but its run's memory file, and the
//! zygote is not dumpable, so no process of the sandbox can read or write its memory).
//!
//! Requests come over the zygote's stdin, a Unix `SOCK_SEQPACKET` socket to the harness:
//!
//! ```text
//! harness -> zygote                                    zygote -> harness
//! F + the run's memory file (SCM_RIGHTS)   fork a run  P pid(i32)      | E errno(i32)
//! W pid(i32)                               reap it     S status(i32, as waitpid gives it) | E errno(i32)
//! ```
//!
//! The child makes the memory file its stdin and stdout (one file position, as the harness set
//! it), closes every other descriptor but stderr, takes a process group of its own and serves the
//! run as a freshly started candidate would ([`crate::remote::serve`]). The harness kills a run's
//! process and then has the zygote reap it, so a pid is never reused while the harness may still
//! signal it. The zygote exits when the harness closes the socket.
#![allow(unsafe_code)]

use crate::Optimizer;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::raw::{c_int, c_long, c_ulong, c_void};
use std::process::ExitCode;

pub const FORK: u8 = b'F';
pub const PID: u8 = b'P';
pub const REAP: u8 = b'W';
pub const STATUS: u8 = b'S';
pub const FAILED: u8 = b'E';

extern "C" {
    fn fork() -> c_int;
    fn setpgid(pid: c_int, pgid: c_int) -> c_int;
    fn dup2(old: c_int, new: c_int) -> c_int;
    fn close(fd: c_int) -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn syscall(number: c_long, ...) -> c_long;
    fn sendmsg(fd: c_int, msg: *const MsgHdr, flags: c_int) -> isize;
    fn recvmsg(fd: c_int, msg: *mut MsgHdr, flags: c_int) -> isize;
}

const SOL_SOCKET: c_int = 1;
const SCM_RIGHTS: c_int = 1;
const MSG_CMSG_CLOEXEC: c_int = 0x4000_0000;
const MSG_NOSIGNAL: c_int = 0x4000;
const MSG_TRUNC: c_int = 0x20;
const MSG_CTRUNC: c_int = 0x8;
const PR_SET_DUMPABLE: c_int = 4;
const SYS_CLOSE_RANGE: c_long = 436; // x86_64 and aarch64 alike

#[repr(C)]
struct IoVec {
    base: *mut c_void,
    len: usize,
}

#[repr(C)]
struct MsgHdr {
    name: *mut c_void,
    name_len: u32,
    iov: *mut IoVec,
    iov_len: usize,
    control: *mut c_void,
    control_len: usize,
    flags: c_int,
}

/// Room for one `cmsghdr` carrying one descriptor (CMSG_SPACE(4) on 64-bit Linux), 8-aligned.
#[repr(C, align(8))]
struct OneFd([u8; 24]);
const CMSG_HEADER: usize = 16; // cmsg_len (usize), cmsg_level (i32), cmsg_type (i32)
const CMSG_LEN_ONE_FD: usize = CMSG_HEADER + 4;

/// A message header of one buffer and room for one descriptor; both must outlive its use.
fn header(iov: &mut IoVec, control: &mut OneFd) -> MsgHdr {
    MsgHdr {
        name: std::ptr::null_mut(),
        name_len: 0,
        iov,
        iov_len: 1,
        control: control.0.as_mut_ptr().cast(),
        control_len: control.0.len(),
        flags: 0,
    }
}

/// Sends one message on a Unix socket, with a descriptor attached if `fd` is given.
pub fn send_message(socket: BorrowedFd, bytes: &[u8], fd: Option<BorrowedFd>) -> io::Result<()> {
    let mut iov = IoVec { base: bytes.as_ptr() as *mut c_void, len: bytes.len() };
    let mut control = OneFd([0; 24]);
    let mut msg = header(&mut iov, &mut control);
    match fd {
        Some(fd) => {
            control.0[..8].copy_from_slice(&CMSG_LEN_ONE_FD.to_ne_bytes());
            control.0[8..12].copy_from_slice(&SOL_SOCKET.to_ne_bytes());
            control.0[12..16].copy_from_slice(&SCM_RIGHTS.to_ne_bytes());
            control.0[16..20].copy_from_slice(&fd.as_raw_fd().to_ne_bytes());
        }
        None => (msg.control, msg.control_len) = (std::ptr::null_mut(), 0),
    }
    // SAFETY: every pointer in `msg` points at a live local (the payload is only read).
    let sent = unsafe { sendmsg(socket.as_raw_fd(), &msg, MSG_NOSIGNAL) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    if sent as usize != bytes.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "a message was cut short"));
    }
    Ok(())
}

/// Receives one message (0 bytes: the peer closed the socket) and the descriptor that came with it
/// (close-on-exec), if any; any other control data is refused.
pub fn receive_message(socket: BorrowedFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = IoVec { base: buf.as_mut_ptr().cast(), len: buf.len() };
    let mut control = OneFd([0; 24]);
    let mut msg = header(&mut iov, &mut control);
    let received = loop {
        // SAFETY: every pointer in `msg` points at a live local buffer of the length given.
        let n = unsafe { recvmsg(socket.as_raw_fd(), &mut msg, MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut fd = None;
    if msg.control_len >= CMSG_LEN_ONE_FD {
        let len = usize::from_ne_bytes(control.0[..8].try_into().expect("8 bytes"));
        let level = c_int::from_ne_bytes(control.0[8..12].try_into().expect("4 bytes"));
        let kind = c_int::from_ne_bytes(control.0[12..16].try_into().expect("4 bytes"));
        if level == SOL_SOCKET && kind == SCM_RIGHTS && len == CMSG_LEN_ONE_FD {
            let raw = RawFd::from_ne_bytes(control.0[16..20].try_into().expect("4 bytes"));
            // SAFETY: the kernel just installed this descriptor in our table for us alone.
            fd = Some(unsafe { OwnedFd::from_raw_fd(raw) });
        }
    }
    if msg.flags & (MSG_TRUNC | MSG_CTRUNC) != 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "a message or its descriptors were cut short"));
    }
    Ok((received, fd))
}

fn reply(tag: u8, value: i32) -> io::Result<()> {
    let mut bytes = [0u8; 5];
    bytes[0] = tag;
    bytes[1..].copy_from_slice(&value.to_le_bytes());
    // SAFETY: fd 0 is the request socket for the zygote's whole life.
    send_message(unsafe { BorrowedFd::borrow_raw(0) }, &bytes, None)
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// The zygote's `main`: forks a run per request until the harness closes the socket on stdin.
pub fn serve_forks(build: &dyn Fn() -> Box<dyn Optimizer>) -> ExitCode {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes integers and touches no memory of ours.
    if unsafe { prctl(PR_SET_DUMPABLE, 0 as c_ulong) } != 0 {
        return ExitCode::from(1);
    }
    let mut request = [0u8; 16];
    loop {
        // SAFETY: fd 0 is the request socket, open for the zygote's whole life.
        let socket = unsafe { BorrowedFd::borrow_raw(0) };
        let (n, fd) = match receive_message(socket, &mut request) {
            Ok(got) => got,
            Err(_) => return ExitCode::from(1),
        };
        let answered = match (n, request[0], fd) {
            (0, _, _) => return ExitCode::SUCCESS,
            (1, FORK, Some(file)) => {
                // SAFETY: this process has one thread, so the child may run anything after fork.
                let pid = unsafe { fork() };
                if pid == 0 {
                    run_child(file, build);
                }
                drop(file);
                if pid < 0 {
                    reply(FAILED, errno(&io::Error::last_os_error()))
                } else {
                    reply(PID, pid)
                }
            }
            (5, REAP, None) => {
                let pid = i32::from_le_bytes(request[1..5].try_into().expect("4 bytes"));
                let mut status: c_int = 0;
                // SAFETY: `status` is a live local; only a child of ours can be waited for.
                let waited = loop {
                    let r = unsafe { waitpid(pid, &mut status, 0) };
                    if r >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                        break r;
                    }
                };
                if waited == pid && pid > 0 {
                    reply(STATUS, status)
                } else {
                    reply(FAILED, errno(&io::Error::last_os_error()))
                }
            }
            _ => return ExitCode::from(2), // not the harness's protocol: stop serving
        };
        if answered.is_err() {
            return ExitCode::from(1);
        }
    }
}

/// In the forked child: the run's memory file on stdin and stdout, nothing else open but stderr,
/// a process group of its own; then the run, and exit.
fn run_child(file: OwnedFd, build: &dyn Fn() -> Box<dyn Optimizer>) -> ! {
    let raw = file.as_raw_fd();
    // SAFETY: integer-only calls on descriptors this process owns; after them `file`'s number is
    // closed by close_range, so it is forgotten rather than closed twice.
    let ready = unsafe {
        let ok = dup2(raw, 0) == 0 && dup2(raw, 1) == 1 && setpgid(0, 0) == 0;
        std::mem::forget(file);
        if syscall(SYS_CLOSE_RANGE, 3 as c_int, c_int::MAX, 0 as c_int) != 0 {
            for fd in 3..1024 {
                close(fd);
            }
        }
        ok
    };
    if !ready {
        std::process::exit(1);
    }
    let code = match crate::remote::serve(build) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    std::process::exit(code)
}
