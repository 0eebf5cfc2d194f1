//! Which addresses the server may connect to on a client's behalf (webhook callbacks).
//!
//! A callback URL names a host; the host is resolved once, every address it resolves to is
//! checked against [`denied`], and the connection goes to the checked address (the HTTP
//! client is pinned to it), so a name that resolves differently a second later (DNS
//! rebinding) cannot reach an address that was never checked.
//!
//! The deny table covers every special-purpose block of the IANA IPv4 and IPv6 registries
//! that is not globally reachable, and the IPv6 forms that embed an IPv4 address (mapped,
//! compatible, NAT64, 6to4) are judged by the IPv4 address they carry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address may not be called, or `None` when it is a global unicast address.
pub fn denied(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => denied_v4(v4),
        IpAddr::V6(v6) => denied_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

/// IPv4 special-purpose blocks (RFC 6890 and its updates) that are not globally reachable.
const V4_DENY: &[([u8; 4], u32, &str)] = &[
    ([0, 0, 0, 0], 8, "'this network' (0.0.0.0/8)"),
    ([10, 0, 0, 0], 8, "private (10.0.0.0/8)"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT (100.64.0.0/10)"),
    ([127, 0, 0, 0], 8, "loopback (127.0.0.0/8)"),
    ([169, 254, 0, 0], 16, "link-local (169.254.0.0/16)"),
    ([172, 16, 0, 0], 12, "private (172.16.0.0/12)"),
    ([192, 0, 0, 0], 24, "IETF protocol assignments (192.0.0.0/24)"),
    ([192, 0, 2, 0], 24, "documentation (192.0.2.0/24)"),
    ([192, 31, 196, 0], 24, "AS112 (192.31.196.0/24)"),
    ([192, 52, 193, 0], 24, "AMT (192.52.193.0/24)"),
    ([192, 88, 99, 0], 24, "6to4 relay anycast (192.88.99.0/24)"),
    ([192, 168, 0, 0], 16, "private (192.168.0.0/16)"),
    ([192, 175, 48, 0], 24, "direct delegation AS112 (192.175.48.0/24)"),
    ([198, 18, 0, 0], 15, "benchmarking (198.18.0.0/15)"),
    ([198, 51, 100, 0], 24, "documentation (198.51.100.0/24)"),
    ([203, 0, 113, 0], 24, "documentation (203.0.113.0/24)"),
    ([224, 0, 0, 0], 4, "multicast (224.0.0.0/4)"),
    ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4, broadcast included)"),
];

fn denied_v4(ip: Ipv4Addr) -> Option<&'static str> {
    V4_DENY.iter().find(|(net, prefix, _)| in_v4(ip, *net, *prefix)).map(|(_, _, why)| *why)
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// IPv6 blocks inside global unicast (2000::/3) that are not globally reachable.
const V6_DENY_IN_GLOBAL: &[([u16; 8], u32, &str)] = &[
    ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, "IETF protocol assignments, Teredo included (2001::/23)"),
    ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, "documentation (2001:db8::/32)"),
    ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, "documentation (3fff::/20)"),
];

fn denied_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    let seg = ip.segments();
    // Forms that carry an IPv4 address: judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return denied_v4(v4).map(|_| "an IPv4-mapped form of a denied IPv4 address (::ffff:0:0/96)");
    }
    if in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        let v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
        return denied_v4(v4).map(|_| "a NAT64 form of a denied IPv4 address (64:ff9b::/96)");
    }
    if seg[0] == 0x2002 {
        let v4 = Ipv4Addr::from(((seg[1] as u32) << 16) | seg[2] as u32);
        return denied_v4(v4).map(|_| "a 6to4 form of a denied IPv4 address (2002::/16)");
    }
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    if in_v6(ip, [0; 8], 96) {
        return Some("IPv4-compatible (::/96, deprecated)");
    }
    let classes: [([u16; 8], u32, &str); 6] = [
        ([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "local-use NAT64 (64:ff9b:1::/48)"),
        ([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only (100::/64)"),
        ([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local (fc00::/7)"),
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local (fe80::/10)"),
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local (fec0::/10, deprecated)"),
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast (ff00::/8)"),
    ];
    if let Some((_, _, why)) = classes.iter().find(|(net, prefix, _)| in_v6(ip, *net, *prefix)) {
        return Some(why);
    }
    if !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return Some("reserved (outside global unicast 2000::/3)");
    }
    V6_DENY_IN_GLOBAL.iter().find(|(net, prefix, _)| in_v6(ip, *net, *prefix)).map(|(_, _, why)| *why)
}

/// The callback addresses a reliability pass found accepted before this guard: every one of
/// them must be refused (the egress and webhook tests both check the table).
#[cfg(test)]
pub(crate) const REPORTED_ACCEPTED: [&str; 11] = [
    "192.0.2.1",
    "[::127.0.0.1]",
    "[::7f00:1]",
    "[64:ff9b::7f00:1]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:7f00:1::]",
    "[fec0::1]",
    "198.18.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "192.0.0.170",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.trim_start_matches('[').trim_end_matches(']').parse().unwrap()
    }

    #[test]
    fn the_deny_table_holds_every_reported_address_and_lets_global_ones_through() {
        // Every address the reliability pass found accepted, plus the classic ones.
        for bad in REPORTED_ACCEPTED.iter().copied().chain([
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "[::]",
            "[::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:169.254.169.254]",
            "[fc00::1]",
            "[fd12:3456::1]",
            "[fe80::1]",
            "[ff02::1]",
            "[2001:db8::1]",
            "[2001::1]",
            "[2002:a9fe:a9fe::1]",
            "[64:ff9b:1::1]",
            "[100::1]",
            "[3fff::1]",
        ]) {
            assert!(denied(ip(bad)).is_some(), "{bad} must be denied");
        }
        for good in [
            "93.184.215.14",
            "1.1.1.1",
            "8.8.8.8",
            "[2606:2800:21f:cb07:6820:80da:af6b:8b2e]",
            "[::ffff:93.184.215.14]",
            "[64:ff9b::5db8:d70e]",
            "[2002:5db8:d70e::1]",
        ] {
            assert_eq!(denied(ip(good)), None, "{good} is a global address");
        }
    }
}
