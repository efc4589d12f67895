//! The PROXY protocol (HAProxy's, versions 1 and 2): a load balancer that
//! passes TCP through starts each connection with a header naming the
//! client's address. Read only from [trusted proxies](crate::Config::trusted_proxies)
//! and only with [`Config::proxy_protocol`](crate::Config::proxy_protocol).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

/// The version 2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest version 1 line, `\r\n` included.
const V1_MAX: usize = 107;
/// The longest version 2 address block accepted (TLVs included).
const V2_MAX_BODY: usize = 1024;

/// Why a connection's PROXY header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    /// The connection does not start with a PROXY header.
    #[error("no PROXY protocol header")]
    Missing,
    /// A header that does not follow the specification.
    #[error("malformed PROXY protocol header")]
    Malformed,
    /// The connection closed or failed before the header was complete.
    #[error("connection ended inside the PROXY protocol header")]
    Truncated,
}

/// What a complete header says, and its length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The client, or `None` for a proxy's own connection (v2 `LOCAL`, v1
    /// `UNKNOWN`, or an address family other than TCP/UDP over IP).
    pub(crate) source: Option<SocketAddr>,
    pub(crate) len: usize,
}

/// Parses the header at the start of `bytes`: `Ok(None)` if more bytes are
/// needed to decide.
pub(crate) fn parse(bytes: &[u8]) -> Result<Option<Header>, ProxyHeaderError> {
    if bytes.len() < V2_SIGNATURE.len() {
        let could_be =
            V2_SIGNATURE.starts_with(bytes) || b"PROXY ".starts_with(&bytes[..bytes.len().min(6)]);
        return if could_be {
            Ok(None)
        } else {
            Err(ProxyHeaderError::Missing)
        };
    }
    if bytes.starts_with(V2_SIGNATURE) {
        parse_v2(bytes)
    } else if bytes.starts_with(b"PROXY ") {
        parse_v1(bytes)
    } else {
        Err(ProxyHeaderError::Missing)
    }
}

fn parse_v1(bytes: &[u8]) -> Result<Option<Header>, ProxyHeaderError> {
    let window = &bytes[..bytes.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if bytes.len() >= V1_MAX {
            Err(ProxyHeaderError::Malformed)
        } else {
            Ok(None)
        };
    };
    let line = std::str::from_utf8(&bytes[..end]).map_err(|_| ProxyHeaderError::Malformed)?;
    let fields: Vec<&str> = line.split(' ').collect();
    let source = match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => None,
        [
            "PROXY",
            family @ ("TCP4" | "TCP6"),
            source,
            _destination,
            port,
            _port,
        ] => {
            let ip: IpAddr = source.parse().map_err(|_| ProxyHeaderError::Malformed)?;
            if ip.is_ipv4() != (*family == "TCP4") {
                return Err(ProxyHeaderError::Malformed);
            }
            let port: u16 = port.parse().map_err(|_| ProxyHeaderError::Malformed)?;
            Some(SocketAddr::new(ip, port))
        }
        _ => return Err(ProxyHeaderError::Malformed),
    };
    Ok(Some(Header {
        source,
        len: end + 2,
    }))
}

fn parse_v2(bytes: &[u8]) -> Result<Option<Header>, ProxyHeaderError> {
    let Some(fixed) = bytes.get(..16) else {
        return Ok(None);
    };
    let (version_command, family) = (fixed[12], fixed[13]);
    let body_len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if version_command >> 4 != 2 || body_len > V2_MAX_BODY {
        return Err(ProxyHeaderError::Malformed);
    }
    let Some(body) = bytes.get(16..16 + body_len) else {
        return Ok(None);
    };
    let len = 16 + body_len;
    let source = match (version_command & 0x0f, family >> 4) {
        (0, _) => None,
        (1, 1) => {
            let a: [u8; 12] = body
                .get(..12)
                .and_then(|b| b.try_into().ok())
                .ok_or(ProxyHeaderError::Malformed)?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([a[8], a[9]])))
        }
        (1, 2) => {
            let a: [u8; 36] = body
                .get(..36)
                .and_then(|b| b.try_into().ok())
                .ok_or(ProxyHeaderError::Malformed)?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&a[..16]);
            Some(SocketAddr::new(
                Ipv6Addr::from(ip).into(),
                u16::from_be_bytes([a[32], a[33]]),
            ))
        }
        (1, _) => None,
        _ => return Err(ProxyHeaderError::Malformed),
    };
    Ok(Some(Header { source, len }))
}

/// Reads the header a trusted proxy starts `stream` with, consuming exactly
/// its bytes; the client's address, or `None` for the proxy's own. The
/// caller bounds the wait.
pub(crate) async fn read(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut buf = vec![0u8; 16 + V2_MAX_BODY];
    loop {
        let seen = stream
            .peek(&mut buf)
            .await
            .map_err(|_| ProxyHeaderError::Truncated)?;
        if seen == 0 {
            return Err(ProxyHeaderError::Truncated);
        }
        if let Some(header) = parse(&buf[..seen])? {
            let mut consumed = vec![0u8; header.len];
            stream
                .read_exact(&mut consumed)
                .await
                .map_err(|_| ProxyHeaderError::Truncated)?;
            return Ok(header.source);
        }
        if seen == buf.len() {
            return Err(ProxyHeaderError::Malformed);
        }
        // Part of the header is here: wait for more before peeking again.
        stream
            .readable()
            .await
            .map_err(|_| ProxyHeaderError::Truncated)?;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.push(0x20 | command);
        out.push(family);
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn version_1_lines_give_the_source() {
        let line = b"PROXY TCP4 198.51.100.7 10.0.0.1 40000 443\r\nGET / HTTP/1.1\r\n";
        let header = parse(line).unwrap().unwrap();
        assert_eq!(header.source, Some("198.51.100.7:40000".parse().unwrap()));
        assert_eq!(header.len, 44);
        let line = b"PROXY TCP6 2001:db8::5 2001:db8::1 4711 443\r\n";
        assert_eq!(
            parse(line).unwrap().unwrap().source,
            Some("[2001:db8::5]:4711".parse().unwrap())
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap().unwrap().source, None);
        assert_eq!(parse(b"PROXY TCP4 198.51.1"), Ok(None));
        assert_eq!(parse(b"PRO"), Ok(None));
    }

    #[test]
    fn version_2_headers_give_the_source() {
        let mut body = vec![203, 0, 113, 9, 10, 0, 0, 1];
        body.extend_from_slice(&5000u16.to_be_bytes());
        body.extend_from_slice(&443u16.to_be_bytes());
        let bytes = v2(1, 0x11, &body);
        let header = parse(&bytes).unwrap().unwrap();
        assert_eq!(header.source, Some("203.0.113.9:5000".parse().unwrap()));
        assert_eq!(header.len, 28);
        assert_eq!(parse(&bytes[..20]), Ok(None));
        let local = v2(0, 0, &[]);
        assert_eq!(parse(&local).unwrap().unwrap().source, None);
        let mut six = vec![0u8; 36];
        six[0] = 0x20;
        six[1] = 0x01;
        six[32..34].copy_from_slice(&9u16.to_be_bytes());
        let source = parse(&v2(1, 0x21, &six)).unwrap().unwrap().source.unwrap();
        assert_eq!(source, "[2001::]:9".parse::<SocketAddr>().unwrap());
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyHeaderError::Missing));
        assert_eq!(
            parse(b"PROXY TCP4 nope 10.0.0.1 1 2\r\n"),
            Err(ProxyHeaderError::Malformed)
        );
        assert_eq!(
            parse(b"PROXY TCP6 1.2.3.4 10.0.0.1 1 2\r\n"),
            Err(ProxyHeaderError::Malformed)
        );
        assert_eq!(parse(&[b'P'; 6]), Err(ProxyHeaderError::Missing));
        let long = [b"PROXY ".as_slice(), &[b'x'; 120]].concat();
        assert_eq!(parse(&long), Err(ProxyHeaderError::Malformed));
        // Too short for its family's addresses.
        assert_eq!(
            parse(&v2(1, 0x11, &[1, 2, 3])),
            Err(ProxyHeaderError::Malformed)
        );
        let mut wrong_version = v2(1, 0x11, &[0; 12]);
        wrong_version[12] = 0x11;
        assert_eq!(parse(&wrong_version), Err(ProxyHeaderError::Malformed));
    }
}
