//! Reading a worker's PHP stack from the master, for the slow log (reference §3.7,
//! DESIGN.md §6 "slow log without ptrace"): the worker keeps running while the master
//! copies words out of its memory with `process_vm_readv`.
//!
//! Everything read is untrusted (the worker runs arbitrary code and the walk races
//! with it): every pointer is checked before it is followed, every length is bounded,
//! the walk has a fixed number of steps. A bad read ends the walk with an error; it
//! never faults the master.
use crate::shim;

/// Where the stack lives: the shim's answer, from the C compiler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    pub eg_address: u64,
    pub eg_current_execute_data: u64,
    pub ex_opline: u64,
    pub ex_func: u64,
    pub ex_this_type_info: u64,
    pub ex_prev_execute_data: u64,
    pub fn_type: u64,
    pub fn_common_function_name: u64,
    pub op_array_filename: u64,
    pub op_lineno: u64,
    pub str_len: u64,
    pub str_val: u64,
    pub call_kind_mask: u32,
    pub call_top_code: u32,
    pub call_nested_code: u32,
}

/// The layout of this image (and of every worker forked from it).
#[must_use]
pub fn layout() -> Layout {
    let mut c = shim::rfpm_shim_stack_layout_t::default();
    // SAFETY: the shim fills the struct it is given and touches nothing else.
    unsafe { shim::rfpm_shim_stack_layout(&raw mut c) };
    Layout {
        eg_address: c.eg_address as u64,
        eg_current_execute_data: c.eg_current_execute_data as u64,
        ex_opline: c.ex_opline as u64,
        ex_func: c.ex_func as u64,
        ex_this_type_info: c.ex_this_type_info as u64,
        ex_prev_execute_data: c.ex_prev_execute_data as u64,
        fn_type: c.fn_type as u64,
        fn_common_function_name: c.fn_common_function_name as u64,
        op_array_filename: c.op_array_filename as u64,
        op_lineno: c.op_lineno as u64,
        str_len: c.str_len as u64,
        str_val: c.str_val as u64,
        call_kind_mask: c.call_kind_mask,
        call_top_code: c.call_top_code,
        call_nested_code: c.call_nested_code,
    }
}

/// Another process's memory (or a fake one in tests).
pub trait Memory {
    /// Fills `buf` from `addr`, entirely or not at all.
    fn read(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

/// The memory of process `pid`, through `process_vm_readv`.
pub struct Process(pub libc::pid_t);

impl Memory for Process {
    fn read(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast::<libc::c_void>(),
            iov_len: buf.len(),
        };
        // An address in the other process, never dereferenced here.
        let addr = usize::try_from(addr).map_err(|_| bad())?;
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: `local` describes our own writable buffer; the remote range is only
        // read by the kernel, which checks it against the other process's mappings.
        let n =
            unsafe { libc::process_vm_readv(self.0, &raw const local, 1, &raw const remote, 1, 0) };
        let Ok(n) = usize::try_from(n) else {
            return Err(std::io::Error::last_os_error());
        };
        if n != buf.len() {
            return Err(std::io::Error::from_raw_os_error(libc::EFAULT));
        }
        Ok(())
    }
}

/// Longest function name or file name copied (php-fpm's buffer is 1024 bytes).
const MAX_STRING: u64 = 1023;
/// How many frames the search for the calling user frame may skip.
const MAX_HOPS: usize = 256;
/// Reads one walk may make in all: `depth` frames of up to [`MAX_HOPS`] hops each would
/// be unbounded in the configured depth (a forged cyclic chain costs depth × 256 reads,
/// all in the master's event loop).
const MAX_READS: usize = 16 * 1024;
/// Top of the x86_64/aarch64 user address space.
const USER_TOP: u64 = 1 << 47;

fn bad() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::EFAULT)
}

/// A pointer worth following: non-null, 8-aligned, in user space.
fn valid_ptr(p: u64) -> bool {
    p != 0 && p % 8 == 0 && p < USER_TOP
}

struct Walker<'m, M: Memory> {
    mem: &'m M,
    l: &'m Layout,
    /// Reads left ([`MAX_READS`]); the walk fails when they run out.
    reads_left: std::cell::Cell<usize>,
}

impl<M: Memory> Walker<'_, M> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let left = self.reads_left.get().checked_sub(1).ok_or_else(bad)?;
        self.reads_left.set(left);
        self.mem.read(addr, buf)
    }

    fn word(&self, base: u64, off: u64) -> std::io::Result<u64> {
        let addr = base.checked_add(off).ok_or_else(bad)?;
        let mut b = [0u8; 8];
        self.read(addr, &mut b)?;
        Ok(u64::from_ne_bytes(b))
    }

    fn u32_at(&self, base: u64, off: u64) -> std::io::Result<u32> {
        let addr = base.checked_add(off).ok_or_else(bad)?;
        let mut b = [0u8; 4];
        self.read(addr, &mut b)?;
        Ok(u32::from_ne_bytes(b))
    }

    fn byte(&self, base: u64, off: u64) -> std::io::Result<u8> {
        let addr = base.checked_add(off).ok_or_else(bad)?;
        let mut b = [0u8; 1];
        self.read(addr, &mut b)?;
        Ok(b[0])
    }

    fn ptr(&self, base: u64, off: u64) -> std::io::Result<u64> {
        let p = self.word(base, off)?;
        if p == 0 || valid_ptr(p) {
            Ok(p)
        } else {
            Err(bad())
        }
    }

    /// A `zend_string`'s bytes, at most [`MAX_STRING`] of them.
    fn string(&self, zs: u64) -> std::io::Result<Vec<u8>> {
        if !valid_ptr(zs) {
            return Err(bad());
        }
        let len = self.word(zs, self.l.str_len)?.min(MAX_STRING);
        let mut buf = vec![0u8; len as usize];
        self.read(zs.checked_add(self.l.str_val).ok_or_else(bad)?, &mut buf)?;
        Ok(buf)
    }

    /// User code: a user function or eval'd code (`ZEND_USER_CODE`: type bit 0 clear).
    fn is_user_code(&self, func: u64) -> std::io::Result<bool> {
        Ok(self.byte(func, self.l.fn_type)? & 1 == 0)
    }
}

/// The slow-log lines of a worker's stack, innermost first, at most `depth` of them:
/// `[0x<frame>] <function>() <file>:<line>` (reference §3.7). The top-level script
/// frame is not printed.
pub fn trace<M: Memory>(mem: &M, l: &Layout, depth: usize) -> std::io::Result<Vec<Vec<u8>>> {
    let w = Walker {
        mem,
        l,
        reads_left: std::cell::Cell::new(MAX_READS),
    };
    let mut out = Vec::new();
    if !valid_ptr(l.eg_address) {
        return Err(bad());
    }
    let mut ex = w.ptr(l.eg_address, l.eg_current_execute_data)?;
    while ex != 0 && out.len() < depth {
        if !valid_ptr(ex) {
            return Err(bad());
        }
        let mut line = format!("[0x{ex:016x}] ").into_bytes();
        let func = w.ptr(ex, l.ex_func)?;
        if func == 0 {
            line.extend_from_slice(b"???");
        } else {
            let name = w.ptr(func, l.fn_common_function_name)?;
            if name == 0 {
                let info = w.u32_at(ex, l.ex_this_type_info)?;
                let kind = info & l.call_kind_mask;
                if kind == l.call_top_code {
                    break;
                } else if kind == l.call_nested_code {
                    line.extend_from_slice(b"[INCLUDE_OR_EVAL]");
                } else {
                    line.extend_from_slice(b"???");
                }
            } else {
                line.extend_from_slice(&w.string(name)?);
            }
        }
        line.extend_from_slice(b"()");
        // The location: the nearest calling frame that runs user code.
        let mut prev = w.ptr(ex, l.ex_prev_execute_data)?;
        let mut hops = 0;
        let mut location = None;
        while prev != 0 && hops < MAX_HOPS {
            let pf = w.ptr(prev, l.ex_func)?;
            if pf != 0 && w.is_user_code(pf)? {
                let file = w.ptr(pf, l.op_array_filename)?;
                let opline = w.ptr(prev, l.ex_opline)?;
                let lineno = if opline == 0 {
                    0
                } else {
                    w.u32_at(opline, l.op_lineno)?
                };
                let file = if file == 0 {
                    b"unknown".to_vec()
                } else {
                    w.string(file)?
                };
                location = Some((file, lineno));
                break;
            }
            prev = w.ptr(prev, l.ex_prev_execute_data)?;
            hops += 1;
        }
        match location {
            Some((file, lineno)) => {
                line.push(b' ');
                line.extend_from_slice(&file);
                line.extend_from_slice(format!(":{lineno}").as_bytes());
            }
            None => line.extend_from_slice(b" unknown:0"),
        }
        out.push(line);
        ex = w.ptr(ex, l.ex_prev_execute_data)?;
    }
    Ok(out)
}

/// The stack of worker `pid` (same image as this process).
pub fn trace_process(pid: libc::pid_t, depth: usize) -> std::io::Result<Vec<Vec<u8>>> {
    trace(&Process(pid), &layout(), depth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A sparse fake address space.
    #[derive(Default)]
    struct Fake(BTreeMap<u64, u8>);

    impl Fake {
        fn put(&mut self, addr: u64, bytes: &[u8]) {
            for (i, b) in bytes.iter().enumerate() {
                self.0.insert(addr + i as u64, *b);
            }
        }
        fn word(&mut self, addr: u64, v: u64) {
            self.put(addr, &v.to_ne_bytes());
        }
        fn zstr(&mut self, addr: u64, s: &[u8], l: &Layout) {
            self.word(addr + l.str_len, s.len() as u64);
            self.put(addr + l.str_val, s);
        }
    }

    impl Memory for Fake {
        fn read(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<()> {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = *self.0.get(&(addr + i as u64)).ok_or_else(bad)?;
            }
            Ok(())
        }
    }

    fn test_layout() -> Layout {
        Layout {
            eg_address: 0x1000,
            eg_current_execute_data: 488,
            ex_opline: 0,
            ex_func: 24,
            ex_this_type_info: 40,
            ex_prev_execute_data: 48,
            fn_type: 0,
            fn_common_function_name: 8,
            op_array_filename: 152,
            op_lineno: 24,
            str_len: 16,
            str_val: 24,
            call_kind_mask: 0x3 << 16,
            call_top_code: 0x3 << 16,
            call_nested_code: 0x1 << 16,
        }
    }

    /// usleep() called by inner() called by outer() called from the main script.
    fn sample(l: &Layout) -> Fake {
        let mut m = Fake::default();
        let (f_usleep, f_inner, f_outer, f_main) = (0x5000, 0x5200, 0x5400, 0x5600);
        let (x_usleep, x_inner, x_outer, x_main) = (0x6000, 0x6100, 0x6200, 0x6300);
        let file = 0x7000;
        m.zstr(file, b"/srv/www/slowfn.php", l);
        let names = [
            (f_usleep, 0x7100, &b"usleep"[..], 1u8),
            (f_inner, 0x7200, b"inner", 2),
            (f_outer, 0x7300, b"outer", 2),
        ];
        for (f, n, name, ty) in names {
            m.put(f + l.fn_type, &[ty]);
            m.word(f + l.fn_common_function_name, n);
            m.zstr(n, name, l);
            m.word(f + l.op_array_filename, file);
        }
        m.put(f_main + l.fn_type, &[2]);
        m.word(f_main + l.fn_common_function_name, 0);
        m.word(f_main + l.op_array_filename, file);
        let frames = [
            (x_usleep, f_usleep, x_inner, 0u32),
            (x_inner, f_inner, x_outer, 2),
            (x_outer, f_outer, x_main, 3),
            (x_main, f_main, 0, 4),
        ];
        for (i, (x, f, prev, line)) in frames.into_iter().enumerate() {
            m.word(x + l.ex_func, f);
            m.word(x + l.ex_prev_execute_data, prev);
            let op = 0x8000 + i as u64 * 0x40;
            m.word(x + l.ex_opline, op);
            m.put(op + l.op_lineno, &line.to_ne_bytes());
            let info = if x == x_main { l.call_top_code } else { 0 };
            m.put(x + l.ex_this_type_info, &info.to_ne_bytes());
        }
        m.word(l.eg_address + l.eg_current_execute_data, x_usleep);
        m
    }

    /// A fake memory that counts the reads made.
    struct Counting(Fake, std::cell::Cell<usize>);

    impl Memory for Counting {
        fn read(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<()> {
            self.1.set(self.1.get() + 1);
            self.0.read(addr, buf)
        }
    }

    fn text(lines: &[Vec<u8>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    #[test]
    fn walks_like_php_fpm() {
        let l = test_layout();
        let m = sample(&l);
        let got = trace(&m, &l, 20).map(|v| text(&v)).unwrap_or_default();
        assert_eq!(
            got,
            vec![
                "[0x0000000000006000] usleep() /srv/www/slowfn.php:2",
                "[0x0000000000006100] inner() /srv/www/slowfn.php:3",
                "[0x0000000000006200] outer() /srv/www/slowfn.php:4",
            ]
        );
        let two = trace(&m, &l, 2).map(|v| v.len()).unwrap_or(0);
        assert_eq!(two, 2);
    }

    #[test]
    fn hostile_memory_ends_the_walk() {
        let l = test_layout();
        // A cycle: the frame is its own caller. Bounded by the depth.
        let mut m = sample(&l);
        m.word(0x6000 + l.ex_prev_execute_data, 0x6000);
        assert!(trace(&m, &l, 5).map(|v| v.len() <= 5).unwrap_or(true));
        // Whatever the configured depth, the walk of a cycle makes a bounded number of
        // reads, then fails.
        let counted = Counting(m, std::cell::Cell::new(0));
        assert!(trace(&counted, &l, 1_000_000).is_err());
        assert!(counted.1.get() <= MAX_READS, "{} reads", counted.1.get());
        // A misaligned or kernel-space pointer is refused, not followed.
        let mut m = sample(&l);
        m.word(0x6100 + l.ex_func, 0x5201);
        assert!(trace(&m, &l, 20).is_err());
        let mut m = sample(&l);
        m.word(0x6100 + l.ex_func, 0xffff_8000_0000_0000);
        assert!(trace(&m, &l, 20).is_err());
        // A huge length is bounded: the read fails (unmapped), it does not allocate 2^64.
        let mut m = sample(&l);
        m.word(0x7200 + l.str_len, u64::MAX);
        assert!(trace(&m, &l, 20).is_err());
        // Unreadable globals.
        assert!(trace(&Fake::default(), &l, 20).is_err());
    }

    #[test]
    fn shim_layout_is_plausible() {
        let l = layout();
        assert!(valid_ptr(l.eg_address));
        assert_eq!(l.str_val, 24);
        assert_eq!(l.ex_prev_execute_data, 48);
        assert_ne!(l.call_top_code, l.call_nested_code);
    }
}
