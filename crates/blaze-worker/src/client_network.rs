//! The network a WebSocket comes from: the hub counts the connections
//! without a user's or an admin's credential per network, so one client
//! cannot take every place of a collection (spec 10.1).

use std::net::IpAddr;

/// The network of a client address (Cloudflare's `CF-Connecting-IP`): an
/// IPv4 address itself; for IPv6 its /64, one subscriber's usual
/// allocation, so a client does not get a fresh share per address of its
/// prefix (an IPv4-mapped IPv6 address is its IPv4 address). `None` when
/// there is no header or it is not an address.
pub fn network(address: Option<&str>) -> Option<String> {
    match address?.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(v4.to_string()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Some(v4.to_string()),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                Some(format!("{a:x}:{b:x}:{c:x}:{d:x}::/64"))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(address: Option<&str>, expected: Option<&str>) {
        assert_eq!(network(address).as_deref(), expected, "{address:?}");
    }

    #[test]
    fn an_address_is_counted_by_its_network() {
        check(Some("203.0.113.66"), Some("203.0.113.66"));
        check(Some(" 127.0.0.1 "), Some("127.0.0.1"));
        check(Some("2001:db8:1:2:3:4:5:6"), Some("2001:db8:1:2::/64"));
        check(Some("2001:db8:1:2::ffff"), Some("2001:db8:1:2::/64"));
        check(Some("::1"), Some("0:0:0:0::/64"));
        check(Some("::ffff:198.51.100.7"), Some("198.51.100.7"));
        check(None, None);
        check(Some(""), None);
        check(Some("203.0.113.66, 10.0.0.1"), None);
        check(Some("localhost"), None);
    }
}
