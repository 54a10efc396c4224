//! The few operating-system calls std lacks, for the harness's own process (never a candidate's).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::raw::{c_char, c_int, c_uint, c_ulong};

extern "C" {
    fn memfd_create(name: *const c_char, flags: c_uint) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn shmctl(id: c_int, cmd: c_int, buf: *mut u8) -> c_int;
    fn msgctl(id: c_int, cmd: c_int, buf: *mut u8) -> c_int;
    fn semctl(id: c_int, num: c_int, cmd: c_int, ...) -> c_int;
}

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

/// Kills every process of this PID namespace except its init (pid 1) and this one. Only called
/// when the harness is pid 2 of a sandbox's fresh PID namespace: nothing else lives there.
pub fn kill_all_others() -> usize {
    let me = std::process::id() as i32;
    let mut killed = 0;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
                if pid > 1 && pid != me {
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
