//! BTF objects loaded with `BPF_BTF_LOAD`.

use crate::error::{KernelError, available};
use crate::sys::{self, BtfLoadAttr, cmd};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// A BTF object in the kernel; closed on drop.
#[derive(Debug)]
pub struct Btf {
    fd: OwnedFd,
}

impl AsFd for Btf {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Btf {
    /// Load raw BTF (header, types, strings: the `.BTF` section contents).
    /// A rejection is [`KernelError::Rejected`] with the kernel's BTF log.
    pub fn load(data: &[u8]) -> Result<Btf, KernelError> {
        available()?;
        let size = u32::try_from(data.len()).map_err(|_| {
            KernelError::InvalidArgument(format!("BTF of {} bytes is too large", data.len()))
        })?;
        let mut log_size: usize = 64 * 1024;
        loop {
            let mut log = vec![0u8; log_size];
            let mut attr = BtfLoadAttr {
                btf: sys::ptr(data),
                btf_size: size,
                btf_log_buf: sys::ptr_mut(&mut log),
                btf_log_size: log_size as u32,
                btf_log_level: 1,
                ..Default::default()
            };
            match sys::bpf_fd(cmd::BTF_LOAD, &mut attr) {
                Ok(fd) => return Ok(Btf { fd }),
                Err(libc::ENOSPC) if (attr.btf_log_true_size as usize) > log_size => {
                    log_size = attr.btf_log_true_size as usize;
                }
                Err(errno) if errno == libc::EPERM || errno == libc::ENOSYS => {
                    return Err(KernelError::syscall(cmd::BTF_LOAD, errno, ""));
                }
                Err(errno) => {
                    return Err(KernelError::Rejected {
                        what: "BTF".into(),
                        errno,
                        log: crate::prog::log_text(&log),
                    });
                }
            }
        }
    }
}
