//! The client's address as the proxy reports it.

use std::net::{IpAddr, SocketAddr};

use crate::domain::agent::canonical_ip;

/// Body `ip`, else `X-Real-IP`, else the first `X-Forwarded-For` entry, else the TCP peer. A
/// value that is present but unreadable gives no address at all (an allow list then
/// refuses), never a fallback to the peer, which is the proxy.
pub fn client_ip(
    body_ip: Option<&str>,
    real_ip: Option<&[u8]>,
    forwarded_for: Option<&[u8]>,
    peer: Option<IpAddr>,
) -> Option<IpAddr> {
    if let Some(ip) = body_ip {
        return parse_ip(ip);
    }
    if let Some(value) = real_ip {
        return std::str::from_utf8(value).ok().and_then(parse_ip);
    }
    if let Some(value) = forwarded_for {
        return std::str::from_utf8(value)
            .ok()
            .and_then(|list| list.split(',').next())
            .and_then(parse_ip);
    }
    peer.map(canonical_ip)
}

/// An address, an address with a port, or a bracketed IPv6 address.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok())
        })
        .map(canonical_ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn sources_in_order_of_precedence() {
        let peer = ip("192.0.2.1");
        assert_eq!(
            client_ip(Some("10.0.0.1"), Some(b"10.0.0.2"), None, peer),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(None, Some(b"10.0.0.2"), Some(b"10.0.0.3"), peer),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(None, None, Some(b"10.0.0.3, 10.0.0.4"), peer),
            ip("10.0.0.3")
        );
        assert_eq!(client_ip(None, None, None, peer), peer);
    }

    #[test]
    fn spellings_of_one_address() {
        for text in [
            "2001:db8::1",
            "[2001:db8::1]",
            "[2001:db8::1]:443",
            " 2001:db8::1 ",
        ] {
            assert_eq!(
                client_ip(Some(text), None, None, None),
                ip("2001:db8::1"),
                "{text}"
            );
        }
        assert_eq!(
            client_ip(Some("10.0.0.1:8080"), None, None, None),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_ip(None, None, None, ip("::ffff:10.0.0.1")),
            ip("10.0.0.1"),
            "an IPv4-mapped peer is its IPv4 address"
        );
    }

    #[test]
    fn an_unreadable_value_never_falls_back_to_the_peer() {
        let peer = ip("192.0.2.1");
        assert_eq!(client_ip(Some("nonsense"), None, None, peer), None);
        assert_eq!(client_ip(None, Some(b"nonsense"), None, peer), None);
        assert_eq!(client_ip(None, Some(b"\xff"), None, peer), None);
        assert_eq!(client_ip(None, None, Some(b""), peer), None);
    }
}
