//! nf_tables spoken over netlink: the interception's table made, replaced and deleted as
//! one transaction each, without the `nft` program. Each `nft` process reads every table on
//! the machine before it acts, so with 64 boards (64 tables) the two per board were half of
//! the harness's CPU (P3 in BENCHMARKS.md); a netlink transaction touches only its table.
//!
//! What is written is exactly what `nft` writes for the same rules (`nft list table` reads
//! it back as the rules it was given: tested), so a lab engineer inspects it with `nft`.

use std::io;
use std::net::Ipv4Addr;

use super::netlink::{Message, Netlink, attributes};

// linux/netfilter/nfnetlink.h, linux/netfilter/nf_tables.h
const SUBSYS: u16 = 10;
const NEWTABLE: u16 = 0;
const GETTABLE: u16 = 1;
const DELTABLE: u16 = 2;
const NEWCHAIN: u16 = 3;
const NEWRULE: u16 = 6;
const NFPROTO_IPV4: u8 = 2;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const TABLE_NAME: u16 = 1;
const TABLE_FLAGS: u16 = 2;
const CHAIN_TABLE: u16 = 1;
const CHAIN_NAME: u16 = 3;
const CHAIN_HOOK: u16 = 4;
const CHAIN_POLICY: u16 = 5;
const CHAIN_TYPE: u16 = 7;
const HOOK_NUM: u16 = 1;
const HOOK_PRIORITY: u16 = 2;
const RULE_TABLE: u16 = 1;
const RULE_CHAIN: u16 = 2;
const RULE_EXPRESSIONS: u16 = 4;
const LIST_ELEM: u16 = 1;
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
const DATA_VALUE: u16 = 1;
const DATA_VERDICT: u16 = 2;
const VERDICT_CODE: u16 = 1;
const NF_ACCEPT: u32 = 1;
const NF_INET_PRE_ROUTING: u32 = 0;
/// `priority dstnat`.
const DSTNAT: i32 = -100;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_L4PROTO: u32 = 16;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;
const NETWORK_HEADER: u32 = 1;
const TRANSPORT_HEADER: u32 = 2;
const IFNAMSIZ: usize = 16;
/// The chain every interception table holds.
pub(crate) const CHAIN: &str = "prerouting";

/// One test or action of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    /// `iifname "NAME"`
    IifName(String),
    /// `ip saddr A` / `ip saddr != A`
    Saddr(Ipv4Addr, bool),
    /// `ip daddr A` / `ip daddr != A`
    Daddr(Ipv4Addr, bool),
    /// `meta l4proto tcp|udp` (6, 17)
    L4Proto(u8),
    /// `tcp|udp dport P` (after an `L4Proto`)
    Dport(u16),
    Accept,
    /// `redirect to :P`
    Redirect(u16),
}

/// A NAT chain's rules: each a list of tests ending in an action.
pub(crate) type NatRules = Vec<Vec<Expr>>;

fn message(kind: u16, flags: u16) -> Message {
    let mut m = Message::new((SUBSYS << 8) | kind, flags);
    // nfgenmsg: family, version 0, resource id 0
    m.raw(&[NFPROTO_IPV4, 0, 0, 0]);
    m
}

/// One expression element: its name, then its attributes (written by `data`).
fn element(m: &mut Message, name: &str, data: impl FnOnce(&mut Message)) {
    m.begin(LIST_ELEM).name(EXPR_NAME, name).begin(EXPR_DATA);
    data(m);
    m.end().end();
}

fn compare(m: &mut Message, op: u32, value: &[u8]) {
    element(m, "cmp", |m| {
        m.be32(1, 1).be32(2, op).begin(3).attr(DATA_VALUE, value).end();
    });
}

fn payload(m: &mut Message, base: u32, offset: u32, len: u32) {
    element(m, "payload", |m| {
        m.be32(1, 1).be32(2, base).be32(3, offset).be32(4, len);
    });
}

fn meta(m: &mut Message, key: u32) {
    element(m, "meta", |m| {
        m.be32(1, 1).be32(2, key);
    });
}

fn encode(m: &mut Message, e: &Expr) {
    let op = |eq: bool| if eq { NFT_CMP_EQ } else { NFT_CMP_NEQ };
    match e {
        Expr::IifName(n) => {
            meta(m, NFT_META_IIFNAME);
            let mut v = [0u8; IFNAMSIZ];
            let b = n.as_bytes();
            v[..b.len().min(IFNAMSIZ - 1)].copy_from_slice(&b[..b.len().min(IFNAMSIZ - 1)]);
            compare(m, NFT_CMP_EQ, &v);
        }
        Expr::Saddr(a, eq) => {
            payload(m, NETWORK_HEADER, 12, 4);
            compare(m, op(*eq), &a.octets());
        }
        Expr::Daddr(a, eq) => {
            payload(m, NETWORK_HEADER, 16, 4);
            compare(m, op(*eq), &a.octets());
        }
        Expr::L4Proto(p) => {
            meta(m, NFT_META_L4PROTO);
            compare(m, NFT_CMP_EQ, &[*p]);
        }
        Expr::Dport(p) => {
            payload(m, TRANSPORT_HEADER, 2, 2);
            compare(m, NFT_CMP_EQ, &p.to_be_bytes());
        }
        Expr::Accept => element(m, "immediate", |m| {
            m.be32(1, 0)
                .begin(2)
                .begin(DATA_VERDICT)
                .be32(VERDICT_CODE, NF_ACCEPT)
                .end()
                .end();
        }),
        Expr::Redirect(p) => {
            element(m, "immediate", |m| {
                m.be32(1, 1).begin(2).attr(DATA_VALUE, &p.to_be_bytes()).end();
            });
            element(m, "redir", |m| {
                m.be32(1, 1);
            });
        }
    }
}

fn table_message(kind: u16, flags: u16, table: &str) -> Message {
    let mut m = message(kind, flags);
    m.name(TABLE_NAME, table);
    m
}

/// Makes table `table` (ip family) with a NAT prerouting chain holding `rules`, replacing a
/// table of that name if one is left: one transaction, all or nothing.
pub(crate) fn replace_table(table: &str, rules: &NatRules) -> io::Result<()> {
    let mut msgs = vec![
        // add (a no-op if it exists), delete, make: the idiom that replaces
        table_message(NEWTABLE, NLM_F_CREATE, table),
        table_message(DELTABLE, 0, table),
    ];
    let mut t = table_message(NEWTABLE, NLM_F_CREATE, table);
    t.be32(TABLE_FLAGS, 0);
    msgs.push(t);
    let mut c = message(NEWCHAIN, NLM_F_CREATE);
    c.name(CHAIN_TABLE, table).name(CHAIN_NAME, CHAIN);
    c.begin(CHAIN_HOOK)
        .be32(HOOK_NUM, NF_INET_PRE_ROUTING)
        .be32(HOOK_PRIORITY, DSTNAT as u32)
        .end();
    c.be32(CHAIN_POLICY, NF_ACCEPT).name(CHAIN_TYPE, "nat");
    msgs.push(c);
    for rule in rules {
        let mut r = message(NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
        r.name(RULE_TABLE, table)
            .name(RULE_CHAIN, CHAIN)
            .begin(RULE_EXPRESSIONS);
        for e in rule {
            encode(&mut r, e);
        }
        r.end();
        msgs.push(r);
    }
    Netlink::open_protocol(libc::NETLINK_NETFILTER)?.batch(SUBSYS, msgs, &format!("nftables table ip {table}"))
}

/// Deletes table `table`; one already gone is no error.
pub(crate) fn delete_table(table: &str) -> io::Result<()> {
    let what = format!("delete nftables table ip {table}");
    match Netlink::open_protocol(libc::NETLINK_NETFILTER)?.batch(SUBSYS, vec![table_message(DELTABLE, 0, table)], &what)
    {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The names of the ip family's tables.
pub(crate) fn tables() -> io::Result<Vec<String>> {
    let bodies = Netlink::open_protocol(libc::NETLINK_NETFILTER)?.dump(message(GETTABLE, 0), "list nftables tables")?;
    Ok(bodies
        .iter()
        .filter_map(|b| {
            attributes(b, 4)
                .into_iter()
                .find(|(k, _)| *k == TABLE_NAME)
                .map(|(_, v)| String::from_utf8_lossy(v.split(|c| *c == 0).next().unwrap_or(v)).into_owned())
        })
        .collect())
}
