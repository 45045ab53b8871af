//! This host's addresses, and whether a ring device is on this host
//! (Swift's `whataremyips` and `is_local_device`): how the replicators and
//! the reaper find the ring devices they own.

use std::net::IpAddr;

/// This host's addresses (Swift's `whataremyips`): `ring_ip` alone when it
/// is a specific address, else every address of every interface.
pub fn whataremyips(ring_ip: &str) -> Vec<IpAddr> {
    if let Ok(ip) = ring_ip.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() {
        if !ip.is_unspecified() {
            return vec![ip];
        }
    }
    let mut out = Vec::new();
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and then free.
    unsafe {
        if libc::getifaddrs(&mut addrs) != 0 {
            return out;
        }
        let mut cur = addrs;
        while !cur.is_null() {
            let a = (*cur).ifa_addr;
            if !a.is_null() {
                match (*a).sa_family as i32 {
                    libc::AF_INET => {
                        let sin = &*(a as *const libc::sockaddr_in);
                        out.push(IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(a as *const libc::sockaddr_in6);
                        out.push(IpAddr::from(sin6.sin6_addr.s6_addr));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(addrs);
    }
    out.sort();
    out.dedup();
    out
}

/// Whether a ring device with replication address `ip:port` is on this
/// host (Swift's `is_local_device`): its address is one of ours and, unless
/// `my_port` is `None` (servers per port), its port is ours.
pub fn is_local_device(my_ips: &[IpAddr], my_port: Option<u16>, ip: &str, port: u16) -> bool {
    let Ok(ip) = ip.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>() else { return false };
    my_ips.contains(&ip) && my_port.is_none_or(|p| p == port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_devices_match_address_and_port() {
        let ips = whataremyips("127.0.0.1");
        assert_eq!(ips, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert!(is_local_device(&ips, Some(6210), "127.0.0.1", 6210));
        assert!(!is_local_device(&ips, Some(6210), "127.0.0.1", 6220), "another server on this host");
        assert!(is_local_device(&ips, None, "127.0.0.1", 6220), "servers_per_port: any port");
        assert!(!is_local_device(&ips, None, "10.1.1.1", 6210));
        assert!(!is_local_device(&ips, None, "not-an-ip", 6210));
        assert!(whataremyips("0.0.0.0").contains(&"127.0.0.1".parse().unwrap()));
    }
}
