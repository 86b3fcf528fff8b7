//! IP networks in CIDR notation (`10.0.0.0/8`, `fd00::/8`), as private-network routes name
//! them, and longest-prefix lookup over overlapping routes.
//!
//! Host bits are cleared on parse: `10.1.2.3/8` becomes `10.0.0.0/8`. cloudflared (and the
//! Cloudflare API) store the network address too, and rejecting would only make users
//! redo the arithmetic; the canonical form is what [`IpNet`]'s `Display` and serde write,
//! so the normalised value is visible wherever a route is shown.
//!
//! Address families never mix: an IPv4 address is not in any IPv6 network, including
//! `::ffff:0:0/96`. A caller holding an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, as a
//! dual-stack socket reports it) should pass it through [`IpAddr::to_canonical`] first.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    str::FromStr,
};

use serde::{Deserialize, Serialize};

use crate::Error;

/// An IPv4 or IPv6 network: its network address (host bits zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpNet {
    /// Always the network address: `new` clears the host bits.
    addr: IpAddr,
    /// At most 32 for IPv4, 128 for IPv6.
    prefix_len: u8,
}

impl IpNet {
    /// The network of `addr` with `prefix_len` bits; host bits of `addr` are cleared.
    /// Fails if `prefix_len` exceeds the family's width (32 or 128).
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, Error> {
        if prefix_len > max_prefix_len(addr) {
            return Err(Error::InvalidIpNet {
                input: format!("{addr}/{prefix_len}"),
                reason: prefix_reason(addr),
            });
        }
        Ok(Self {
            addr: network_address(addr, prefix_len),
            prefix_len,
        })
    }

    /// Parses `address/prefix-length` or a bare address (a single host: /32 or /128).
    /// Surrounding whitespace is ignored; the prefix length is plain decimal without
    /// sign or leading zeros.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidIpNet {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| invalid("the address is not an IPv4 or IPv6 address"))?;
        let prefix_len = match prefix_text {
            None => max_prefix_len(addr),
            Some("") => return Err(invalid("the prefix length after '/' is missing")),
            Some(prefix) => {
                parse_prefix_len(prefix, addr).ok_or_else(|| invalid(prefix_reason(addr)))?
            }
        };
        Ok(Self {
            addr: network_address(addr, prefix_len),
            prefix_len,
        })
    }

    /// The network address (host bits zero), e.g. `10.0.0.0` for `10.0.0.0/8`.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The number of leading bits that every address in the network shares.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether `ip` lies in this network; an address of the other family never does.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                network_address(ip, self.prefix_len) == self.addr
            }
            _ => false,
        }
    }
}

/// The value paired with the most specific network in `routes` that contains `ip` (the
/// longest prefix wins), or `None` if no network contains it. Of equally long matches,
/// which can only be the same network listed twice, the first one wins, as the first
/// matching ingress rule does.
pub fn longest_match<'a, T>(
    routes: impl IntoIterator<Item = (&'a IpNet, T)>,
    ip: IpAddr,
) -> Option<T> {
    let mut best: Option<(u8, T)> = None;
    for (net, value) in routes {
        let longer = best.as_ref().is_none_or(|(len, _)| net.prefix_len > *len);
        if longer && net.contains(ip) {
            best = Some((net.prefix_len, value));
        }
    }
    best.map(|(_, value)| value)
}

fn max_prefix_len(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn prefix_reason(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "the prefix length must be a number from 0 to 32 for IPv4",
        IpAddr::V6(_) => "the prefix length must be a number from 0 to 128 for IPv6",
    }
}

/// Plain decimal only: `u8::from_str` would also take `+8`, and `08` is ambiguous
/// enough (octal?) that rejecting it is kinder than guessing.
fn parse_prefix_len(text: &str, addr: IpAddr) -> Option<u8> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (text.len() > 1 && text.starts_with('0')) || text.len() > 3 {
        return None;
    }
    text.parse::<u8>()
        .ok()
        .filter(|len| *len <= max_prefix_len(addr))
}

/// `addr` with every bit after the first `prefix_len` cleared.
fn network_address(addr: IpAddr, prefix_len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            // A shift by the full width overflows, and /0 means "no bits kept".
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix_len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

impl fmt::Display for IpNet {
    /// `address/prefix-length`, always with the prefix length (`10.0.0.5/32`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for IpNet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for IpNet {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<IpNet> for String {
    fn from(value: IpNet) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        match IpNet::parse(text) {
            Ok(net) => net,
            Err(err) => panic!("{text:?} should parse: {err}"),
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_and_displays() {
        let cases = [
            ("10.0.0.0/8", "10.0.0.0/8", 8),
            ("192.168.1.5/32", "192.168.1.5/32", 32),
            ("0.0.0.0/0", "0.0.0.0/0", 0),
            ("fd00::/8", "fd00::/8", 8),
            ("::/0", "::/0", 0),
            ("2001:db8::1/128", "2001:db8::1/128", 128),
            ("2001:DB8:0:0::/32", "2001:db8::/32", 32),
            // A bare address is one host.
            ("192.168.1.5", "192.168.1.5/32", 32),
            ("::1", "::1/128", 128),
            ("  10.0.0.0/8\n", "10.0.0.0/8", 8),
        ];
        for (input, shown, len) in cases {
            let parsed = net(input);
            assert_eq!(parsed.to_string(), shown, "{input}");
            assert_eq!(parsed.prefix_len(), len, "{input}");
            assert_eq!(net(shown), parsed, "{input}: display round-trips");
            assert_eq!(input.parse::<IpNet>(), Ok(parsed), "{input}: FromStr");
        }
    }

    #[test]
    fn host_bits_are_cleared() {
        let cases = [
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("192.168.1.77/24", "192.168.1.0/24"),
            ("172.31.255.255/12", "172.16.0.0/12"),
            ("255.255.255.255/0", "0.0.0.0/0"),
            ("10.1.2.3/31", "10.1.2.2/31"),
            ("fd12:3456::1/8", "fd00::/8"),
            ("2001:db8:abcd:12::1/64", "2001:db8:abcd:12::/64"),
            ("ffff::1/0", "::/0"),
            ("2001:db8::ff/127", "2001:db8::fe/127"),
        ];
        for (input, want) in cases {
            assert_eq!(net(input).to_string(), want, "{input}");
            assert_eq!(net(input), net(want), "{input}");
        }
        assert_eq!(net("10.1.2.3/8").addr(), ip("10.0.0.0"));
        let built = IpNet::new(ip("10.1.2.3"), 16).unwrap();
        assert_eq!(built.to_string(), "10.1.0.0/16");
    }

    #[test]
    fn rejects_bad_input_naming_it() {
        let cases = [
            ("", "invalid IP network \"\": it is empty"),
            ("   ", "invalid IP network \"   \": it is empty"),
            (
                "10.0.0/8",
                "invalid IP network \"10.0.0/8\": the address is not an IPv4 or IPv6 address",
            ),
            (
                "example.com/8",
                "the address is not an IPv4 or IPv6 address",
            ),
            ("010.0.0.0/8", "the address is not an IPv4 or IPv6 address"),
            ("[::1]/128", "the address is not an IPv4 or IPv6 address"),
            (
                "fe80::1%eth0/64",
                "the address is not an IPv4 or IPv6 address",
            ),
            ("/8", "the address is not an IPv4 or IPv6 address"),
            (
                "10.0.0.0/",
                "invalid IP network \"10.0.0.0/\": the prefix length after '/' is missing",
            ),
            (
                "10.0.0.0/33",
                "invalid IP network \"10.0.0.0/33\": the prefix length must be a number from 0 to 32 for IPv4",
            ),
            ("10.0.0.0/-1", "from 0 to 32 for IPv4"),
            ("10.0.0.0/+8", "from 0 to 32 for IPv4"),
            ("10.0.0.0/08", "from 0 to 32 for IPv4"),
            ("10.0.0.0/ 8", "from 0 to 32 for IPv4"),
            ("10.0.0.0/8/9", "from 0 to 32 for IPv4"),
            ("10.0.0.0/255.0.0.0", "from 0 to 32 for IPv4"),
            ("10.0.0.0/4294967304", "from 0 to 32 for IPv4"),
            (
                "fd00::/129",
                "invalid IP network \"fd00::/129\": the prefix length must be a number from 0 to 128 for IPv6",
            ),
            ("fd00::/x", "from 0 to 128 for IPv6"),
        ];
        for (input, want) in cases {
            let err = IpNet::parse(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input:?}\n  got: {err}\n want: {want}");
        }
        assert_eq!(
            IpNet::new(ip("10.0.0.0"), 33).unwrap_err().to_string(),
            "invalid IP network \"10.0.0.0/33\": the prefix length must be a number from 0 to 32 for IPv4"
        );
        assert!(IpNet::new(ip("::"), 129).is_err());
        assert!(IpNet::new(ip("::"), 128).is_ok());
    }

    #[test]
    fn contains_v4() {
        let n = net("10.0.0.0/8");
        assert!(n.contains(ip("10.0.0.0")));
        assert!(n.contains(ip("10.255.255.255")));
        assert!(n.contains(ip("10.1.2.3")));
        assert!(!n.contains(ip("11.0.0.0")));
        assert!(!n.contains(ip("9.255.255.255")));
        let host = net("192.168.1.5");
        assert!(host.contains(ip("192.168.1.5")));
        assert!(!host.contains(ip("192.168.1.6")));
        let all = net("0.0.0.0/0");
        assert!(all.contains(ip("1.2.3.4")) && all.contains(ip("255.255.255.255")));
        let odd = net("172.16.0.0/12");
        assert!(odd.contains(ip("172.31.0.1")));
        assert!(!odd.contains(ip("172.32.0.1")));
    }

    #[test]
    fn contains_v6() {
        let n = net("fd00::/8");
        assert!(n.contains(ip("fd00::1")));
        assert!(n.contains(ip("fdff:ffff::1")));
        assert!(!n.contains(ip("fe00::1")));
        assert!(!n.contains(ip("fc00::1")));
        let host = net("2001:db8::1");
        assert!(host.contains(ip("2001:db8::1")));
        assert!(!host.contains(ip("2001:db8::2")));
        assert!(net("::/0").contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    }

    #[test]
    fn families_never_mix() {
        // Not even the catch-alls, nor the IPv4-mapped range.
        assert!(!net("::/0").contains(ip("10.0.0.1")));
        assert!(!net("::ffff:0:0/96").contains(ip("10.0.0.1")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")));
        assert!(!net("10.0.0.0/8").contains(ip("::ffff:10.0.0.1")));
        // Canonicalising first is the caller's way to match a mapped address.
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.0.0.1").to_canonical()));
        let routes = [(net("::/0"), "v6 default")];
        assert_eq!(
            longest_match(routes.iter().map(|(n, v)| (n, *v)), ip("10.0.0.1")),
            None
        );
    }

    #[test]
    fn longest_prefix_wins() {
        let routes = [
            (net("10.0.0.0/8"), "wide"),
            (net("10.1.0.0/16"), "narrow"),
            (net("10.1.2.0/24"), "narrower"),
            (net("10.1.2.3"), "host"),
            (net("0.0.0.0/0"), "default v4"),
            (net("fd00::/8"), "ula"),
            (net("fd00:1::/32"), "ula narrow"),
        ];
        let lookup = |addr: &str| longest_match(routes.iter().map(|(n, v)| (n, *v)), ip(addr));
        let cases = [
            ("10.200.0.1", Some("wide")),
            ("10.1.200.1", Some("narrow")),
            ("10.1.2.4", Some("narrower")),
            ("10.1.2.3", Some("host")),
            ("192.168.0.1", Some("default v4")),
            ("fd00:1::5", Some("ula narrow")),
            ("fd00:2::5", Some("ula")),
            ("2001:db8::1", None),
        ];
        for (addr, want) in cases {
            assert_eq!(lookup(addr), want, "{addr}");
        }
        // Order of the routes does not matter...
        let reversed = routes.iter().rev().map(|(n, v)| (n, *v));
        assert_eq!(longest_match(reversed, ip("10.1.2.4")), Some("narrower"));
        // ...except between duplicates, where the first wins.
        let dupes = [(net("10.0.0.0/8"), 1), (net("10.9.9.9/8"), 2)];
        assert_eq!(
            longest_match(dupes.iter().map(|(n, v)| (n, *v)), ip("10.0.0.1")),
            Some(1)
        );
        let none: [(IpNet, u8); 0] = [];
        assert_eq!(
            longest_match(none.iter().map(|(n, v)| (n, *v)), ip("10.0.0.1")),
            None
        );
    }

    #[test]
    fn serde_as_a_string() {
        let parsed: IpNet = serde_json::from_str(r#""10.1.2.3/8""#).unwrap();
        assert_eq!(parsed, net("10.0.0.0/8"));
        assert_eq!(serde_json::to_string(&parsed).unwrap(), r#""10.0.0.0/8""#);
        let v6: Vec<IpNet> = serde_yaml::from_str("- fd00::/8\n- ::1\n").unwrap();
        assert_eq!(v6, [net("fd00::/8"), net("::1/128")]);
        let err = serde_json::from_str::<IpNet>(r#""10.0.0.0/40""#).unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid IP network \"10.0.0.0/40\""),
            "{err}"
        );
        assert!(serde_json::from_str::<IpNet>("8").is_err());
    }

    #[test]
    fn ordering_is_stable() {
        let mut nets = [net("fd00::/8"), net("10.0.0.0/16"), net("10.0.0.0/8")];
        nets.sort();
        let shown: Vec<String> = nets.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "10.0.0.0/16", "fd00::/8"]);
    }
}
