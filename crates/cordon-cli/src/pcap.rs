//! Streaming reader for pcap and pcapng captures.
//!
//! Own implementation rather than a crate: `cordon run --pcap` needs only the
//! packet bytes of Ethernet (or raw IP) captures, both formats are small and
//! fully specified (pcap: tcpdump's `pcap-savefile(5)`; pcapng: RFC draft
//! `draft-ietf-opsawg-pcapng`), and the maintained crates either pull in
//! libpcap (C) or bring parsers for many block and option types we would not
//! use. This reader never panics on malformed input: every problem is a
//! [`PcapError`] naming the byte offset.
//!
//! Supported: classic pcap in both byte orders with microsecond or nanosecond
//! timestamps; pcapng sections in both byte orders with Enhanced, Simple and
//! (obsolete) Packet blocks, several interfaces and sections. Link types:
//! Ethernet (1) as is; raw IP (101, 228 IPv4, 229 IPv6) gets a synthetic
//! 14-byte Ethernet header (zero MAC addresses, EtherType from the IP
//! version) so XDP and tc programs see what they would on an Ethernet device.

use std::io::{self, Read};

/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// `LINKTYPE_RAW`: raw IPv4 or IPv6, version in the first nibble.
pub const LINKTYPE_RAW: u32 = 101;
/// `LINKTYPE_IPV4`.
pub const LINKTYPE_IPV4: u32 = 228;
/// `LINKTYPE_IPV6`.
pub const LINKTYPE_IPV6: u32 = 229;

/// Largest block or record accepted (a sanity bound: 64 MiB).
const MAX_RECORD: u32 = 64 << 20;

/// A problem reading a capture.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("read error at byte {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("not a pcap or pcapng capture (first four bytes {magic:#010x})")]
    BadMagic { magic: u32 },
    #[error("capture truncated at byte {offset}: {what} needs {needed} bytes, {available} left")]
    Truncated {
        offset: u64,
        what: &'static str,
        needed: u64,
        available: u64,
    },
    #[error("{what} at byte {offset} has invalid length {len}")]
    BadLength {
        offset: u64,
        what: &'static str,
        len: u64,
    },
    #[error("pcapng section header at byte {offset} has unknown byte-order magic {magic:#010x}")]
    BadByteOrder { offset: u64, magic: u32 },
    #[error("pcapng block at byte {offset} before any section header block")]
    NoSection { offset: u64 },
    #[error(
        "pcapng packet at byte {offset} names interface {interface}, but only {count} are defined"
    )]
    NoInterface {
        offset: u64,
        interface: u32,
        count: usize,
    },
    #[error(
        "packet at byte {offset} has link type {link_type}; only Ethernet (1) and raw IP (101, 228, 229) are supported"
    )]
    LinkType { offset: u64, link_type: u32 },
    #[error("raw IP packet at byte {offset} has IP version {version}")]
    RawIpVersion { offset: u64, version: u8 },
}

/// One packet as the program should see it (Ethernet frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Captured bytes (with a synthetic Ethernet header for raw IP captures).
    pub data: Vec<u8>,
    /// Length on the wire (the capture may hold less).
    pub orig_len: u32,
    /// Byte offset of the record in the file.
    pub offset: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }
}

enum Format {
    Pcap {
        endian: Endian,
        link_type: u32,
    },
    Pcapng {
        /// Byte order of the current section (None before the first SHB,
        /// which cannot happen once the header is read).
        endian: Endian,
        /// Link types of the current section's interfaces.
        interfaces: Vec<u32>,
    },
}

/// Reads packets one at a time from a pcap or pcapng stream.
pub struct PcapReader<R: Read> {
    input: R,
    offset: u64,
    format: Format,
}

/// Read exactly `n` bytes, or report how many were left.
fn read_exact_at<R: Read>(
    input: &mut R,
    offset: u64,
    buf: &mut [u8],
    what: &'static str,
) -> Result<(), PcapError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(PcapError::Truncated {
                    offset,
                    what,
                    needed: buf.len() as u64,
                    available: filled as u64,
                });
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(PcapError::Io {
                    offset: offset + filled as u64,
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Read up to `buf.len()` bytes; returns how many (0 = clean end of input).
fn read_some<R: Read>(input: &mut R, offset: u64, buf: &mut [u8]) -> Result<usize, PcapError> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(PcapError::Io {
                    offset: offset + filled as u64,
                    source,
                });
            }
        }
    }
    Ok(filled)
}

const PCAP_MAGIC_US: u32 = 0xa1b2_c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b2_3c4d;
const PCAPNG_SHB: u32 = 0x0a0d_0d0a;
const PCAPNG_BYTE_ORDER: u32 = 0x1a2b_3c4d;

impl<R: Read> PcapReader<R> {
    /// Read the file header and detect the format.
    pub fn new(mut input: R) -> Result<PcapReader<R>, PcapError> {
        let mut magic = [0u8; 4];
        let n = read_some(&mut input, 0, &mut magic)?;
        if n < 4 {
            return Err(PcapError::Truncated {
                offset: 0,
                what: "file header",
                needed: 4,
                available: n as u64,
            });
        }
        let le = u32::from_le_bytes(magic);
        let be = u32::from_be_bytes(magic);
        if le == PCAPNG_SHB {
            let mut reader = PcapReader {
                input,
                offset: 4,
                format: Format::Pcapng {
                    endian: Endian::Little,
                    interfaces: Vec::new(),
                },
            };
            reader.read_section_header(0)?;
            return Ok(reader);
        }
        let endian = if le == PCAP_MAGIC_US || le == PCAP_MAGIC_NS {
            Endian::Little
        } else if be == PCAP_MAGIC_US || be == PCAP_MAGIC_NS {
            Endian::Big
        } else {
            return Err(PcapError::BadMagic { magic: be });
        };
        let mut rest = [0u8; 20];
        read_exact_at(&mut input, 4, &mut rest, "pcap file header")?;
        // version (2+2), thiszone, sigfigs, snaplen, network (link type in the low 16 bits).
        let link_type = endian.u32(&rest[16..20]) & 0xffff;
        Ok(PcapReader {
            input,
            offset: 24,
            format: Format::Pcap { endian, link_type },
        })
    }

    /// Bytes consumed so far (for progress reporting).
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// The next packet, or `None` at the end of the capture.
    pub fn next_packet(&mut self) -> Result<Option<Packet>, PcapError> {
        match self.format {
            Format::Pcap { endian, link_type } => self.next_pcap(endian, link_type),
            Format::Pcapng { .. } => self.next_pcapng(),
        }
    }

    fn next_pcap(&mut self, endian: Endian, link_type: u32) -> Result<Option<Packet>, PcapError> {
        let start = self.offset;
        let mut hdr = [0u8; 16];
        let n = read_some(&mut self.input, start, &mut hdr)?;
        if n == 0 {
            return Ok(None);
        }
        if n < hdr.len() {
            return Err(PcapError::Truncated {
                offset: start,
                what: "pcap record header",
                needed: 16,
                available: n as u64,
            });
        }
        let incl_len = endian.u32(&hdr[8..12]);
        let orig_len = endian.u32(&hdr[12..16]);
        if incl_len > MAX_RECORD {
            return Err(PcapError::BadLength {
                offset: start,
                what: "pcap record",
                len: u64::from(incl_len),
            });
        }
        let mut data = vec![0u8; incl_len as usize];
        read_exact_at(&mut self.input, start + 16, &mut data, "pcap packet data")?;
        self.offset = start + 16 + u64::from(incl_len);
        let data = to_ethernet(data, link_type, start)?;
        Ok(Some(Packet {
            data,
            orig_len,
            offset: start,
        }))
    }

    /// Parse the rest of a section header block whose type was read at `start`.
    fn read_section_header(&mut self, start: u64) -> Result<(), PcapError> {
        let mut head = [0u8; 8];
        read_exact_at(
            &mut self.input,
            start + 4,
            &mut head,
            "pcapng section header",
        )?;
        let magic_le = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let endian = if magic_le == PCAPNG_BYTE_ORDER {
            Endian::Little
        } else if magic_le.swap_bytes() == PCAPNG_BYTE_ORDER {
            Endian::Big
        } else {
            return Err(PcapError::BadByteOrder {
                offset: start,
                magic: magic_le,
            });
        };
        let total = endian.u32(&head[0..4]);
        if total < 28 || !total.is_multiple_of(4) || total > MAX_RECORD {
            return Err(PcapError::BadLength {
                offset: start,
                what: "pcapng section header block",
                len: u64::from(total),
            });
        }
        // Skip version, section length, options and the trailing length.
        let mut rest = vec![0u8; total as usize - 12];
        read_exact_at(
            &mut self.input,
            start + 12,
            &mut rest,
            "pcapng section header",
        )?;
        self.offset = start + u64::from(total);
        self.format = Format::Pcapng {
            endian,
            interfaces: Vec::new(),
        };
        Ok(())
    }

    fn next_pcapng(&mut self) -> Result<Option<Packet>, PcapError> {
        loop {
            let start = self.offset;
            let mut ty = [0u8; 4];
            let n = read_some(&mut self.input, start, &mut ty)?;
            if n == 0 {
                return Ok(None);
            }
            if n < 4 {
                return Err(PcapError::Truncated {
                    offset: start,
                    what: "pcapng block header",
                    needed: 4,
                    available: n as u64,
                });
            }
            if u32::from_le_bytes(ty) == PCAPNG_SHB {
                self.read_section_header(start)?;
                continue;
            }
            let Format::Pcapng { endian, .. } = self.format else {
                return Err(PcapError::NoSection { offset: start });
            };
            let block_type = endian.u32(&ty);
            let mut len = [0u8; 4];
            read_exact_at(&mut self.input, start + 4, &mut len, "pcapng block length")?;
            let total = endian.u32(&len);
            if total < 12 || !total.is_multiple_of(4) || total > MAX_RECORD {
                return Err(PcapError::BadLength {
                    offset: start,
                    what: "pcapng block",
                    len: u64::from(total),
                });
            }
            let mut body = vec![0u8; total as usize - 8];
            read_exact_at(&mut self.input, start + 8, &mut body, "pcapng block")?;
            self.offset = start + u64::from(total);
            let body = &body[..body.len() - 4]; // trailing total length
            if let Some(p) = self.pcapng_block(start, endian, block_type, body)? {
                return Ok(Some(p));
            }
        }
    }

    /// Handle one block body; `Some` for packet blocks.
    fn pcapng_block(
        &mut self,
        start: u64,
        endian: Endian,
        block_type: u32,
        body: &[u8],
    ) -> Result<Option<Packet>, PcapError> {
        let Format::Pcapng { interfaces, .. } = &mut self.format else {
            return Err(PcapError::NoSection { offset: start });
        };
        let short = |what: &'static str, needed: usize| PcapError::Truncated {
            offset: start,
            what,
            needed: needed as u64,
            available: body.len() as u64,
        };
        let (interface, cap_len, orig_len, data_at) = match block_type {
            // Interface description block.
            1 => {
                if body.len() < 8 {
                    return Err(short("pcapng interface description block", 8));
                }
                interfaces.push(u32::from(endian.u16(&body[0..2])));
                return Ok(None);
            }
            // Enhanced packet block.
            6 => {
                if body.len() < 20 {
                    return Err(short("pcapng enhanced packet block", 20));
                }
                (
                    endian.u32(&body[0..4]),
                    endian.u32(&body[12..16]),
                    endian.u32(&body[16..20]),
                    20,
                )
            }
            // Obsolete packet block.
            2 => {
                if body.len() < 20 {
                    return Err(short("pcapng packet block", 20));
                }
                (
                    u32::from(endian.u16(&body[0..2])),
                    endian.u32(&body[12..16]),
                    endian.u32(&body[16..20]),
                    20,
                )
            }
            // Simple packet block: interface 0, captured length implied.
            3 => {
                if body.len() < 4 {
                    return Err(short("pcapng simple packet block", 4));
                }
                let orig = endian.u32(&body[0..4]);
                let room = (body.len() - 4) as u32;
                (0, orig.min(room), orig, 4)
            }
            // Everything else (name resolution, statistics, custom...) carries no packet.
            _ => return Ok(None),
        };
        let end = data_at + cap_len as usize;
        if end > body.len() {
            return Err(PcapError::BadLength {
                offset: start,
                what: "pcapng packet captured length",
                len: u64::from(cap_len),
            });
        }
        let Some(&link_type) = interfaces.get(interface as usize) else {
            return Err(PcapError::NoInterface {
                offset: start,
                interface,
                count: interfaces.len(),
            });
        };
        let data = to_ethernet(body[data_at..end].to_vec(), link_type, start)?;
        Ok(Some(Packet {
            data,
            orig_len,
            offset: start,
        }))
    }
}

/// Turn a captured frame of `link_type` into an Ethernet frame.
fn to_ethernet(data: Vec<u8>, link_type: u32, offset: u64) -> Result<Vec<u8>, PcapError> {
    let ethertype: u16 = match link_type {
        LINKTYPE_ETHERNET => return Ok(data),
        LINKTYPE_IPV4 => 0x0800,
        LINKTYPE_IPV6 => 0x86dd,
        LINKTYPE_RAW => match data.first().map(|b| b >> 4) {
            Some(4) => 0x0800,
            Some(6) => 0x86dd,
            Some(version) => return Err(PcapError::RawIpVersion { offset, version }),
            // An empty raw packet: keep it empty (the program sees a runt).
            None => return Ok(data),
        },
        other => {
            return Err(PcapError::LinkType {
                offset,
                link_type: other,
            });
        }
    };
    let mut frame = Vec::with_capacity(data.len() + 14);
    frame.extend_from_slice(&[0u8; 12]);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(&data);
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_file(big: bool, link: u32, packets: &[&[u8]]) -> Vec<u8> {
        let w32 = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let w16 = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend_from_slice(&w32(PCAP_MAGIC_US));
        f.extend_from_slice(&w16(2));
        f.extend_from_slice(&w16(4));
        f.extend_from_slice(&w32(0));
        f.extend_from_slice(&w32(0));
        f.extend_from_slice(&w32(65535));
        f.extend_from_slice(&w32(link));
        for (i, p) in packets.iter().enumerate() {
            f.extend_from_slice(&w32(i as u32));
            f.extend_from_slice(&w32(0));
            f.extend_from_slice(&w32(p.len() as u32));
            f.extend_from_slice(&w32(p.len() as u32 + 3));
            f.extend_from_slice(p);
        }
        f
    }

    fn block(ty: u32, body: &[u8]) -> Vec<u8> {
        let mut padded = body.to_vec();
        while !padded.len().is_multiple_of(4) {
            padded.push(0);
        }
        let total = (padded.len() + 12) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(&padded);
        b.extend_from_slice(&total.to_le_bytes());
        b
    }

    fn shb() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&PCAPNG_BYTE_ORDER.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        block(PCAPNG_SHB, &body)
    }

    fn idb(link: u16) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&link.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        block(1, &body)
    }

    fn epb(iface: u32, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&iface.to_le_bytes());
        body.extend_from_slice(&[0u8; 8]);
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        block(6, &body)
    }

    fn all(bytes: &[u8]) -> Result<Vec<Vec<u8>>, PcapError> {
        let mut r = PcapReader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(p) = r.next_packet()? {
            out.push(p.data);
        }
        Ok(out)
    }

    #[test]
    fn classic_both_byte_orders() {
        for big in [false, true] {
            let f = pcap_file(big, 1, &[b"abc", b"", b"0123456789abcdef"]);
            let got = all(&f).unwrap();
            assert_eq!(
                got,
                vec![b"abc".to_vec(), vec![], b"0123456789abcdef".to_vec()]
            );
        }
        let f = pcap_file(false, 1, &[b"xy"]);
        let mut r = PcapReader::new(&f[..]).unwrap();
        let p = r.next_packet().unwrap().unwrap();
        assert_eq!(p.orig_len, 5);
        assert_eq!(p.offset, 24);
        assert_eq!(r.position(), f.len() as u64);
    }

    #[test]
    fn raw_ip_gets_ethernet_header() {
        let f = pcap_file(false, LINKTYPE_RAW, &[&[0x45, 1, 2], &[0x60, 9]]);
        let got = all(&f).unwrap();
        assert_eq!(&got[0][12..], &[0x08, 0x00, 0x45, 1, 2]);
        assert_eq!(&got[1][12..], &[0x86, 0xdd, 0x60, 9]);
        let bad = pcap_file(false, LINKTYPE_RAW, &[&[0x55]]);
        assert!(matches!(
            all(&bad),
            Err(PcapError::RawIpVersion { version: 5, .. })
        ));
        let other = pcap_file(false, 113, &[b"x"]);
        assert!(matches!(
            all(&other),
            Err(PcapError::LinkType { link_type: 113, .. })
        ));
    }

    #[test]
    fn pcapng_blocks() {
        let mut f = shb();
        f.extend(idb(1));
        f.extend(epb(0, b"hello"));
        f.extend(block(4, b"name resolution"));
        f.extend(idb(101));
        f.extend(epb(1, &[0x45, 0]));
        let mut spb = 3u32.to_le_bytes().to_vec();
        spb.extend_from_slice(b"abc");
        f.extend(block(3, &spb));
        // A second section resets the interfaces.
        f.extend(shb());
        f.extend(idb(1));
        f.extend(epb(0, b"second"));
        let got = all(&f).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], b"hello");
        assert_eq!(&got[1][12..], &[0x08, 0x00, 0x45, 0]);
        assert_eq!(got[2], b"abc");
        assert_eq!(got[3], b"second");
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert!(matches!(all(b""), Err(PcapError::Truncated { .. })));
        assert!(matches!(all(b"GIF89a.."), Err(PcapError::BadMagic { .. })));
        let f = pcap_file(false, 1, &[b"abcdef"]);
        for cut in 1..f.len() {
            if cut == 24 {
                assert_eq!(all(&f[..cut]).unwrap().len(), 0);
                continue;
            }
            assert!(all(&f[..cut]).is_err(), "cut at {cut}");
        }
        let mut ng = shb();
        ng.extend(idb(1));
        ng.extend(epb(0, b"packet!"));
        for cut in 1..ng.len() {
            let r = all(&ng[..cut]);
            let clean_end = cut == shb().len() || cut == shb().len() + idb(1).len();
            assert_eq!(r.is_ok(), clean_end, "cut at {cut}: {r:?}");
        }
        // A packet for an interface that was never described.
        let mut ng = shb();
        ng.extend(epb(3, b"x"));
        assert!(matches!(
            all(&ng),
            Err(PcapError::NoInterface { interface: 3, .. })
        ));
        // A block length that is not a multiple of 4.
        let mut ng = shb();
        ng.extend_from_slice(&6u32.to_le_bytes());
        ng.extend_from_slice(&13u32.to_le_bytes());
        ng.extend_from_slice(&[0u8; 5]);
        assert!(matches!(all(&ng), Err(PcapError::BadLength { .. })));
        // Captured length beyond the block.
        let mut body = 0u32.to_le_bytes().to_vec();
        body.extend_from_slice(&[0u8; 8]);
        body.extend_from_slice(&100u32.to_le_bytes());
        body.extend_from_slice(&100u32.to_le_bytes());
        let mut ng = shb();
        ng.extend(idb(1));
        ng.extend(block(6, &body));
        assert!(matches!(all(&ng), Err(PcapError::BadLength { .. })));
    }
}
