//! The client's address behind trusted reverse proxies (`http.trusted_proxies`): what rate
//! limits, login limits and session records count a request under.
//!
//! Only a connection *from* a trusted proxy may name another address, in `X-Forwarded-For`.
//! The header is read from the right (each proxy appends the address it received from): the
//! first address that is not itself a trusted proxy is the client. Addresses to its left were
//! written by the client or by proxies nobody trusts, so they are never used. A header that
//! cannot be read stops the walk at the last trusted hop, which is then counted as the client:
//! a garbled header can make a client share its proxy's budget, never pick someone else's.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

use domain::config::{TrustedProxies, canonical};

/// Longest `X-Forwarded-For` chain walked; a longer one is cut at its last trusted hop.
const MAX_HOPS: usize = 16;

/// The address `peer`'s request is counted under.
pub fn client_addr(trusted: &TrustedProxies, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
    let tcp = canonical(peer.ip());
    if trusted.0.is_empty() || !trusted.contains(tcp) {
        return SocketAddr::new(tcp, peer.port());
    }
    let mut client = tcp;
    // All X-Forwarded-For lines in order, as one list; walked right to left.
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return SocketAddr::new(client, 0);
        };
        hops.extend(text.split(','));
    }
    for hop in hops.iter().rev().take(MAX_HOPS) {
        let Some(addr) = parse_hop(hop) else {
            break;
        };
        client = addr;
        if !trusted.contains(addr) {
            break;
        }
    }
    SocketAddr::new(client, 0)
}

/// One entry: `1.2.3.4`, `2001:db8::1`, `1.2.3.4:5678` or `[2001:db8::1]:5678`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::try_from(list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(a: SocketAddr) -> String {
        a.ip().to_string()
    }

    const PROXY: &str = "10.0.0.5:40000";

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let a = client_addr(
            &trusted(&[]),
            PROXY.parse().unwrap(),
            &headers(&["203.0.113.9"]),
        );
        assert_eq!(ip(a), "10.0.0.5");
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let t = trusted(&["10.0.0.0/8"]);
        let a = client_addr(
            &t,
            "198.51.100.7:1".parse().unwrap(),
            &headers(&["203.0.113.9"]),
        );
        assert_eq!(ip(a), "198.51.100.7");
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let t = trusted(&["10.0.0.0/8", "::1"]);
        let peer = PROXY.parse().unwrap();
        // The client wrote a fake first entry; the proxy appended what it saw.
        let a = client_addr(&t, peer, &headers(&["1.1.1.1, 203.0.113.9"]));
        assert_eq!(ip(a), "203.0.113.9");
        // Two trusted proxies in a row, over two header lines.
        let a = client_addr(&t, peer, &headers(&["1.1.1.1, 203.0.113.9", "10.0.0.7"]));
        assert_eq!(ip(a), "203.0.113.9");
        // Ports and IPv6 forms.
        let a = client_addr(&t, peer, &headers(&["[2001:db8::1]:443"]));
        assert_eq!(ip(a), "2001:db8::1");
        let a = client_addr(&t, peer, &headers(&["203.0.113.9:5555"]));
        assert_eq!(ip(a), "203.0.113.9");
        // The proxy over IPv4-mapped IPv6.
        let a = client_addr(
            &t,
            "[::ffff:10.0.0.5]:1".parse().unwrap(),
            &headers(&["203.0.113.9"]),
        );
        assert_eq!(ip(a), "203.0.113.9");
    }

    #[test]
    fn a_garbled_or_missing_header_counts_the_last_trusted_hop() {
        let t = trusted(&["10.0.0.0/8"]);
        let peer = PROXY.parse().unwrap();
        assert_eq!(ip(client_addr(&t, peer, &headers(&[]))), "10.0.0.5");
        assert_eq!(
            ip(client_addr(&t, peer, &headers(&["not-an-ip"]))),
            "10.0.0.5"
        );
        // Garbage left of a good hop is never reached.
        let a = client_addr(&t, peer, &headers(&["evil, 203.0.113.9"]));
        assert_eq!(ip(a), "203.0.113.9");
        // Garbage between two trusted hops stops at the trusted one.
        let a = client_addr(&t, peer, &headers(&["203.0.113.9, junk, 10.0.0.8"]));
        assert_eq!(ip(a), "10.0.0.8");
    }
}
