//! The memory allocator of the static (musl) builds: mimalloc instead of musl's own, whose
//! `mmap`/`munmap` per mid-sized buffer made every SFTP packet a pair of system calls
//! (measured: the daemon's CPU per GiB transferred fell threefold). glibc and Windows
//! builds keep the platform allocator. Defined here, it applies to every binary that links
//! `egs-sys`.

#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
