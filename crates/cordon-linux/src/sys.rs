//! The raw `bpf(2)` system call: command numbers and the `union bpf_attr`
//! members this crate uses, laid out exactly as Linux 6.x expects them.
//!
//! Each command's struct is passed with its own size. The kernel accepts an
//! attribute shorter than its `union bpf_attr` (it zero-extends it) and
//! rejects a longer one only when the extra bytes are non-zero, so these
//! layouts work unchanged on kernels that know more fields than we do.

use std::os::fd::{FromRawFd, OwnedFd};

/// `enum bpf_cmd` values used here.
pub(crate) mod cmd {
    pub const MAP_CREATE: u32 = 0;
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    pub const MAP_UPDATE_ELEM: u32 = 2;
    pub const MAP_DELETE_ELEM: u32 = 3;
    pub const MAP_GET_NEXT_KEY: u32 = 4;
    pub const PROG_LOAD: u32 = 5;
    pub const OBJ_GET: u32 = 7;
    pub const PROG_TEST_RUN: u32 = 10;
    pub const OBJ_GET_INFO_BY_FD: u32 = 15;
    pub const BTF_LOAD: u32 = 18;
    pub const MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;
    pub const MAP_FREEZE: u32 = 22;

    /// The name Linux's UAPI gives a command (for error messages).
    pub fn name(cmd: u32) -> &'static str {
        match cmd {
            MAP_CREATE => "BPF_MAP_CREATE",
            MAP_LOOKUP_ELEM => "BPF_MAP_LOOKUP_ELEM",
            MAP_UPDATE_ELEM => "BPF_MAP_UPDATE_ELEM",
            MAP_DELETE_ELEM => "BPF_MAP_DELETE_ELEM",
            MAP_GET_NEXT_KEY => "BPF_MAP_GET_NEXT_KEY",
            PROG_LOAD => "BPF_PROG_LOAD",
            OBJ_GET => "BPF_OBJ_GET",
            PROG_TEST_RUN => "BPF_PROG_TEST_RUN",
            OBJ_GET_INFO_BY_FD => "BPF_OBJ_GET_INFO_BY_FD",
            BTF_LOAD => "BPF_BTF_LOAD",
            MAP_LOOKUP_AND_DELETE_ELEM => "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
            MAP_FREEZE => "BPF_MAP_FREEZE",
            _ => "BPF_?",
        }
    }
}

/// `BPF_OBJ_NAME_LEN`: object names are at most 15 bytes plus a NUL.
pub const OBJ_NAME_LEN: usize = 16;

/// The `BPF_PROG_LOAD` member of `union bpf_attr` (152 bytes, through
/// `fd_array_cnt`, Linux 6.14+; older kernels see only zero trailing bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ProgLoadAttr {
    pub prog_type: u32,
    pub insn_cnt: u32,
    pub insns: u64,
    pub license: u64,
    pub log_level: u32,
    pub log_size: u32,
    pub log_buf: u64,
    pub kern_version: u32,
    pub prog_flags: u32,
    pub prog_name: [u8; OBJ_NAME_LEN],
    pub prog_ifindex: u32,
    pub expected_attach_type: u32,
    pub prog_btf_fd: u32,
    pub func_info_rec_size: u32,
    pub func_info: u64,
    pub func_info_cnt: u32,
    pub line_info_rec_size: u32,
    pub line_info: u64,
    pub line_info_cnt: u32,
    pub attach_btf_id: u32,
    /// Union of `attach_prog_fd` and `attach_btf_obj_fd`.
    pub attach_prog_fd: u32,
    pub core_relo_cnt: u32,
    pub fd_array: u64,
    pub core_relos: u64,
    pub core_relo_rec_size: u32,
    pub log_true_size: u32,
    pub prog_token_fd: i32,
    /// Left 0: with a count, Linux binds every map of `fd_array` to the
    /// program and insists that every entry is a map or BTF fd.
    pub fd_array_cnt: u32,
}

/// The `BPF_MAP_CREATE` member (80 bytes, through `map_token_fd`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MapCreateAttr {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub inner_map_fd: u32,
    pub numa_node: u32,
    pub map_name: [u8; OBJ_NAME_LEN],
    pub map_ifindex: u32,
    pub btf_fd: u32,
    pub btf_key_type_id: u32,
    pub btf_value_type_id: u32,
    pub btf_vmlinux_value_type_id: u32,
    pub map_extra: u64,
    pub value_type_btf_obj_fd: i32,
    pub map_token_fd: i32,
}

/// The `BPF_MAP_*_ELEM` / `BPF_MAP_GET_NEXT_KEY` / `BPF_MAP_FREEZE` member
/// (32 bytes). `value` doubles as `next_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MapElemAttr {
    pub map_fd: u32,
    pub _pad: u32,
    pub key: u64,
    pub value: u64,
    pub flags: u64,
}

/// The `BPF_PROG_TEST_RUN` member (80 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TestRunAttr {
    pub prog_fd: u32,
    pub retval: u32,
    pub data_size_in: u32,
    pub data_size_out: u32,
    pub data_in: u64,
    pub data_out: u64,
    pub repeat: u32,
    pub duration: u32,
    pub ctx_size_in: u32,
    pub ctx_size_out: u32,
    pub ctx_in: u64,
    pub ctx_out: u64,
    pub flags: u32,
    pub cpu: u32,
    pub batch_size: u32,
    pub _pad: u32,
}

/// The `BPF_BTF_LOAD` member (40 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BtfLoadAttr {
    pub btf: u64,
    pub btf_log_buf: u64,
    pub btf_size: u32,
    pub btf_log_size: u32,
    pub btf_log_level: u32,
    pub btf_log_true_size: u32,
    pub btf_flags: u32,
    pub btf_token_fd: i32,
}

/// The `BPF_OBJ_GET` member (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ObjGetAttr {
    pub pathname: u64,
    pub bpf_fd: u32,
    pub file_flags: u32,
    pub path_fd: i32,
    pub _pad: u32,
}

/// The `BPF_OBJ_GET_INFO_BY_FD` member (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct InfoByFdAttr {
    pub bpf_fd: u32,
    pub info_len: u32,
    pub info: u64,
}

/// The leading fields of `struct bpf_map_info` (the kernel fills at most
/// `info_len` bytes, so a prefix is enough).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MapInfoPrefix {
    pub map_type: u32,
    pub id: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub name: [u8; OBJ_NAME_LEN],
}

/// The leading fields of `struct bpf_prog_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ProgInfoPrefix {
    pub prog_type: u32,
    pub id: u32,
}

const _: () = {
    assert!(size_of::<ProgLoadAttr>() == 152);
    assert!(std::mem::offset_of!(ProgLoadAttr, prog_name) == 48);
    assert!(std::mem::offset_of!(ProgLoadAttr, func_info) == 80);
    assert!(std::mem::offset_of!(ProgLoadAttr, fd_array) == 120);
    assert!(std::mem::offset_of!(ProgLoadAttr, log_true_size) == 140);
    assert!(size_of::<MapCreateAttr>() == 80);
    assert!(std::mem::offset_of!(MapCreateAttr, map_name) == 28);
    assert!(std::mem::offset_of!(MapCreateAttr, btf_fd) == 48);
    assert!(std::mem::offset_of!(MapCreateAttr, map_extra) == 64);
    assert!(size_of::<MapElemAttr>() == 32);
    assert!(size_of::<TestRunAttr>() == 80);
    assert!(std::mem::offset_of!(TestRunAttr, ctx_in) == 48);
    assert!(std::mem::offset_of!(TestRunAttr, flags) == 64);
    assert!(size_of::<BtfLoadAttr>() == 40);
    assert!(size_of::<ObjGetAttr>() == 24);
    assert!(size_of::<InfoByFdAttr>() == 16);
    assert!(size_of::<MapInfoPrefix>() == 40);
};

/// Marker for the attribute structs above: plain `repr(C)` data with no
/// padding the kernel could misread (every gap is an explicit field).
pub(crate) trait Attr: Copy {}
impl Attr for ProgLoadAttr {}
impl Attr for MapCreateAttr {}
impl Attr for MapElemAttr {}
impl Attr for TestRunAttr {}
impl Attr for BtfLoadAttr {}
impl Attr for ObjGetAttr {}
impl Attr for InfoByFdAttr {}

/// `BPF_OBJ_GET`: open a pinned object.
pub(crate) fn obj_get(path: &std::path::Path) -> Result<OwnedFd, i32> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)?;
    let mut attr = ObjGetAttr {
        pathname: c.as_ptr() as usize as u64,
        ..Default::default()
    };
    bpf_fd(cmd::OBJ_GET, &mut attr)
}

/// `BPF_OBJ_GET_INFO_BY_FD` into a `repr(C)` info prefix.
pub(crate) fn obj_info<T: Copy + Default>(fd: std::os::fd::BorrowedFd<'_>) -> Result<T, i32> {
    use std::os::fd::AsRawFd;
    let mut info = T::default();
    let mut attr = InfoByFdAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: size_of::<T>() as u32,
        info: &mut info as *mut T as usize as u64,
    };
    bpf(cmd::OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok(info)
}

/// Call `bpf(cmd, attr, sizeof(attr))`. Returns the non-negative result or
/// the errno.
pub(crate) fn bpf<A: Attr>(cmd: u32, attr: &mut A) -> Result<i64, i32> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `attr` is a valid, exclusively borrowed `repr(C)` struct of
        // the given size; every pointer field inside it was set by our callers
        // to a live buffer of the advertised length (or 0). The kernel reads
        // and writes only within those bounds.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd as libc::c_long,
                attr as *mut A as *mut libc::c_void,
                size_of::<A>() as libc::c_long,
            )
        };
        if ret < 0 {
            Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL))
        } else {
            Ok(ret as i64)
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (cmd, attr);
        Err(38) // ENOSYS
    }
}

/// Like [`bpf`] for commands that return a new file descriptor.
pub(crate) fn bpf_fd<A: Attr>(cmd: u32, attr: &mut A) -> Result<OwnedFd, i32> {
    let fd = bpf(cmd, attr)?;
    let fd = i32::try_from(fd).map_err(|_| libc::EBADF)?;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A pointer as the `__aligned_u64` the kernel wants (0 for an empty slice).
pub(crate) fn ptr<T>(s: &[T]) -> u64 {
    if s.is_empty() {
        0
    } else {
        s.as_ptr() as usize as u64
    }
}

/// A mutable pointer as `__aligned_u64` (0 for an empty slice).
pub(crate) fn ptr_mut<T>(s: &mut [T]) -> u64 {
    if s.is_empty() {
        0
    } else {
        s.as_mut_ptr() as usize as u64
    }
}

/// Copy `name` into a `BPF_OBJ_NAME_LEN` buffer. Linux accepts only
/// `[A-Za-z0-9_.]`, at most 15 bytes; other characters become `_` and the
/// name is truncated, as libbpf does.
pub(crate) fn obj_name(name: &str) -> [u8; OBJ_NAME_LEN] {
    let mut out = [0u8; OBJ_NAME_LEN];
    for (slot, b) in out.iter_mut().take(OBJ_NAME_LEN - 1).zip(name.bytes()) {
        *slot = if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' {
            b
        } else {
            b'_'
        };
    }
    out
}

/// The symbolic name of an errno value Linux's BPF code returns.
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        4 => "EINTR",
        7 => "E2BIG",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        19 => "ENODEV",
        22 => "EINVAL",
        24 => "EMFILE",
        28 => "ENOSPC",
        34 => "ERANGE",
        38 => "ENOSYS",
        40 => "ELOOP",
        95 => "EOPNOTSUPP",
        524 => "ENOTSUPP",
        _ => "E?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised_and_truncated() {
        assert_eq!(&obj_name("abc")[..4], b"abc\0");
        assert_eq!(&obj_name("a-b.c")[..6], b"a_b.c\0");
        let long = obj_name("0123456789abcdefghij");
        assert_eq!(&long[..15], b"0123456789abcde");
        assert_eq!(long[15], 0);
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(13), "EACCES");
        assert_eq!(errno_name(9999), "E?");
    }
}
