//! A pcapng writer (the format Wireshark and tshark open): one section, one Ethernet
//! interface, an Enhanced Packet Block per packet. Little-endian, microsecond timestamps.

use std::io::{self, Write};

/// Link type of the interface description: Ethernet.
const LINKTYPE_ETHERNET: u16 = 1;

#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    /// Bytes written so far (headers included).
    pub written: u64,
}

fn pad4(n: usize) -> usize {
    (4 - n % 4) % 4
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the section header and the interface's description (`ifname` as its name).
    pub fn new(out: W, ifname: &str, snaplen: u32) -> io::Result<Self> {
        let mut w = Self { out, written: 0 };
        // Section Header Block
        let mut shb = Vec::with_capacity(28);
        shb.extend_from_slice(&0x0A0D_0D0Au32.to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        shb.extend_from_slice(&28u32.to_le_bytes());
        w.put(&shb)?;
        // Interface Description Block with if_name (option 2)
        let name = ifname.as_bytes();
        let opts_len = 4 + name.len() + pad4(name.len()) + 4;
        let total = (20 + opts_len) as u32;
        let mut idb = Vec::with_capacity(total as usize);
        idb.extend_from_slice(&1u32.to_le_bytes());
        idb.extend_from_slice(&total.to_le_bytes());
        idb.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&snaplen.to_le_bytes());
        idb.extend_from_slice(&2u16.to_le_bytes());
        idb.extend_from_slice(&(name.len() as u16).to_le_bytes());
        idb.extend_from_slice(name);
        idb.extend(std::iter::repeat_n(0u8, pad4(name.len())));
        idb.extend_from_slice(&[0, 0, 0, 0]);
        idb.extend_from_slice(&total.to_le_bytes());
        w.put(&idb)?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    /// Size of the block `packet` writes for `captured` bytes.
    pub fn block_len(captured: usize) -> u64 {
        (32 + captured + pad4(captured)) as u64
    }

    /// One Enhanced Packet Block: `data` as captured, `orig_len` as it was on the wire.
    pub fn packet(&mut self, ts_micros: u64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let total = Self::block_len(data.len()) as u32;
        let mut b = Vec::with_capacity(total as usize);
        b.extend_from_slice(&6u32.to_le_bytes());
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&((ts_micros >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts_micros as u32).to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&orig_len.to_le_bytes());
        b.extend_from_slice(data);
        b.extend(std::iter::repeat_n(0u8, pad4(data.len())));
        b.extend_from_slice(&total.to_le_bytes());
        self.put(&b)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_whole_and_aligned() {
        let mut w = PcapngWriter::new(Vec::new(), "veth0", 65535).unwrap();
        w.packet(1_700_000_000_000_000, &[1, 2, 3, 4, 5], 60).unwrap();
        let b = w.out.clone();
        assert_eq!(b.len() as u64, w.written);
        // every block: its length at both ends, a multiple of 4
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < b.len() {
            let kind = u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
            let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(
                u32::from_le_bytes(b[at + len - 4..at + len].try_into().unwrap()) as usize,
                len
            );
            kinds.push(kind);
            at += len;
        }
        assert_eq!(kinds, vec![0x0A0D_0D0A, 1, 6]);
        assert_eq!(PcapngWriter::<Vec<u8>>::block_len(5), 40);
    }

    #[test]
    fn what_is_written_reads_back_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.pcapng");
        let mut w = PcapngWriter::new(std::fs::File::create(&p).unwrap(), "veth0", 65535).unwrap();
        w.packet(1, &[1, 2, 3], 3).unwrap();
        w.packet(2, &[4, 5, 6, 7, 8], 5).unwrap();
        w.flush().unwrap();
        drop(w);
        let mut got = Vec::new();
        let (n, other) = read(&p, |i, f| got.push((i, f.to_vec()))).unwrap();
        assert_eq!((n, other), (2, 0));
        assert_eq!(got, vec![(1, vec![1, 2, 3]), (2, vec![4, 5, 6, 7, 8])]);
        // cut in the middle of a block
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 6]).unwrap();
        assert!(read(&p, |_, _| {}).is_err());
        std::fs::write(&p, b"hello world").unwrap();
        assert!(matches!(read(&p, |_, _| {}), Err(ReadError::NotACapture(_))));
    }

    #[test]
    fn a_masked_copy_keeps_every_block_and_hides_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.pcapng"), dir.path().join("b.pcapng"));
        let mut w = PcapngWriter::new(std::fs::File::create(&a).unwrap(), "veth0", 65535).unwrap();
        w.packet(1, b"user=admin&password=hunter22", 28).unwrap();
        w.flush().unwrap();
        drop(w);
        let (n, m) = copy_masked(&a, &b, |p| {
            let s = b"hunter22";
            match p.windows(s.len()).position(|x| x == s) {
                Some(i) => {
                    p[i..i + s.len()].fill(b'*');
                    1
                }
                None => 0,
            }
        })
        .unwrap();
        assert_eq!((n, m), (1, 1));
        let mut got = Vec::new();
        read(&b, |_, f| got.push(f.to_vec())).unwrap();
        assert_eq!(got, vec![b"user=admin&password=********".to_vec()]);
        assert_eq!(
            std::fs::metadata(&a).unwrap().len(),
            std::fs::metadata(&b).unwrap().len()
        );
    }
}

/// Why a capture file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not a pcapng or pcap file (starts with {0:02x?})")]
    NotACapture([u8; 4]),
    #[error("big-endian captures are not supported")]
    BigEndian,
    #[error("a block at byte {0} is cut or malformed")]
    Malformed(u64),
}

/// Reads every packet of a pcapng (or classic pcap, little-endian) file and hands each
/// frame with its 1-based number to `each`. Only Ethernet interfaces are handed on; the
/// count of frames from other link types is returned with the packet count.
pub fn read(path: &std::path::Path, each: impl FnMut(u64, &[u8])) -> Result<(u64, u64), ReadError> {
    read_prefix(path, u64::MAX, each)
}

/// [`read`] of the file's first `len` bytes (a capture still being written, up to the
/// length it had when it was last flushed).
pub fn read_prefix(
    path: &std::path::Path,
    len: u64,
    mut each: impl FnMut(u64, &[u8]),
) -> Result<(u64, u64), ReadError> {
    use std::io::Read;
    let mut r = io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?.take(len));
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)?;
    let mut number = 0u64;
    let mut other_links = 0u64;
    let mut buf = Vec::new();
    if magic == [0xd4, 0xc3, 0xb2, 0xa1] || magic == [0x4d, 0x3c, 0xb2, 0xa1] {
        // classic pcap: 24-byte header, then 16-byte record headers
        let mut head = [0u8; 20];
        r.read_exact(&mut head)?;
        let linktype = u32::from_le_bytes([head[16], head[17], head[18], head[19]]);
        let mut rec = [0u8; 16];
        loop {
            match r.read_exact(&mut rec) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e.into()),
            }
            let caplen = u32::from_le_bytes([rec[8], rec[9], rec[10], rec[11]]) as usize;
            if caplen > 1 << 24 {
                return Err(ReadError::Malformed(number));
            }
            buf.resize(caplen, 0);
            r.read_exact(&mut buf)?;
            number += 1;
            if linktype == LINKTYPE_ETHERNET as u32 {
                each(number, &buf);
            } else {
                other_links += 1;
            }
        }
        return Ok((number, other_links));
    }
    if magic == [0xa1, 0xb2, 0xc3, 0xd4] || magic == [0xa1, 0xb2, 0x3c, 0x4d] {
        return Err(ReadError::BigEndian);
    }
    if magic != [0x0a, 0x0d, 0x0d, 0x0a] {
        return Err(ReadError::NotACapture(magic));
    }
    let mut links: Vec<u16> = Vec::new();
    let mut offset = 0u64;
    let mut kind = u32::from_le_bytes(magic);
    loop {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if !(12..=1 << 26).contains(&len) || !len.is_multiple_of(4) {
            return Err(ReadError::Malformed(offset));
        }
        buf.resize(len - 8, 0);
        r.read_exact(&mut buf)?;
        let body = &buf[..len - 12];
        match kind {
            0x0A0D_0D0A => {
                if body.get(..4) == Some(&[0x1a, 0x2b, 0x3c, 0x4d]) {
                    return Err(ReadError::BigEndian);
                }
                links.clear();
            }
            1 => links.push(u16::from_le_bytes([
                *body.first().ok_or(ReadError::Malformed(offset))?,
                *body.get(1).ok_or(ReadError::Malformed(offset))?,
            ])),
            6 => {
                let h = body.get(..20).ok_or(ReadError::Malformed(offset))?;
                let iface = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
                let caplen = u32::from_le_bytes([h[12], h[13], h[14], h[15]]) as usize;
                let data = body.get(20..20 + caplen).ok_or(ReadError::Malformed(offset))?;
                number += 1;
                if links.get(iface) == Some(&LINKTYPE_ETHERNET) {
                    each(number, data);
                } else {
                    other_links += 1;
                }
            }
            3 => {
                // Simple Packet Block: interface 0, the captured length is what fits
                let data = body.get(4..).ok_or(ReadError::Malformed(offset))?;
                let orig = u32::from_le_bytes([body[0], body[1], body[2], body[3]]) as usize;
                number += 1;
                if links.first() == Some(&LINKTYPE_ETHERNET) {
                    each(number, &data[..orig.min(data.len())]);
                } else {
                    other_links += 1;
                }
            }
            _ => {}
        }
        offset += len as u64;
        let mut next = [0u8; 4];
        match r.read_exact(&mut next) {
            Ok(()) => kind = u32::from_le_bytes(next),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok((number, other_links))
}

/// Copies a pcapng file block by block, letting `mask` overwrite packet bytes in place
/// (same length, so every block and header stays valid). Returns (packets, masked spans).
pub fn copy_masked(
    src: &std::path::Path,
    dst: &std::path::Path,
    mut mask: impl FnMut(&mut [u8]) -> usize,
) -> Result<(u64, usize), ReadError> {
    use std::io::Read;
    let mut r = io::BufReader::with_capacity(1 << 20, std::fs::File::open(src)?);
    let mut w = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dst)?);
    let (mut packets, mut masked, mut offset) = (0u64, 0usize, 0u64);
    let mut head = [0u8; 8];
    let mut buf = Vec::new();
    loop {
        match r.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
        let kind = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if !(12..=1 << 26).contains(&len) || !len.is_multiple_of(4) {
            return Err(ReadError::Malformed(offset));
        }
        buf.resize(len - 8, 0);
        r.read_exact(&mut buf)?;
        if kind == 6 && buf.len() >= 24 {
            let caplen = u32::from_le_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
            let end = (20 + caplen).min(buf.len() - 4);
            masked += mask(&mut buf[20..end]);
            packets += 1;
        }
        w.write_all(&head)?;
        w.write_all(&buf)?;
        offset += len as u64;
    }
    w.flush()?;
    Ok((packets, masked))
}
