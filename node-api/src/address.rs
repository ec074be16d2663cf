//! A peer's address, as `node_info.addresses` lists it and `connect_peer` takes it:
//! `/ip4/<ip>/tcp/<port>/p2p/<pubkey hex>` (or `/ip6/...`), Fiber's multiaddr shape.

use std::net::{IpAddr, SocketAddr};

use dlp_chain::Pubkey;

/// Why a text is not a peer address the node dials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAddressError {
    #[error("bad peer address {0:?}: expected /ip4/<ip>/tcp/<port>/p2p/<pubkey hex>")]
    Malformed(String),
    #[error(
        "peer address {0:?} is not a loopback address; dlp-node dials loopback only unless \
         fiber.allow_non_loopback = true"
    )]
    NotLoopback(String),
}

/// Format a peer address.
pub fn format_peer_address(addr: SocketAddr, pubkey: &Pubkey) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) => format!("/ip4/{ip}"),
        IpAddr::V6(ip) => format!("/ip6/{ip}"),
    };
    let key: String = pubkey.to_string().chars().skip(2).collect();
    format!("{ip}/tcp/{}/p2p/{key}", addr.port())
}

/// Parse a peer address into socket address and expected key. Only loopback addresses unless
/// `allow_non_loopback` (`fiber.allow_non_loopback`: a node on a private network of its own).
pub fn parse_peer_address(
    text: &str,
    allow_non_loopback: bool,
) -> Result<(SocketAddr, Pubkey), PeerAddressError> {
    let bad = || PeerAddressError::Malformed(text.to_string());
    let parts: Vec<&str> = text.split('/').collect();
    let [empty, family, ip, tcp, port, p2p, key] = parts.as_slice() else {
        return Err(bad());
    };
    if !empty.is_empty() || *tcp != "tcp" || *p2p != "p2p" || !matches!(*family, "ip4" | "ip6") {
        return Err(bad());
    }
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    if !ip.is_loopback() && !allow_non_loopback {
        return Err(PeerAddressError::NotLoopback(text.to_string()));
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    let pubkey: Pubkey = key.parse().map_err(|_| bad())?;
    Ok((SocketAddr::new(ip, port), pubkey))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_far_ones_need_the_opt_in() {
        let key: Pubkey = format!("02{}", "11".repeat(32)).parse().expect("key");
        let near = format_peer_address(SocketAddr::from(([127, 0, 0, 1], 8228)), &key);
        assert_eq!(
            near,
            format!("/ip4/127.0.0.1/tcp/8228/p2p/02{}", "11".repeat(32))
        );
        assert_eq!(
            parse_peer_address(&near, false),
            Ok((SocketAddr::from(([127, 0, 0, 1], 8228)), key))
        );
        let far = format!("/ip4/172.18.0.2/tcp/8228/p2p/02{}", "11".repeat(32));
        let err = parse_peer_address(&far, false).expect_err("refused");
        assert!(
            err.to_string().contains("fiber.allow_non_loopback"),
            "{err}"
        );
        let (addr, _) = parse_peer_address(&far, true).expect("allowed");
        assert_eq!(addr.to_string(), "172.18.0.2:8228");
        for bad in ["", "/ip4/127.0.0.1/tcp/x/p2p/00", "127.0.0.1:8228"] {
            assert!(matches!(
                parse_peer_address(bad, true),
                Err(PeerAddressError::Malformed(_))
            ));
        }
    }
}
