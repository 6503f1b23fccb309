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
}
