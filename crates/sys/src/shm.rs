//! Memory shared between the master and its workers: one header and a table of slots
//! in a `MAP_SHARED` mapping made before forking. The mapping lives on a memfd (where
//! the kernel has them), so that a re-executed master can map the same memory again
//! from the descriptor it inherited.
//!
//! What may live there is restricted by [`SharedPlain`]: all-zero bytes are a valid
//! value and every field is an atomic, so any process may write any bytes at any time
//! without making a reader's view undefined (the master still treats the values as
//! untrusted input).
use crate::errno::cvt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// Types that may live in shared memory.
///
/// # Safety
/// An implementor is `#[repr(C)]`, valid when all its bytes are zero, holds no pointer
/// or reference, and is mutated only through atomics (so a `&T` to bytes another
/// process writes concurrently is sound).
pub unsafe trait SharedPlain: Sync {}

// SAFETY: `Header` is #[repr(C)] and made of AtomicU64 fields only: zero is a valid
// value of each, there is no pointer, and every mutation goes through an atomic.
unsafe impl SharedPlain for rfpm_core::scoreboard::Header {}
// SAFETY: `Slot` is #[repr(C)] and made of atomics (AtomicI32/U32/U64/I64 and the
// AtomicU8 arrays of its text fields) only: as for `Header`.
unsafe impl SharedPlain for rfpm_core::scoreboard::Slot {}

/// A header `H` followed by `slots` values of `S`, in one shared mapping.
pub struct SharedTable<H: SharedPlain, S: SharedPlain> {
    base: NonNull<u8>,
    len: usize,
    slots: usize,
    /// The memfd behind the mapping, if the kernel has memfds.
    fd: Option<OwnedFd>,
    _types: PhantomData<(H, S)>,
}

// SAFETY: the table only hands out shared references to `SharedPlain` values, which
// are `Sync` and safe to use from any thread (or process); the mapping itself is owned
// by the table and unmapped once, in `Drop`.
unsafe impl<H: SharedPlain, S: SharedPlain> Send for SharedTable<H, S> {}
// SAFETY: as above.
unsafe impl<H: SharedPlain, S: SharedPlain> Sync for SharedTable<H, S> {}

impl<H: SharedPlain, S: SharedPlain> SharedTable<H, S> {
    fn slots_offset() -> usize {
        let a = std::mem::align_of::<S>();
        std::mem::size_of::<H>().div_ceil(a) * a
    }

    /// Bytes a table of `slots` slots needs.
    pub fn size_for(slots: usize) -> Option<usize> {
        std::mem::size_of::<S>()
            .checked_mul(slots)?
            .checked_add(Self::slots_offset())
    }

    /// A new zero-filled table of `slots` slots (at least one); `name` shows in
    /// `/proc/PID/fd` and `/proc/PID/maps` (`memfd:NAME`).
    pub fn create(name: &str, slots: usize) -> io::Result<Self> {
        let slots = slots.max(1);
        let len =
            Self::size_for(slots).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        let fd = match memfd(name, len) {
            Ok(fd) => Some(fd),
            // Kernels or sandboxes without memfd_create: an anonymous shared mapping,
            // which cannot be handed across exec.
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => None,
            Err(e) => return Err(e),
        };
        Self::map(fd, len, slots)
    }

    /// Maps a table this program's previous image created, from its memfd, after
    /// checking that the memory is exactly the size `slots` slots need.
    pub fn adopt(fd: OwnedFd, slots: usize) -> io::Result<Self> {
        let slots = slots.max(1);
        let len =
            Self::size_for(slots).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        let actual = std::fs::File::from(fd.try_clone()?).metadata()?.len();
        if u64::try_from(len).ok() != Some(actual) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        Self::map(Some(fd), len, slots)
    }

    fn map(fd: Option<OwnedFd>, len: usize, slots: usize) -> io::Result<Self> {
        let (flags, raw) = match &fd {
            Some(f) => (libc::MAP_SHARED, f.as_raw_fd()),
            None => (libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1),
        };
        // SAFETY: a new mapping at an address of the kernel's choosing, overlapping no
        // memory of ours; `len` is the exact size of the memfd (or of the anonymous
        // region), which the kernel zero-fills: a valid initial value of every
        // `SharedPlain` type.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                raw,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(SharedTable {
            base,
            len,
            slots,
            fd,
            _types: PhantomData,
        })
    }

    pub fn header(&self) -> &H {
        // SAFETY: the mapping is page-aligned (so aligned for H), at least
        // size_of::<H>() long, lives as long as `self`, and holds a valid H (all-zero
        // or written through atomics, see `SharedPlain`).
        unsafe { self.base.cast::<H>().as_ref() }
    }

    pub fn slot_count(&self) -> usize {
        self.slots
    }

    /// Slot `i`, if it exists.
    pub fn slot(&self, i: usize) -> Option<&S> {
        if i >= self.slots {
            return None;
        }
        let offset = Self::slots_offset() + i * std::mem::size_of::<S>();
        // SAFETY: i < slots, so [offset, offset + size_of::<S>()) lies inside the
        // mapping (`size_for`); `slots_offset` is a multiple of align_of::<S>() and the
        // base is page-aligned, so the pointer is aligned; the value is a valid S (see
        // `header`) and lives as long as `self`.
        unsafe { Some(self.base.add(offset).cast::<S>().as_ref()) }
    }

    /// The memfd behind the table, to hand across exec; `None` without memfds.
    pub fn memfd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(AsFd::as_fd)
    }
}

impl<H: SharedPlain, S: SharedPlain> Drop for SharedTable<H, S> {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly the mapping `map` made, unmapped once here;
        // no reference into it outlives `self` (they borrow it).
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

/// A close-on-exec memfd of `len` zero bytes.
fn memfd(name: &str, len: usize) -> io::Result<OwnedFd> {
    let cname = std::ffi::CString::new(name.replace('\0', "")).unwrap_or_default();
    // SAFETY: `cname` is NUL-terminated and alive during the call.
    let fd = cvt(unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: memfd_create succeeded: `fd` is fresh and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let file = std::fs::File::from(fd);
    file.set_len(u64::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?)?;
    Ok(OwnedFd::from(file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rfpm_core::scoreboard::{Header, Slot, WorkerState};
    use std::sync::atomic::Ordering;

    type Table = SharedTable<Header, Slot>;

    #[test]
    fn shared_across_fork() {
        let t = Table::create("rfpm-test", 3).expect("create");
        assert!(t.slot(3).is_none());
        let s = t.slot(2).expect("slot");
        // SAFETY: the test harness runs other threads, so the child touches nothing
        // but the shared atomics (no lock, no allocation), then _exits.
        match unsafe { libc::fork() } {
            0 => {
                s.set_state(WorkerState::Running, 1);
                t.header().accepted.fetch_add(5, Ordering::Relaxed);
                crate::process::exit_now(0);
            }
            pid if pid > 0 => {
                let _ = crate::process::wait_for(pid);
                assert_eq!(s.state(), WorkerState::Running);
                assert_eq!(t.header().accepted.load(Ordering::Relaxed), 5);
            }
            _ => panic!("fork failed"),
        }
    }

    #[test]
    fn a_memfd_maps_the_same_memory_again_and_sizes_are_checked() {
        let t = Table::create("rfpm-test", 2).expect("create");
        t.header().accepted.store(42, Ordering::Relaxed);
        let fd = t.memfd().expect("memfd").try_clone_to_owned().expect("dup");
        let again = Table::adopt(fd, 2).expect("adopt");
        assert_eq!(again.header().accepted.load(Ordering::Relaxed), 42);
        again.slot(1).expect("slot").pid.store(7, Ordering::Relaxed);
        assert_eq!(t.slot(1).expect("slot").pid.load(Ordering::Relaxed), 7);
        // The wrong slot count (a forged or stale descriptor) is refused.
        let fd = t.memfd().expect("memfd").try_clone_to_owned().expect("dup");
        assert!(Table::adopt(fd, 3).is_err());
    }
}
