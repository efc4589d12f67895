//! The client's address behind trusted reverse proxies and load balancers.
//!
//! A connection from an address in [`Config::trusted_proxies`] is a proxy
//! speaking for someone else: the client is the rightmost address of its
//! `X-Forwarded-For` header that is not itself a trusted proxy (each proxy
//! appends the address it heard from, so everything left of that entry is
//! the client's own claim and cannot be believed). A connection from any
//! other address is the client, whatever headers it sends.
//!
//! [`Config::trusted_proxies`]: crate::Config::trusted_proxies

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// An address block: `10.0.0.0/8`, `fd00::/8`, or one address (`127.0.0.1`,
/// `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpCidr {
    network: IpAddr,
    prefix: u8,
}

/// Why an [`IpCidr`] did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpCidrError {
    /// The part before `/` is not an IP address.
    #[error("{0:?} is not an IP address")]
    Address(String),
    /// The prefix length is not a number within the address's bits.
    #[error("prefix length {prefix:?} is not in 0..={max}")]
    Prefix {
        /// The prefix as written.
        prefix: String,
        /// 32 for IPv4, 128 for IPv6.
        max: u8,
    },
}

impl IpCidr {
    /// Whether `ip` is in the block. An IPv4-mapped IPv6 address is taken
    /// as the IPv4 address it maps.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let shift = 32 - u32::from(self.prefix);
                let mask = u32::MAX.checked_shl(shift).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let shift = 128 - u32::from(self.prefix);
                let mask = u128::MAX.checked_shl(shift).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

impl FromStr for IpCidr {
    type Err = IpCidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = canonical(
            address
                .parse::<IpAddr>()
                .map_err(|_| IpCidrError::Address(address.to_owned()))?,
        );
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix =
            match prefix {
                None => max,
                Some(p) => p.parse::<u8>().ok().filter(|&n| n <= max).ok_or_else(|| {
                    IpCidrError::Prefix {
                        prefix: p.to_owned(),
                        max,
                    }
                })?,
            };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Whether any block in `proxies` holds `ip`.
pub(crate) fn is_trusted(proxies: &[IpCidr], ip: IpAddr) -> bool {
    proxies.iter().any(|block| block.contains(ip))
}

/// The client's address for a request that came from `peer` with `headers`.
pub(crate) fn client_address(proxies: &[IpCidr], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !is_trusted(proxies, peer) {
        return peer;
    }
    let mut client = peer;
    // All `X-Forwarded-For` headers form one list, in order.
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .flat_map(|value| {
            let entries: Vec<&str> = value.to_str().map_or(vec![""], |v| v.split(',').collect());
            entries.into_iter().rev()
        });
    for hop in hops {
        let Some(ip) = parse_hop(hop) else {
            // Garbage: the last address a trusted hop vouched for stands.
            return client;
        };
        client = ip;
        if !is_trusted(proxies, ip) {
            return ip;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, `[v6]`, or either with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    let inner = hop.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<IpAddr>().ok().map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<IpCidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn blocks_parse_and_match() {
        let block: IpCidr = "10.1.0.0/16".parse().unwrap();
        assert!(block.contains(ip("10.1.200.3")));
        assert!(!block.contains(ip("10.2.0.1")));
        assert!(block.contains(ip("::ffff:10.1.0.9")));
        let one: IpCidr = "::1".parse().unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        let all: IpCidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.7")) && !all.contains(ip("2001:db8::1")));
        let v6: IpCidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert_eq!(v6.to_string(), "2001:db8::/32");
    }

    #[test]
    fn bad_blocks_are_clear_errors() {
        assert_eq!(
            "10.0.0.0/33".parse::<IpCidr>(),
            Err(IpCidrError::Prefix {
                prefix: "33".into(),
                max: 32
            })
        );
        assert!(matches!(
            "proxy.local".parse::<IpCidr>(),
            Err(IpCidrError::Address(_))
        ));
        assert!(matches!(
            "::1/x".parse::<IpCidr>(),
            Err(IpCidrError::Prefix { .. })
        ));
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let proxies = cidrs(&["10.0.0.0/8"]);
        let headers = xff(&["198.51.100.1"]);
        assert_eq!(
            client_address(&proxies, ip("203.0.113.5"), &headers),
            ip("203.0.113.5")
        );
        assert_eq!(
            client_address(&[], ip("10.0.0.1"), &headers),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let proxies = cidrs(&["10.0.0.0/8", "192.168.1.1"]);
        // The client forged the first entry; the edge proxy appended the real one.
        let headers = xff(&["1.2.3.4, 198.51.100.7", "192.168.1.1"]);
        assert_eq!(
            client_address(&proxies, ip("10.0.0.2"), &headers),
            ip("198.51.100.7")
        );
        let headers = xff(&["[2001:db8::5]:4711"]);
        assert_eq!(
            client_address(&proxies, ip("10.0.0.2"), &headers),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn without_a_usable_header_the_last_vouched_address_stands() {
        let proxies = cidrs(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.2");
        assert_eq!(client_address(&proxies, peer, &HeaderMap::new()), peer);
        let headers = xff(&["garbage, 10.0.0.3"]);
        assert_eq!(client_address(&proxies, peer, &headers), ip("10.0.0.3"));
        let headers = xff(&["10.0.0.9"]);
        assert_eq!(client_address(&proxies, peer, &headers), ip("10.0.0.9"));
    }
}
