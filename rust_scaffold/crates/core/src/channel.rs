//! A byte channel over shared memory between the harness and a candidate process, in place of
//! two pipes: one request/reply per step costs a pipe's sleep and wake-up on each side, which is
//! most of a small problem's step. Here each side publishes bytes by moving an index, and waits
//! for its peer by yielding the core (the harness pins itself and its candidates to one core, so
//! a yield runs the peer); only after [`SPINS`] yields does it sleep on a futex, with a timeout,
//! and the writer makes the wake-up call only when the reader said it sleeps.
//!
//! The harness creates one memory file per run (sealed against shrinking and growing) and hands
//! it to the candidate as its stdin. Layout (little-endian, offsets in bytes):
//!
//! ```text
//! 0      magic u64, layout u32, ring bytes u32
//! 64     ring 0 (harness -> candidate): written u64, +64 read u64, +128 reader sleeps u32, +192 writer sleeps u32
//! 320    ring 1 (candidate -> harness): the same
//! 4096   ring 0's bytes, then ring 1's bytes
//! end    a page that stays zero: the candidate's stdout points here (see [`Region::stdout_written`])
//! ```
//!
//! `written` and `read` count bytes since the start (they never wrap in practice). Each ring has
//! one producer and one consumer; each side keeps its own index in its own memory and only
//! publishes it, and reads the peer's index once per call and checks it against what is possible
//! (a producer never has more than a ring's bytes outstanding nor takes bytes back; a consumer
//! never reads past what was written nor goes back). A violation is an `InvalidData` error, never
//! an access outside the mapping. Bytes are copied out of the ring before anyone parses them, so
//! a peer that keeps writing can change only the copy it is about to be judged by.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::raw::{c_int, c_long, c_void};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

const MAGIC: u64 = u64::from_le_bytes(*b"frontch1");
const LAYOUT: u32 = 1;
const HEADER_BYTES: usize = 4096;
const CONTROL_AT: [usize; 2] = [64, 320];
const WRITTEN: usize = 0;
const READ: usize = 64;
const READER_SLEEPS: usize = 128;
const WRITER_SLEEPS: usize = 192;
const STDOUT_BYTES: usize = 4096;
const MIN_RING: usize = 4096;
const MAX_RING: usize = 1 << 26;

/// Bytes of each ring, as many as a pipe holds: a frame of up to 8,000 parameters fits whole,
/// larger ones stream through it.
pub const RING_BYTES: usize = 1 << 16;
/// Yields before a waiting side goes to sleep on the futex.
pub const SPINS: u32 = 200;

/// Size of the memory file for rings of `ring` bytes.
pub const fn region_bytes(ring: usize) -> usize {
    HEADER_BYTES + 2 * ring + STDOUT_BYTES
}

/// Where the candidate's stdout starts in the memory file.
pub const fn stdout_offset(ring: usize) -> u64 {
    (HEADER_BYTES + 2 * ring) as u64
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

extern "C" {
    fn mmap(addr: *mut c_void, len: usize, prot: c_int, flags: c_int, fd: c_int, offset: i64) -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;
    fn syscall(number: c_long, ...) -> c_long;
}

const PROT_READ_WRITE: c_int = 0x1 | 0x2;
const MAP_SHARED: c_int = 0x1;
#[cfg(target_arch = "x86_64")]
const SYS_FUTEX: c_long = 202;
#[cfg(target_arch = "aarch64")]
const SYS_FUTEX: c_long = 98;
const FUTEX_WAIT: c_int = 0;
const FUTEX_WAKE: c_int = 1;

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// Sleeps while `word` holds `expected`, at most `timeout` (or until a wake-up, or spuriously).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = Timespec { tv_sec: timeout.as_secs() as i64, tv_nsec: timeout.subsec_nanos() as i64 };
    // SAFETY: the word is a live, aligned u32 of a shared mapping (the kernel keys a shared futex
    // by the page, so both processes meet on it); the timespec outlives the call; the remaining
    // arguments are ignored by FUTEX_WAIT.
    unsafe {
        syscall(SYS_FUTEX, word.as_ptr(), FUTEX_WAIT, expected, &ts as *const Timespec, 0usize, 0u32);
    }
}

/// Wakes one sleeper on `word`.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn futex_wake(word: &AtomicU32) {
    // SAFETY: as in futex_wait; FUTEX_WAKE reads no memory of ours beyond the word's address.
    unsafe {
        syscall(SYS_FUTEX, word.as_ptr(), FUTEX_WAKE, 1 as c_int, 0usize, 0usize, 0u32);
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn futex_wait(_word: &AtomicU32, _expected: u32, timeout: Duration) {
    std::thread::sleep(timeout.min(Duration::from_micros(50)));
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn futex_wake(_word: &AtomicU32) {}

/// One shared mapping of the memory file, unmapped when the last end lets go of it.
struct Mapping {
    base: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(file: &File, len: usize) -> io::Result<Mapping> {
        if (file.metadata()?.len() as usize) < len || len < HEADER_BYTES {
            return Err(invalid(format!("a memory file shorter than its {len} bytes")));
        }
        // SAFETY: a fresh shared mapping of `len` bytes of a file at least that long; the kernel
        // picks the address, so no existing memory is replaced.
        let p = unsafe { mmap(std::ptr::null_mut(), len, PROT_READ_WRITE, MAP_SHARED, file.as_raw_fd(), 0) };
        if p as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { base: p.cast(), len })
    }

    fn u64_at(&self, at: usize) -> &AtomicU64 {
        assert!(at.is_multiple_of(8) && at + 8 <= HEADER_BYTES);
        // SAFETY: in bounds and aligned (the mapping is page-aligned); the bytes live as long as
        // `self`; every access to this word, from either process, is atomic.
        unsafe { &*(self.base.add(at) as *const AtomicU64) }
    }

    fn u32_at(&self, at: usize) -> &AtomicU32 {
        assert!(at.is_multiple_of(4) && at + 4 <= HEADER_BYTES);
        // SAFETY: as in u64_at.
        unsafe { &*(self.base.add(at) as *const AtomicU32) }
    }

    fn copy_out(&self, at: usize, out: &mut [u8]) {
        assert!(at >= HEADER_BYTES && at.checked_add(out.len()).is_some_and(|end| end <= self.len));
        // SAFETY: the range is inside the mapping and never overlaps `out` (our own memory). The
        // peer may write these bytes concurrently only by breaking the protocol; any byte value
        // is a valid u8, and the copy is checked like any other input.
        unsafe { std::ptr::copy_nonoverlapping(self.base.add(at), out.as_mut_ptr(), out.len()) }
    }

    fn copy_in(&self, at: usize, bytes: &[u8]) {
        assert!(at >= HEADER_BYTES && at.checked_add(bytes.len()).is_some_and(|end| end <= self.len));
        // SAFETY: as in copy_out, the other way.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(at), bytes.len()) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the range mmap returned; no reference into it outlives `self`.
        unsafe {
            munmap(self.base.cast(), self.len);
        }
    }
}

/// Says whether the peer is still there while a side waits: `Ok(true)` keep waiting, `Ok(false)`
/// the peer is gone (a read sees the end of input, a write a broken pipe), `Err` stop with it.
pub type Alive = Rc<dyn Fn() -> io::Result<bool>>;

/// The memory file of one run, mapped.
#[derive(Clone)]
pub struct Region {
    map: Rc<Mapping>,
    ring: usize,
}

impl Region {
    /// The harness's side: lays out a fresh memory file of [`region_bytes`]`(ring)` bytes.
    pub fn create(file: &File, ring: usize) -> io::Result<Region> {
        if !ring.is_power_of_two() || !(MIN_RING..=MAX_RING).contains(&ring) {
            return Err(invalid(format!("a ring of {ring} bytes")));
        }
        let map = Mapping::new(file, region_bytes(ring))?;
        map.u64_at(0).store(MAGIC, Ordering::Relaxed);
        map.u64_at(8).store(u64::from(LAYOUT) | (ring as u64) << 32, Ordering::Release);
        Ok(Region { map: Rc::new(map), ring })
    }

    /// The candidate's side: maps a memory file the harness laid out (`None`: `file` is not one).
    pub(crate) fn attach(file: &File) -> Option<Region> {
        let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
        if !(region_bytes(MIN_RING)..=region_bytes(MAX_RING)).contains(&len) {
            return None;
        }
        let map = Mapping::new(file, len).ok()?;
        let (magic, format) = (map.u64_at(0).load(Ordering::Acquire), map.u64_at(8).load(Ordering::Acquire));
        let ring = (format >> 32) as usize;
        let fits = ring.is_power_of_two() && (MIN_RING..=MAX_RING).contains(&ring) && region_bytes(ring) == len;
        (magic == MAGIC && format as u32 == LAYOUT && fits).then(|| Region { map: Rc::new(map), ring })
    }

    /// The harness's ends: it writes ring 0 and reads ring 1.
    pub fn harness_ends(&self, alive: Alive, nap: Duration) -> (Receiver, Sender) {
        (self.receiver(1, alive.clone(), nap), self.sender(0, alive, nap))
    }

    /// The candidate's ends: it reads ring 0 and writes ring 1.
    pub(crate) fn candidate_ends(&self, alive: Alive, nap: Duration) -> (Receiver, Sender) {
        (self.receiver(0, alive.clone(), nap), self.sender(1, alive, nap))
    }

    /// Whether anything but zeros was written where the candidate's stdout points: a candidate
    /// has no stdout in a run, and a byte there breaks the protocol as it did on the pipe.
    pub fn stdout_written(&self) -> bool {
        let mut first = [0u8; 8];
        self.map.copy_out(stdout_offset(self.ring) as usize, &mut first);
        first != [0; 8]
    }

    fn receiver(&self, ring: usize, alive: Alive, nap: Duration) -> Receiver {
        Receiver { end: End::new(self, ring, alive, nap), read: 0, seen: 0 }
    }

    fn sender(&self, ring: usize, alive: Alive, nap: Duration) -> Sender {
        Sender { end: End::new(self, ring, alive, nap), written: 0, seen: 0 }
    }
}

/// What both ends of a ring hold: where it is and how to wait on it.
struct End {
    map: Rc<Mapping>,
    control: usize,
    data: usize,
    bytes: u64,
    alive: Alive,
    nap: Duration,
}

impl End {
    fn new(region: &Region, ring: usize, alive: Alive, nap: Duration) -> End {
        End {
            map: region.map.clone(),
            control: CONTROL_AT[ring],
            data: HEADER_BYTES + ring * region.ring,
            bytes: region.ring as u64,
            alive,
            nap,
        }
    }

    fn word(&self, at: usize) -> &AtomicU64 {
        self.map.u64_at(self.control + at)
    }

    fn flag(&self, at: usize) -> &AtomicU32 {
        self.map.u32_at(self.control + at)
    }

    /// Waits until `ready` gives a positive count (returned), or the peer is gone (0).
    fn wait(&self, sleeps: usize, mut ready: impl FnMut() -> io::Result<u64>) -> io::Result<u64> {
        for _ in 0..SPINS {
            let n = ready()?;
            if n > 0 {
                return Ok(n);
            }
            std::thread::yield_now();
        }
        let flag = self.flag(sleeps);
        loop {
            // Say we sleep, then look once more: the peer either sees the flag after publishing
            // (and wakes us) or published before our look (and we do not sleep).
            flag.store(1, Ordering::SeqCst);
            let n = ready()?;
            if n > 0 {
                flag.store(0, Ordering::Relaxed);
                return Ok(n);
            }
            futex_wait(flag, 1, self.nap);
            let n = ready()?;
            if n > 0 {
                flag.store(0, Ordering::Relaxed);
                return Ok(n);
            }
            if !(self.alive)()? {
                return Ok(0);
            }
        }
    }

    /// After publishing: wakes the peer if it said it sleeps.
    fn wake(&self, sleeps: usize) {
        let flag = self.flag(sleeps);
        if flag.load(Ordering::SeqCst) != 0 && flag.swap(0, Ordering::SeqCst) != 0 {
            futex_wake(flag);
        }
    }
}

/// The consuming end of a ring: a byte stream like a pipe's read end.
pub struct Receiver {
    end: End,
    /// Bytes consumed (ours: never read back from shared memory).
    read: u64,
    /// The producer's index when last looked at.
    seen: u64,
}

fn ready_bytes(end: &End, read: u64, seen: &mut u64) -> io::Result<u64> {
    let written = end.word(WRITTEN).load(Ordering::SeqCst);
    let ready = written.wrapping_sub(read);
    if ready > end.bytes || ready < seen.wrapping_sub(read) {
        return Err(invalid(format!(
            "an impossible ring index (written {written}, after {seen} of which {read} were read, ring of {} bytes)",
            end.bytes
        )));
    }
    *seen = written;
    Ok(ready)
}

impl Read for Receiver {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (end, read, seen) = (&self.end, self.read, &mut self.seen);
        let mut ready = ready_bytes(end, read, seen)?;
        if ready == 0 {
            ready = end.wait(READER_SLEEPS, || ready_bytes(end, read, seen))?;
            if ready == 0 {
                return Ok(0);
            }
        }
        let n = ready.min(buf.len() as u64) as usize;
        let at = (read % end.bytes) as usize;
        let first = n.min(end.bytes as usize - at);
        end.map.copy_out(end.data + at, &mut buf[..first]);
        end.map.copy_out(end.data, &mut buf[first..n]);
        self.read += n as u64;
        end.word(READ).store(self.read, Ordering::SeqCst);
        end.wake(WRITER_SLEEPS);
        Ok(n)
    }
}

/// The producing end of a ring: a byte stream like a pipe's write end.
pub struct Sender {
    end: End,
    /// Bytes published (ours: never read back from shared memory).
    written: u64,
    /// The consumer's index when last looked at.
    seen: u64,
}

fn free_space(end: &End, written: u64, seen: &mut u64) -> io::Result<u64> {
    let read = end.word(READ).load(Ordering::SeqCst);
    if read.wrapping_sub(*seen) > written.wrapping_sub(*seen) {
        return Err(invalid(format!(
            "an impossible ring index (read {read}, after {seen} of {written} written bytes, ring of {} bytes)",
            end.bytes
        )));
    }
    *seen = read;
    end.bytes.checked_sub(written.wrapping_sub(read)).ok_or_else(|| invalid(format!("read {read} of {written}")))
}

impl Write for Sender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (end, written, seen) = (&self.end, self.written, &mut self.seen);
        let mut free = free_space(end, written, seen)?;
        if free == 0 {
            free = end.wait(WRITER_SLEEPS, || free_space(end, written, seen))?;
            if free == 0 {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the peer left the channel"));
            }
        }
        let n = free.min(buf.len() as u64) as usize;
        let at = (self.written % end.bytes) as usize;
        let first = n.min(end.bytes as usize - at);
        end.map.copy_in(end.data + at, &buf[..first]);
        end.map.copy_in(end.data, &buf[first..n]);
        self.written += n as u64;
        end.word(WRITTEN).store(self.written, Ordering::SeqCst);
        end.wake(READER_SLEEPS);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    const RING: usize = MIN_RING;

    fn memory_file(tag: &str) -> File {
        let path = std::env::temp_dir().join(format!("frontier-channel-{}-{tag}", std::process::id()));
        let file = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file.set_len(region_bytes(RING) as u64).unwrap();
        file
    }

    fn always() -> Alive {
        Rc::new(|| Ok(true))
    }

    fn nap() -> Duration {
        Duration::from_millis(5)
    }

    #[test]
    fn a_frame_many_rings_long_streams_through_and_back() {
        let file = memory_file("stream");
        let region = Region::create(&file, RING).unwrap();
        let theirs = file.try_clone().unwrap();
        let harness_gone = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gone = harness_gone.clone();
        // The candidate's side, in a thread of its own: echoes every byte back until the harness goes.
        let echo = std::thread::spawn(move || {
            let alive: Alive = Rc::new(move || Ok(!gone.load(Ordering::SeqCst)));
            let (mut rx, mut tx) = Region::attach(&theirs).expect("a laid-out file").candidate_ends(alive, nap());
            let mut buf = vec![0u8; 1000];
            let mut total = 0;
            loop {
                let n = rx.read(&mut buf).unwrap();
                if n == 0 {
                    return total;
                }
                tx.write_all(&buf[..n]).unwrap();
                total += n;
            }
        });
        let (mut rx, mut tx) = region.harness_ends(always(), nap());
        let sent: Vec<u8> = (0..25 * RING).map(|i| (i * 7 + i / 251) as u8).collect();
        let mut got = vec![0u8; sent.len()];
        // A ring's worth out, as much back: neither side ever has more than a ring outstanding.
        for (out, back) in sent.chunks(RING).zip(got.chunks_mut(RING)) {
            tx.write_all(out).unwrap();
            rx.read_exact(back).unwrap();
        }
        assert!(got == sent, "the bytes came back changed");
        harness_gone.store(true, Ordering::SeqCst);
        assert_eq!(echo.join().unwrap(), sent.len(), "the candidate's end saw the end of input");
    }

    #[test]
    fn an_impossible_write_index_is_an_error_not_an_access() {
        let file = memory_file("write-index");
        let region = Region::create(&file, RING).unwrap();
        let (mut rx, _tx) = region.harness_ends(always(), nap());
        let written = region.map.u64_at(CONTROL_AT[1] + WRITTEN);
        let mut buf = [0u8; 64];
        for forged in [RING as u64 + 1, u64::MAX, 1 << 40] {
            written.store(forged, Ordering::SeqCst);
            let e = rx.read(&mut buf).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            assert!(e.to_string().contains("an impossible ring index"), "{e}");
        }
        // Bytes once published cannot be taken back.
        written.store(10, Ordering::SeqCst);
        assert_eq!(rx.read(&mut buf[..4]).unwrap(), 4);
        written.store(8, Ordering::SeqCst);
        assert!(rx.read(&mut buf).unwrap_err().to_string().contains("an impossible ring index"));
    }

    #[test]
    fn an_impossible_read_index_is_an_error_not_an_access() {
        let file = memory_file("read-index");
        let region = Region::create(&file, RING).unwrap();
        let (_rx, mut tx) = region.harness_ends(always(), nap());
        tx.write_all(&[1; 100]).unwrap();
        let read = region.map.u64_at(CONTROL_AT[0] + READ);
        for forged in [101, u64::MAX, 1 << 40] {
            read.store(forged, Ordering::SeqCst);
            let e = tx.write(&[2; 10]).unwrap_err();
            assert!(e.to_string().contains("an impossible ring index"), "{e}");
        }
        read.store(50, Ordering::SeqCst);
        tx.write_all(&[3; 10]).unwrap();
        read.store(40, Ordering::SeqCst);
        assert!(tx.write(&[4; 10]).unwrap_err().to_string().contains("an impossible ring index"));
    }

    #[test]
    fn a_peer_that_is_gone_ends_reads_and_breaks_writes() {
        let file = memory_file("gone");
        let region = Region::create(&file, RING).unwrap();
        let checks = Rc::new(std::cell::Cell::new(0));
        let alive: Alive = {
            let checks = checks.clone();
            Rc::new(move || {
                checks.set(checks.get() + 1);
                Ok(checks.get() < 3)
            })
        };
        let (mut rx, mut tx) = region.harness_ends(alive, Duration::from_millis(1));
        assert_eq!(rx.read(&mut [0u8; 8]).unwrap(), 0, "the end of input");
        assert_eq!(checks.get(), 3, "asked after each nap until the peer was gone");
        // A full ring nobody drains: the write waits, then reports the broken channel.
        tx.write_all(&vec![0u8; RING]).unwrap();
        assert_eq!(tx.write(&[1]).unwrap_err().kind(), io::ErrorKind::BrokenPipe);
        // The check's own error ends the wait with it.
        let failing: Alive = Rc::new(|| Err(io::Error::new(io::ErrorKind::InvalidData, "it wrote to its stdout")));
        let (mut rx, _) = region.harness_ends(failing, Duration::from_millis(1));
        assert!(rx.read(&mut [0u8; 8]).unwrap_err().to_string().contains("stdout"));
    }

    #[test]
    fn only_a_laid_out_file_is_a_channel_and_stdout_stays_zero() {
        let file = memory_file("attach");
        assert!(Region::attach(&file).is_none(), "zeros are not a channel");
        let region = Region::create(&file, RING).unwrap();
        assert!(Region::attach(&file).is_some());
        assert!(!region.stdout_written());
        file.set_len(region_bytes(RING) as u64 + 1).unwrap();
        assert!(Region::attach(&file).is_none(), "a file of another size");
        file.set_len(region_bytes(RING) as u64).unwrap();
        use std::os::unix::fs::FileExt;
        file.write_all_at(b"{\"id\":1}", stdout_offset(RING)).unwrap();
        assert!(region.stdout_written());
        file.write_all_at(&[0; 8], stdout_offset(RING)).unwrap();
        file.write_all_at(b"frontch2", 0).unwrap();
        assert!(Region::attach(&file).is_none(), "another magic");
    }
}
