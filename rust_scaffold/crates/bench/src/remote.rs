//! The harness's side of a candidate run: the candidate optimizer lives in a child process.
//!
//! [`RemoteCandidate`] implements [`Optimizer`] by forwarding each step to a fresh candidate
//! process (see `frontier_core::remote` for the frames). Every oracle call the candidate asks for
//! is answered here, through the harness's own [`StepContext`], which counts it and refuses it past
//! the budget; the candidate's process is killed when the run ends, with anything it started.
//!
//! The frames travel over a shared-memory channel (`frontier_core::channel`): a sealed memory
//! file made for the run, which the candidate gets as its stdin and this process unmaps when the
//! run ends. The candidate's stdout points at a page of that file that must stay zero: a run has
//! no stdout, and a byte written there ends the run as a protocol breach, as it did when stdout
//! was the pipe the frames came on. Where no memory file can be made, the frames go over the
//! candidate's stdin and stdout instead.

use crate::os;
use crate::zygote::{self, Zygote};
use frontier_core::channel::{self, Alive, Region};
use frontier_core::guard::Reported;
use frontier_core::remote::{self as wire, Frame, FrameReader};
use frontier_core::{Knob, Optimizer, StepContext, Tensor};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

/// Where candidate runs happen and how they are cleaned up.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    pub binary: PathBuf,
    pub args: Vec<String>,
    /// Wall-time limit of one run's candidate process.
    pub run_timeout: Duration,
    /// After each run, kill every other process of the sandbox (the harness is pid 2 there).
    pub sweep: bool,
}

impl RemoteConfig {
    pub fn new(binary: PathBuf, args: Vec<String>) -> RemoteConfig {
        RemoteConfig { binary, args, run_timeout: Duration::from_secs(120), sweep: false }
    }
}

/// How the frames travel between the harness and the candidate process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A shared-memory channel, or pipes where none can be made.
    SharedMemory,
    /// The candidate's stdin and stdout.
    Pipes,
}

/// How long the harness sleeps on the channel before it looks at the candidate's process (its
/// death, its time limit, its stdout).
const HARNESS_NAP: Duration = Duration::from_millis(10);

const STDOUT_WRITTEN: &str = "it wrote to its standard output, which a run does not have";

pub struct RemoteCandidate {
    pipe: RefCell<Pipe>,
    knobs: Vec<Knob>,
    switches: Vec<&'static str>,
    configured: bool,
}

/// The candidate process and the two ends of its channel. Behind a `RefCell` because the harness
/// also asks for the evaluation point through `Optimizer::eval_params(&self)`. Dropping it ends the
/// run's processes (see its `Drop`), also when the candidate fails before its optimizer is built.
struct Pipe {
    child: Rc<RefCell<Process>>,
    /// Dropped when the run ends: stops the run's timer.
    done: Option<mpsc::Sender<()>>,
    /// After the run, kill every other process of the sandbox.
    sweep: bool,
    input: FrameReader<BufReader<Box<dyn Read>>>,
    output: Box<dyn Write>,
    /// The shared memory (None: frames on pipes).
    region: Option<Region>,
    scratch: Vec<Tensor>,
    timed_out: Arc<AtomicBool>,
    run_timeout: Duration,
}

/// A run's candidate process: a child of this process (exec), or of the binary's zygote (fork).
enum Process {
    Spawned(Child),
    Forked { pid: i32, pidfd: OwnedFd, zygote: Rc<Zygote>, status: Option<String> },
}

impl Process {
    fn id(&self) -> i32 {
        match self {
            Process::Spawned(child) => child.id() as i32,
            Process::Forked { pid, .. } => *pid,
        }
    }

    fn running(&mut self) -> io::Result<bool> {
        match self {
            Process::Spawned(child) => Ok(child.try_wait()?.is_none()),
            Process::Forked { pidfd, status, .. } => Ok(status.is_none() && !os::readable(pidfd.as_fd(), 0)?),
        }
    }

    /// Kills the process if it still runs and reaps it: how it ended, as text.
    fn end(&mut self) -> String {
        match self {
            Process::Spawned(child) => {
                let _ = child.kill();
                child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())
            }
            Process::Forked { pid, pidfd, zygote, status } => status
                .get_or_insert_with(|| {
                    os::kill_pidfd(pidfd.as_fd());
                    match zygote.reap(*pid) {
                        Ok(s) => s.to_string(),
                        Err(e) => {
                            // Its zygote is gone, and with it the duty to reap: wait for the end itself.
                            let _ = os::readable(pidfd.as_fd(), 5_000);
                            format!("not known: {e}")
                        }
                    }
                })
                .clone(),
        }
    }
}

/// The run's process forked by `config`'s zygote, or None (then the run starts by exec).
fn fork_run(config: &RemoteConfig, file: &File) -> Option<Process> {
    let zygote = zygote::for_config(config)?;
    match zygote.fork(file) {
        Ok((pid, pidfd)) => Some(Process::Forked { pid, pidfd, zygote, status: None }),
        Err(_) => {
            zygote::give_up(config);
            None
        }
    }
}

fn fail(message: String) -> ! {
    std::panic::panic_any(Reported { message, location: None })
}

/// A run's memory file, laid out, positioned where the candidate's stdout is to point.
fn memory_file() -> io::Result<(File, Region)> {
    let file = os::sealed_memory_file(c"frontier-run", channel::region_bytes(channel::RING_BYTES) as u64)?;
    let region = Region::create(&file, channel::RING_BYTES)?;
    (&file).seek(SeekFrom::Start(channel::stdout_offset(channel::RING_BYTES)))?;
    Ok((file, region))
}

/// A run's memory file twice (the candidate's stdin and stdout) and its mapping, or None.
fn memory_ends() -> Option<(File, File, Region)> {
    memory_file().and_then(|(f, region)| Ok((f.try_clone()?, f, region))).ok()
}

impl RemoteCandidate {
    /// Starts the candidate process and has it build its optimizer. Panics (caught by the
    /// runner's guard) with the candidate's own message and location if that fails.
    pub fn start(config: &RemoteConfig) -> RemoteCandidate {
        RemoteCandidate::start_over(config, Transport::SharedMemory)
    }

    /// [`RemoteCandidate::start`] over the given transport.
    pub fn start_over(config: &RemoteConfig, transport: Transport) -> RemoteCandidate {
        let shared = match transport {
            Transport::SharedMemory => memory_ends(),
            Transport::Pipes => None,
        };
        // A fork of the binary's zygote where there is one (the channel's memory file goes to it),
        // else an exec: the candidate gets the same stdin, stdout and nothing else either way.
        let forked = shared.as_ref().and_then(|(stdin, _, _)| fork_run(config, stdin));
        // A zygote that failed may still have forked a child with that memory file: an exec'd
        // candidate gets a fresh one, which no other process holds.
        let shared = match (&forked, shared) {
            (None, Some(_)) => memory_ends(),
            (_, shared) => shared,
        };
        let (process, pipes, region) = match (forked, shared) {
            (Some(process), Some((_, _, region))) => (process, (None, None), Some(region)),
            (_, shared) => {
                let mut command = Command::new(&config.binary);
                command.args(&config.args).env_clear().current_dir(Path::new("/")).stderr(Stdio::null()).process_group(0);
                // stdin and stdout share one file position: the page the candidate's stdout writes land on.
                let region = match shared {
                    Some((stdin, stdout, region)) => {
                        command.stdin(Stdio::from(stdin)).stdout(Stdio::from(stdout));
                        Some(region)
                    }
                    None => {
                        command.stdin(Stdio::piped()).stdout(Stdio::piped());
                        None
                    }
                };
                let spawned = command.spawn();
                drop(command); // the memory file's descriptors: the candidate holds the only ones now
                let mut child = spawned.unwrap_or_else(|e| fail(format!("the candidate binary could not start: {e}")));
                let pipes = (child.stdout.take(), child.stdin.take());
                (Process::Spawned(child), pipes, region)
            }
        };
        let (done, rx) = mpsc::channel::<()>();
        let timed_out = Arc::new(AtomicBool::new(false));
        let (pid, limit, flag) = (process.id(), config.run_timeout, timed_out.clone());
        thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                flag.store(true, Ordering::SeqCst);
                os::kill_hard(-pid);
                os::kill_hard(pid);
            }
        });
        let child = Rc::new(RefCell::new(process));
        let (input, output): (Box<dyn Read>, Box<dyn Write>) = match (&region, pipes) {
            (Some(region), _) => {
                let (canary, child, flag) = (region.clone(), child.clone(), timed_out.clone());
                let alive: Alive = Rc::new(move || {
                    if canary.stdout_written() {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, STDOUT_WRITTEN));
                    }
                    Ok(!flag.load(Ordering::SeqCst) && child.borrow_mut().running()?)
                });
                let (rx, tx) = region.harness_ends(alive, HARNESS_NAP);
                (Box::new(rx), Box::new(tx))
            }
            (None, (Some(stdout), Some(stdin))) => (Box::new(stdout), Box::new(BufWriter::with_capacity(1 << 16, stdin))),
            (None, _) => unreachable!("both pipes were asked for"),
        };
        let mut pipe = Pipe {
            child,
            done: Some(done),
            sweep: config.sweep,
            input: FrameReader::new(BufReader::with_capacity(1 << 16, input)),
            output,
            region,
            scratch: Vec::new(),
            timed_out,
            run_timeout: config.run_timeout,
        };
        pipe.send(&Frame::new(wire::BEGIN));
        let (knobs, switches) = match pipe.tag() {
            Some(wire::READY) => pipe.read_declaration(),
            Some(wire::ERROR) => pipe.reported_error(),
            other => pipe.broken(other),
        };
        RemoteCandidate {
            pipe: RefCell::new(pipe),
            knobs,
            switches,
            configured: false,
        }
    }
}

impl Pipe {
    fn read_declaration(&mut self) -> (Vec<Knob>, Vec<&'static str>) {
        let declared = (|| -> io::Result<(Vec<Knob>, Vec<&'static str>)> {
            let r = &mut self.input;
            let mut knobs = Vec::new();
            for _ in 0..r.count(frontier_core::contract::MAX_KNOBS + 1, "knobs")? {
                let name: &'static str = Box::leak(r.str()?.into_boxed_str());
                let (low, high, default, log_scale) = (r.f64()?, r.f64()?, r.f64()?, r.u8()? != 0);
                knobs.push(Knob { name, low, high, default, log_scale });
            }
            let mut switches = Vec::new();
            for _ in 0..r.count(frontier_core::contract::MAX_SWITCHES + 1, "switches")? {
                switches.push(&*Box::leak(r.str()?.into_boxed_str()));
            }
            Ok((knobs, switches))
        })();
        declared.unwrap_or_else(|e| self.broken_io(e))
    }

    fn send(&mut self, frame: &Frame) {
        if let Err(e) = frame.send(&mut self.output) {
            self.broken_io(e);
        }
    }

    /// The next frame's tag; first, a candidate that wrote to its stdout has broken the protocol.
    fn tag(&mut self) -> Option<u8> {
        let tag = self.read(|r| r.tag());
        if self.region.as_ref().is_some_and(Region::stdout_written) {
            fail(format!("the candidate process broke the run protocol: {STDOUT_WRITTEN}"));
        }
        tag
    }

    fn read<T>(&mut self, f: impl FnOnce(&mut FrameReader<BufReader<Box<dyn Read>>>) -> io::Result<T>) -> T {
        match f(&mut self.input) {
            Ok(v) => v,
            Err(e) => self.broken_io(e),
        }
    }

    fn reported_error(&mut self) -> ! {
        let message = self.read(|r| r.str());
        let location = self.read(|r| r.str());
        std::panic::panic_any(Reported { message, location: (!location.is_empty()).then_some(location) })
    }

    fn broken_io(&mut self, e: io::Error) -> ! {
        if e.kind() == io::ErrorKind::InvalidData {
            fail(format!("the candidate process broke the run protocol: {e}"))
        }
        self.broken(None)
    }

    fn broken(&mut self, tag: Option<u8>) -> ! {
        if let Some(t) = tag {
            fail(format!("the candidate process broke the run protocol (unexpected frame {t:#04x})"));
        }
        if self.timed_out.load(Ordering::SeqCst) {
            fail(format!("the candidate's run exceeded its time limit of {} s", self.run_timeout.as_secs()));
        }
        let status = self.child.borrow_mut().end();
        fail(format!("the candidate process ended in the middle of its run ({status})"))
    }

    fn configure(&mut self, params: &[Tensor], ctx: &StepContext) {
        let mut f = Frame::new(wire::CONFIG);
        f.u32(ctx.knob_values().len() as u32);
        for (name, value) in ctx.knob_values() {
            f.str(name).f64(*value);
        }
        f.u32(ctx.switched_off().len() as u32);
        for name in ctx.switched_off() {
            f.str(name);
        }
        f.u32(params.len() as u32);
        for (i, p) in params.iter().enumerate() {
            f.u32(p.shape.len() as u32);
            for &d in &p.shape {
                f.u64(d as u64);
            }
            f.u8(ctx.kind(i, p).code());
        }
        f.tensors(params);
        self.send(&f);
        self.scratch = params.to_vec();
    }

    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        let mut f = Frame::new(wire::STEP);
        f.u64(ctx.step).f64(ctx.loss).f64(ctx.lr).u64(ctx.budget_left()).tensors(grads);
        self.send(&f);
        loop {
            match self.tag() {
                Some(wire::PARAMS) => {
                    let r = &mut self.input;
                    if let Err(e) = r.tensors_into(params) {
                        self.broken_io(e);
                    }
                    return;
                }
                Some(tag @ (wire::LOSS_AT | wire::GRAD_AT)) => {
                    let mut at = std::mem::take(&mut self.scratch);
                    if let Err(e) = self.input.tensors_into(&mut at) {
                        self.broken_io(e);
                    }
                    // Counted, and refused past the budget, by the harness's own context.
                    let reply = if tag == wire::LOSS_AT {
                        let mut f = Frame::new(wire::LOSS_VALUE);
                        f.f64(ctx.loss_at(&at));
                        f
                    } else {
                        let g = ctx.grad_at(&at);
                        let mut f = Frame::new(wire::GRAD_VALUE);
                        f.f64(f64::NAN).tensors(&g);
                        f
                    };
                    self.scratch = at;
                    self.send(&reply);
                }
                Some(wire::ERROR) => self.reported_error(),
                other => self.broken(other),
            }
        }
    }

    fn eval_point(&mut self, params: &[Tensor]) -> Option<Vec<Tensor>> {
        self.send(&Frame::new(wire::EVAL));
        match self.tag() {
            Some(wire::EVAL_POINT) => {
                if self.read(|r| r.u8()) == 0 {
                    return None;
                }
                let mut at = params.to_vec();
                if let Err(e) = self.input.tensors_into(&mut at) {
                    self.broken_io(e);
                }
                Some(at)
            }
            Some(wire::ERROR) => self.reported_error(),
            other => self.broken(other),
        }
    }
}

impl Optimizer for RemoteCandidate {
    fn name(&self) -> &str {
        "candidate"
    }
    fn knobs(&self) -> Vec<Knob> {
        self.knobs.clone()
    }
    fn switches(&self) -> Vec<&'static str> {
        self.switches.clone()
    }

    fn step(&mut self, params: &mut [Tensor], grads: &[Tensor], ctx: &StepContext) {
        let pipe = self.pipe.get_mut();
        if !self.configured {
            pipe.configure(params, ctx);
            self.configured = true;
        }
        pipe.step(params, grads, ctx);
    }

    fn eval_params(&self, params: &[Tensor]) -> Option<Vec<Tensor>> {
        if !self.configured {
            return None;
        }
        self.pipe.borrow_mut().eval_point(params)
    }
}

impl Drop for Pipe {
    /// Kills the candidate's process group and reaps the candidate, then (in a sweeping harness)
    /// every other process of the sandbox and its IPC objects. Without the reaping a failed start
    /// left a zombie per run, and a harness process serving many runs ran out of processes.
    fn drop(&mut self) {
        let mut child = self.child.borrow_mut();
        os::kill_hard(-child.id());
        child.end();
        drop(child);
        drop(self.done.take());
        if self.sweep {
            os::kill_all_others(&zygote::pids());
            os::remove_ipc_objects();
        }
    }
}
