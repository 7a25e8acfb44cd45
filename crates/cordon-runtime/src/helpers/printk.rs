//! `bpf_trace_printk` with the kernel's format rules (`bpf_bprintf_prepare`):
//! at most three arguments; `%d %i %u %x %X` with optional `l`/`ll`, `%c`,
//! `%s`, `%p` variants (`%p`, `%px`, `%pK` print the address in hex), `%%`,
//! flags `0 + - space` and a width. Anything else is `-EINVAL`, as in Linux.
//! Lines are collected per run and returned to the host.

use cordon_exec::{Abort, HelperResult, RunContext};

use super::{check_mem, neg};
use crate::maps::errno::EINVAL;
use crate::state::with_inv;

/// Output buffer size of `bpf_trace_printk` (`MAX_TRACE_PRINTK_SIZE`).
const MAX_OUT: usize = 1024;

pub(super) fn trace_printk(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (fmt, size) = (a[0], a[1] as u32 as u64);
    if size == 0 {
        return Ok(neg(EINVAL));
    }
    check_mem(ctx, fmt, size, false)?;
    // SAFETY: verified or checked above.
    let fmt = unsafe { std::slice::from_raw_parts(fmt as *const u8, size as usize) };
    let checked = ctx.is_checked();
    let read_str = |addr: u64| -> Result<Vec<u8>, Abort> {
        let mut out = Vec::new();
        for i in 0..MAX_OUT as u64 {
            let p = addr.wrapping_add(i);
            if addr == 0 || (checked && !ctx.may_access(p, 1, false)) {
                if i == 0 {
                    return Ok(b"(efault)".to_vec());
                }
                break;
            }
            // SAFETY: verified programs pass valid strings (Linux reads them
            // with a fault-tolerant copy; Cordon trusts the verifier here);
            // checked mode validated this byte.
            let b = unsafe { *(p as *const u8) };
            if b == 0 {
                break;
            }
            out.push(b);
        }
        Ok(out)
    };
    match format_trace_printk(fmt, [a[2], a[3], a[4]], read_str)? {
        Some(text) => {
            let n = text.len().min(MAX_OUT - 1);
            with_inv(|inv| {
                inv.trace.push(text);
                Ok(())
            })?;
            Ok(n as u64)
        }
        None => Ok(neg(EINVAL)),
    }
}

/// Formats like `bpf_trace_printk`. `Ok(None)` is Linux's `-EINVAL` (bad
/// format); `read_str` reads a `%s` argument.
pub fn format_trace_printk(
    fmt: &[u8],
    args: [u64; 3],
    mut read_str: impl FnMut(u64) -> Result<Vec<u8>, Abort>,
) -> Result<Option<String>, Abort> {
    let Some(end) = fmt.iter().position(|&b| b == 0) else {
        return Ok(None);
    };
    let fmt = &fmt[..end];
    let mut out: Vec<u8> = Vec::new();
    let mut next_arg = 0usize;
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if c != b'%' {
            if !(c.is_ascii_graphic() || c == b' ' || c.is_ascii_whitespace()) {
                return Ok(None);
            }
            out.push(c);
            i += 1;
            continue;
        }
        if fmt.get(i + 1) == Some(&b'%') {
            out.push(b'%');
            i += 2;
            continue;
        }
        if next_arg == 3 {
            return Ok(None);
        }
        i += 1;
        let (mut left, mut zero, mut plus, mut space) = (false, false, false, false);
        while let Some(&f) = fmt.get(i) {
            match f {
                b'-' => left = true,
                b'0' => zero = true,
                b'+' => plus = true,
                b' ' => space = true,
                _ => break,
            }
            i += 1;
        }
        let mut width = 0usize;
        while let Some(&d) = fmt.get(i) {
            if !d.is_ascii_digit() {
                break;
            }
            width = (width * 10 + (d - b'0') as usize).min(MAX_OUT);
            i += 1;
        }
        let arg = args[next_arg];
        next_arg += 1;
        let Some(&conv) = fmt.get(i) else {
            return Ok(None);
        };
        let body: Vec<u8>;
        let mut numeric = false;
        match conv {
            b'c' => {
                body = vec![arg as u8];
                i += 1;
            }
            b's' => {
                body = read_str(arg)?;
                i += 1;
            }
            b'p' => {
                i += 1;
                // %p, %px, %pK: address in hex. Other %p extensions are refused
                // (Linux supports a few more: %pB, %pi4, %pI6, ...).
                match fmt.get(i) {
                    Some(b'x') | Some(b'K') => i += 1,
                    Some(c) if c.is_ascii_alphanumeric() => return Ok(None),
                    _ => {}
                }
                body = format!("{arg:x}").into_bytes();
                zero = true;
                if width == 0 {
                    width = 16;
                }
            }
            _ => {
                let mut long = 0;
                while fmt.get(i) == Some(&b'l') && long < 2 {
                    long += 1;
                    i += 1;
                }
                let v = if long == 0 { arg as u32 as u64 } else { arg };
                let signed = |v: u64| {
                    if long == 0 {
                        v as u32 as i32 as i64
                    } else {
                        v as i64
                    }
                };
                numeric = true;
                body = match fmt.get(i) {
                    Some(b'd') | Some(b'i') => {
                        let n = signed(v);
                        let mut s = String::new();
                        if n >= 0 {
                            if plus {
                                s.push('+');
                            } else if space {
                                s.push(' ');
                            }
                        }
                        s.push_str(&n.to_string());
                        s.into_bytes()
                    }
                    Some(b'u') => v.to_string().into_bytes(),
                    Some(b'x') => format!("{v:x}").into_bytes(),
                    Some(b'X') => format!("{v:X}").into_bytes(),
                    _ => return Ok(None),
                };
                i += 1;
            }
        }
        pad(
            &mut out,
            &body,
            width,
            left,
            zero && (numeric || conv == b'p'),
        );
    }
    out.truncate(MAX_OUT - 1);
    Ok(Some(String::from_utf8_lossy(&out).into_owned()))
}

fn pad(out: &mut Vec<u8>, body: &[u8], width: usize, left: bool, zero: bool) {
    let fill = width.saturating_sub(body.len());
    if left {
        out.extend_from_slice(body);
        out.extend(std::iter::repeat_n(b' ', fill));
    } else if zero {
        // Zero padding goes after a sign.
        let (sign, digits) = match body.first() {
            Some(b'-') | Some(b'+') | Some(b' ') => body.split_at(1),
            _ => body.split_at(0),
        };
        out.extend_from_slice(sign);
        out.extend(std::iter::repeat_n(b'0', fill));
        out.extend_from_slice(digits);
    } else {
        out.extend(std::iter::repeat_n(b' ', fill));
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: [u64; 3]) -> Option<String> {
        let mut v = fmt.as_bytes().to_vec();
        v.push(0);
        format_trace_printk(&v, args, |_| Ok(b"str".to_vec())).unwrap()
    }

    #[test]
    fn formats_like_the_kernel() {
        assert_eq!(f("n=%d\n", [(-5i64) as u64, 0, 0]).unwrap(), "n=-5\n");
        assert_eq!(f("%u", [u64::MAX, 0, 0]).unwrap(), "4294967295");
        assert_eq!(f("%llu", [u64::MAX, 0, 0]).unwrap(), "18446744073709551615");
        assert_eq!(f("%lld", [u64::MAX, 0, 0]).unwrap(), "-1");
        assert_eq!(f("%x %X", [255, 255, 0]).unwrap(), "ff FF");
        assert_eq!(
            f("%08x|%-4d|%4d", [0xab, 7, 7]).unwrap(),
            "000000ab|7   |   7"
        );
        assert_eq!(f("%s %c%%", [1, b'z' as u64, 0]).unwrap(), "str z%");
        assert_eq!(f("%px", [0x1234, 0, 0]).unwrap(), "0000000000001234");
        assert_eq!(f("%d %d %d %d", [1, 2, 3]), None, "four args");
        assert_eq!(f("%q", [0, 0, 0]), None);
        assert_eq!(
            format_trace_printk(b"no nul", [0; 3], |_| Ok(vec![])).unwrap(),
            None
        );
    }
}
