//! The candidate's side of a benchmark run: a process that holds only the optimizer.
//!
//! The harness (a separate, trusted process) owns the problem, the data, the oracle budget and
//! every number a verdict is made of. It starts one candidate process per run and talks to it
//! in the frames below, over a shared-memory channel whose memory file is the candidate's stdin
//! ([`crate::channel`]), or over the candidate's stdin/stdout where the harness could not make
//! one (then stdin is a pipe); the candidate sees parameters, gradients and the step context,
//! nothing else. Whatever a candidate does to its own process
//! (state kept between steps, corrupted memory, forged output) ends with that process: the
//! harness reads only well-formed frames and computes every loss itself.
//!
//! Frames (little-endian; `str` is a u32 length and UTF-8 bytes; `f64s` are as many f64 as the
//! parameters have scalars):
//!
//! ```text
//! harness -> candidate                        candidate -> harness
//! B                      build the optimizer  R knobs(u32, then str f64 f64 f64 u8 each) switches(u32, str each)
//!                                             | E message(str) location(str)
//! C knobs(u32, str f64 each) off(u32, str each) shapes(u32 tensors; u32 ndim, u64 dims, u8 kind each) params(f64s)
//! S step(u64) loss(f64) lr(f64) budget(u64) grads(f64s)
//!                                             L params(f64s)            loss_at   -> V loss(f64)
//!                                             G params(f64s)            grad_at   -> W loss(f64) grads(f64s)
//!                                             P params(f64s)            the step is done
//!                                             | E message location      a panic
//! X                      evaluation point?    Y u8 (0: the parameters; 1: f64s follow)
//!                                             | E message location      a panic
//! ```
//! Kinds are [`crate::ParamKind::code`]s; `X` comes between steps, where the harness evaluates.
//! The harness never answers past the budget: it ends the run instead (see
//! [`crate::BudgetExceeded`]). An `hvp` is two `G` requests.

use crate::channel::{Alive, Region};
use crate::guard::guarded;
use crate::{contract, Knob, Optimizer, Oracle, ParamKind, StepContext, Tensor};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

pub const BEGIN: u8 = b'B';
pub const READY: u8 = b'R';
pub const CONFIG: u8 = b'C';
pub const STEP: u8 = b'S';
pub const LOSS_AT: u8 = b'L';
pub const GRAD_AT: u8 = b'G';
pub const LOSS_VALUE: u8 = b'V';
pub const GRAD_VALUE: u8 = b'W';
pub const PARAMS: u8 = b'P';
pub const ERROR: u8 = b'E';
pub const EVAL: u8 = b'X';
pub const EVAL_POINT: u8 = b'Y';

/// Longest string a frame may carry (names, panic messages): a longer one is a protocol error.
pub const MAX_STR: usize = 4096;
/// Most tensors and dimensions a frame may describe.
pub const MAX_TENSORS: usize = 4096;
/// Most scalars a run may have (2^28 f64 = 2 GiB).
pub const MAX_SCALARS: usize = 1 << 28;

/// Builds frames in memory; one `write_all` sends each.
#[derive(Default)]
pub struct Frame {
    pub bytes: Vec<u8>,
}

impl Frame {
    pub fn new(tag: u8) -> Frame {
        Frame { bytes: vec![tag] }
    }
    pub fn u8(&mut self, v: u8) -> &mut Frame {
        self.bytes.push(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Frame {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Frame {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn f64(&mut self, v: f64) -> &mut Frame {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Frame {
        let s = truncate(s, MAX_STR);
        self.u32(s.len() as u32);
        self.bytes.extend_from_slice(s.as_bytes());
        self
    }
    /// Every scalar of `ts`, in order.
    pub fn tensors(&mut self, ts: &[Tensor]) -> &mut Frame {
        self.bytes.reserve(8 * crate::numel(ts));
        for t in ts {
            for x in &t.data {
                self.bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        self
    }
    pub fn send(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.bytes)?;
        out.flush()
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads frame fields; every length is bounded, so a hostile peer cannot make it allocate at will.
pub struct FrameReader<R: Read> {
    inner: R,
}

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R) -> FrameReader<R> {
        FrameReader { inner }
    }
    /// The next tag, or None at a clean end of input.
    pub fn tag(&mut self) -> io::Result<Option<u8>> {
        let mut b = [0u8; 1];
        match self.inner.read(&mut b)? {
            0 => Ok(None),
            _ => Ok(Some(b[0])),
        }
    }
    pub fn u8(&mut self) -> io::Result<u8> {
        let mut b = [0u8; 1];
        self.inner.read_exact(&mut b)?;
        Ok(b[0])
    }
    pub fn u32(&mut self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.inner.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    pub fn u64(&mut self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        self.inner.read_exact(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    pub fn f64(&mut self) -> io::Result<f64> {
        let mut b = [0u8; 8];
        self.inner.read_exact(&mut b)?;
        Ok(f64::from_le_bytes(b))
    }
    pub fn str(&mut self) -> io::Result<String> {
        let n = self.u32()? as usize;
        if n > MAX_STR {
            return Err(invalid(format!("a string of {n} bytes (at most {MAX_STR})")));
        }
        let mut b = vec![0u8; n];
        self.inner.read_exact(&mut b)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
    pub fn count(&mut self, max: usize, what: &str) -> io::Result<usize> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(invalid(format!("{n} {what} (at most {max})")));
        }
        Ok(n)
    }
    /// Fills every scalar of `ts` in place, in order.
    pub fn tensors_into(&mut self, ts: &mut [Tensor]) -> io::Result<()> {
        let mut buf = [0u8; 8 * 512];
        for t in ts.iter_mut() {
            for chunk in t.data.chunks_mut(512) {
                let bytes = &mut buf[..8 * chunk.len()];
                self.inner.read_exact(bytes)?;
                for (x, b) in chunk.iter_mut().zip(bytes.chunks_exact(8)) {
                    *x = f64::from_le_bytes(b.try_into().expect("8 bytes"));
                }
            }
        }
        Ok(())
    }
}

/// The harness's oracle as the candidate process reaches it: one request frame per call.
struct PipeOracle<'a> {
    io: &'a RefCell<Io>,
}

struct Io {
    input: FrameReader<BufReader<Box<dyn Read>>>,
    output: Box<dyn Write>,
}

/// How long the candidate sleeps on the channel before it checks that the harness is still there.
const CANDIDATE_NAP: Duration = Duration::from_millis(50);

impl Io {
    /// The channel the harness handed over as stdin, else frames on stdin/stdout.
    fn open() -> Io {
        let region = io::stdin().as_fd().try_clone_to_owned().ok().map(File::from).and_then(|f| Region::attach(&f));
        match region {
            Some(region) => {
                // The harness is this process's parent: once it is gone, nobody will answer.
                let parent = std::os::unix::process::parent_id();
                let alive: Alive = Rc::new(move || Ok(std::os::unix::process::parent_id() == parent));
                let (rx, tx) = region.candidate_ends(alive, CANDIDATE_NAP);
                Io { input: FrameReader::new(BufReader::with_capacity(1 << 16, Box::new(rx))), output: Box::new(tx) }
            }
            None => Io {
                input: FrameReader::new(BufReader::with_capacity(1 << 16, Box::new(io::stdin()))),
                output: Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
            },
        }
    }
}

impl Io {
    fn request(&mut self, tag: u8, params: &[Tensor]) -> io::Result<u8> {
        Frame::new(tag).tensors(params).send(&mut self.output)?;
        self.input.tag()?.ok_or_else(|| invalid("the harness closed the pipe"))
    }
}

fn lost(e: io::Error) -> ! {
    // The harness refused a call (budget) or went away: nothing this process computes counts now.
    panic!("the harness ended this run: {e}")
}

impl Oracle for PipeOracle<'_> {
    fn loss(&self, params: &[Tensor]) -> f64 {
        let mut io = self.io.borrow_mut();
        match io.request(LOSS_AT, params) {
            Ok(LOSS_VALUE) => io.input.f64().unwrap_or_else(|e| lost(e)),
            Ok(t) => lost(invalid(format!("unexpected frame {t}"))),
            Err(e) => lost(e),
        }
    }
    fn loss_grad(&self, params: &[Tensor], grads: &mut [Tensor]) -> f64 {
        let mut io = self.io.borrow_mut();
        match io.request(GRAD_AT, params) {
            Ok(GRAD_VALUE) => {
                let loss = io.input.f64().unwrap_or_else(|e| lost(e));
                io.input.tensors_into(grads).unwrap_or_else(|e| lost(e));
                loss
            }
            Ok(t) => lost(invalid(format!("unexpected frame {t}"))),
            Err(e) => lost(e),
        }
    }
}

/// The `main` of a candidate binary: `serve` (the default) answers one run's frames (over the
/// channel handed over as stdin, else on stdin/stdout); `zygote` forks a process per run that does
/// the same ([`crate::zygote`]); `knobs` prints the declared knobs and switches as one JSON line.
pub fn main_with(build: fn() -> Box<dyn Optimizer>) -> ExitCode {
    crate::guard::install_hook();
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => match serve(&build) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(1),
        },
        Some("zygote") => crate::zygote::serve_forks(&build),
        Some("knobs") => {
            println!("{}", knobs_json(&build));
            ExitCode::SUCCESS
        }
        Some(_) => {
            eprintln!("usage: <candidate> [serve | zygote | knobs]");
            ExitCode::from(2)
        }
    }
}

/// One run: build, configure, then steps until the harness closes the channel (or goes away).
pub fn serve(build: &dyn Fn() -> Box<dyn Optimizer>) -> io::Result<()> {
    let io = RefCell::new(Io::open());
    let error = |io: &RefCell<Io>, message: &str, location: Option<&str>| -> io::Result<()> {
        let mut io = io.borrow_mut();
        Frame::new(ERROR).str(message).str(location.unwrap_or("")).send(&mut io.output)
    };

    let tag = io.borrow_mut().input.tag()?;
    if tag != Some(BEGIN) {
        return Err(invalid("expected B"));
    }
    let mut opt = match guarded(build) {
        Ok(o) => o,
        Err(c) => return error(&io, &format!("panic: {}", c.message), c.location.as_deref()),
    };
    let (knobs, switches) = match guarded(|| (opt.knobs(), opt.switches())) {
        Ok(d) => d,
        Err(c) => return error(&io, &format!("panic: {}", c.message), c.location.as_deref()),
    };
    {
        let mut f = Frame::new(READY);
        f.u32(knobs.len().min(contract::MAX_KNOBS + 1) as u32);
        for k in knobs.iter().take(contract::MAX_KNOBS + 1) {
            f.str(k.name).f64(k.low).f64(k.high).f64(k.default).u8(k.log_scale as u8);
        }
        f.u32(switches.len().min(contract::MAX_SWITCHES + 1) as u32);
        for s in switches.iter().take(contract::MAX_SWITCHES + 1) {
            f.str(s);
        }
        f.send(&mut io.borrow_mut().output)?;
    }

    // C: the run's configuration and starting point.
    let (knob_values, off, kinds, mut params) = {
        let mut io = io.borrow_mut();
        match io.input.tag()? {
            Some(CONFIG) => {}
            None => return Ok(()),
            Some(t) => return Err(invalid(format!("expected C, got {t}"))),
        }
        let r = &mut io.input;
        let n = r.count(contract::MAX_KNOBS, "knobs")?;
        let mut knob_values = Vec::with_capacity(n);
        for _ in 0..n {
            knob_values.push((r.str()?, r.f64()?));
        }
        let n = r.count(contract::MAX_SWITCHES, "switches")?;
        let mut off = Vec::with_capacity(n);
        for _ in 0..n {
            off.push(r.str()?);
        }
        let n = r.count(MAX_TENSORS, "tensors")?;
        let mut params = Vec::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut total = 0usize;
        for _ in 0..n {
            let nd = r.count(16, "dimensions")?;
            let mut shape = Vec::with_capacity(nd);
            for _ in 0..nd {
                shape.push(r.u64()? as usize);
            }
            let code = r.u8()?;
            kinds.push(ParamKind::from_code(code).ok_or_else(|| invalid(format!("unknown parameter kind {code}")))?);
            total = total.saturating_add(shape.iter().product::<usize>());
            if total > MAX_SCALARS {
                return Err(invalid("too many scalars"));
            }
            params.push(Tensor::new(&shape));
        }
        r.tensors_into(&mut params)?;
        (knob_values, off, kinds, params)
    };
    let lens: Vec<usize> = params.iter().map(Tensor::len).collect();
    let mut grads: Vec<Tensor> = params.iter().map(Tensor::zeros_like).collect();
    let oracle = PipeOracle { io: &io };

    loop {
        let (t, loss, lr, budget) = {
            let mut pipe = io.borrow_mut();
            match pipe.input.tag()? {
                Some(STEP) => {}
                Some(EVAL) => {
                    let point = match guarded(|| opt.eval_params(&params)) {
                        Ok(p) => p,
                        Err(c) => {
                            drop(pipe);
                            return error(&io, &format!("panic: {}", c.message), c.location.as_deref());
                        }
                    };
                    let mut f = Frame::new(EVAL_POINT);
                    match point {
                        Some(x) if x.len() == lens.len() && x.iter().zip(&lens).all(|(p, &n)| p.len() == n) => {
                            f.u8(1).tensors(&x);
                        }
                        Some(_) => {
                            drop(pipe);
                            return error(&io, "eval_params returned other tensors than the parameters", None);
                        }
                        None => {
                            f.u8(0);
                        }
                    }
                    f.send(&mut pipe.output)?;
                    continue;
                }
                None => return Ok(()),
                Some(t) => return Err(invalid(format!("expected S or X, got {t}"))),
            }
            let r = &mut pipe.input;
            let head = (r.u64()?, r.f64()?, r.f64()?, r.u64()?);
            r.tensors_into(&mut grads)?;
            head
        };
        let ctx = StepContext::new(t, loss, lr, &oracle)
            .with_knobs(&knob_values)
            .with_switched_off(&off)
            .with_kinds(&kinds)
            .with_budget(budget);
        if let Err(c) = guarded(|| opt.step(&mut params, &grads, &ctx)) {
            return error(&io, &format!("panic: {}", c.message), c.location.as_deref());
        }
        if params.len() != lens.len() || params.iter().zip(&lens).any(|(p, &n)| p.len() != n) {
            return error(&io, "the optimizer changed the number or length of the parameter tensors", None);
        }
        Frame::new(PARAMS).tensors(&params).send(&mut io.borrow_mut().output)?;
    }
}

/// The `knobs` JSON line: the declared knobs and switches, or an error.
pub fn knobs_json(build: &dyn Fn() -> Box<dyn Optimizer>) -> String {
    let declared = guarded(|| {
        let o = build();
        (o.knobs(), o.switches())
    });
    let checked = match declared {
        Ok((k, s)) => contract::resolve_knobs(&k, &[]).and_then(|_| contract::check_switches(&s, &[])).map(|_| (k, s)),
        Err(c) => Err(format!("panic: {}", c.message)),
    };
    match checked {
        Ok((knobs, switches)) => {
            let items: Vec<String> = knobs.iter().map(knob_json).collect();
            let names: Vec<String> = switches.iter().map(|n| json_string(n)).collect();
            format!("{{\"knobs\":[{}],\"switches\":[{}]}}", items.join(","), names.join(","))
        }
        Err(e) => format!("{{\"error\":{}}}", json_string(&e)),
    }
}

fn knob_json(k: &Knob) -> String {
    format!(
        "{{\"name\":{},\"low\":{:?},\"high\":{:?},\"default\":{:?},\"log_scale\":{}}}",
        json_string(k.name),
        k.low,
        k.high,
        k.default,
        k.log_scale
    )
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
