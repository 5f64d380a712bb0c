//! A set of CIDR blocks answering "does any block contain this address?" in at most one
//! hash lookup per distinct prefix length (33 for IPv4, 129 for IPv6), however many blocks
//! there are: allow-lists of thousands of networks stay cheap on every request. IPv4-mapped
//! IPv6 addresses (`::ffff:192.0.2.1`) are looked up as IPv4.

use std::collections::HashSet;
use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct CidrSet {
    /// (prefix length, networks with that prefix), longest prefixes first.
    v4: Vec<(u8, HashSet<u32>)>,
    v6: Vec<(u8, HashSet<u128>)>,
}

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl CidrSet {
    pub fn new(nets: &[ipnet::IpNet]) -> CidrSet {
        let mut set = CidrSet::default();
        for net in nets {
            match net {
                ipnet::IpNet::V4(n) => {
                    let len = n.prefix_len();
                    let bits = u32::from(n.network()) & mask4(len);
                    match set.v4.iter_mut().find(|(l, _)| *l == len) {
                        Some((_, s)) => {
                            s.insert(bits);
                        }
                        None => set.v4.push((len, HashSet::from([bits]))),
                    }
                }
                ipnet::IpNet::V6(n) => {
                    let len = n.prefix_len();
                    let bits = u128::from(n.network()) & mask6(len);
                    match set.v6.iter_mut().find(|(l, _)| *l == len) {
                        Some((_, s)) => {
                            s.insert(bits);
                        }
                        None => set.v6.push((len, HashSet::from([bits]))),
                    }
                }
            }
        }
        set.v4.sort_by_key(|e| std::cmp::Reverse(e.0));
        set.v6.sort_by_key(|e| std::cmp::Reverse(e.0));
        set
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                self.v4
                    .iter()
                    .any(|(len, s)| s.contains(&(bits & mask4(*len))))
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                self.v6
                    .iter()
                    .any(|(len, s)| s.contains(&(bits & mask6(*len))))
            }
        }
    }
}

/// Whether `ip` passes an allow list (empty = everyone) and a deny list.
pub fn permitted(ip: IpAddr, allow: &CidrSet, deny: &CidrSet) -> bool {
    (allow.is_empty() || allow.contains(ip)) && !deny.contains(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(list: &[&str]) -> CidrSet {
        CidrSet::new(&list.iter().map(|s| s.parse().unwrap()).collect::<Vec<_>>())
    }

    #[test]
    fn blocks_of_every_length_match_like_a_linear_scan() {
        let nets = [
            "10.0.0.0/8",
            "192.0.2.0/24",
            "198.51.100.7/32",
            "0.0.0.0/0",
            "2001:db8::/32",
            "2001:db8:1::1/128",
            "::/0",
        ];
        let parsed: Vec<ipnet::IpNet> = nets.iter().map(|s| s.parse().unwrap()).collect();
        for n in 0..parsed.len() {
            let subset = &parsed[n..];
            let s = CidrSet::new(subset);
            for ip in [
                "10.1.2.3",
                "11.0.0.1",
                "192.0.2.255",
                "192.0.3.0",
                "198.51.100.7",
                "198.51.100.8",
                "2001:db8::5",
                "2001:db9::1",
                "2001:db8:1::1",
                "::ffff:10.0.0.1",
            ] {
                let ip: IpAddr = ip.parse().unwrap();
                let mapped = match ip {
                    IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
                    v4 => v4,
                };
                let linear = subset.iter().any(|n| n.contains(&mapped));
                assert_eq!(s.contains(ip), linear, "{ip} in {subset:?}");
            }
        }
        assert!(permitted(
            "192.0.2.1".parse().unwrap(),
            &set(&[]),
            &set(&[])
        ));
        assert!(!permitted(
            "192.0.2.66".parse().unwrap(),
            &set(&["192.0.2.0/24"]),
            &set(&["192.0.2.66/32"])
        ));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn net4() -> impl Strategy<Value = ipnet::IpNet> {
        (any::<u32>(), 0u8..=32).prop_map(|(a, len)| {
            ipnet::IpNet::V4(
                ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(a), len)
                    .unwrap()
                    .trunc(),
            )
        })
    }

    fn net6() -> impl Strategy<Value = ipnet::IpNet> {
        (any::<u128>(), 0u8..=128).prop_map(|(a, len)| {
            ipnet::IpNet::V6(
                ipnet::Ipv6Net::new(std::net::Ipv6Addr::from(a), len)
                    .unwrap()
                    .trunc(),
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The compiled set answers exactly as checking each network in turn does, for
        /// addresses inside, next to and far from the networks.
        #[test]
        fn a_set_contains_what_its_networks_contain(
            nets in proptest::collection::vec(prop_oneof![net4(), net6()], 0..8),
            probes in proptest::collection::vec(prop_oneof![
                any::<u32>().prop_map(|a| IpAddr::from(std::net::Ipv4Addr::from(a))),
                any::<u128>().prop_map(|a| IpAddr::from(std::net::Ipv6Addr::from(a))),
            ], 1..8),
        ) {
            let set = CidrSet::new(&nets);
            let mut addresses = probes;
            for n in &nets {
                addresses.push(n.network());
                addresses.push(n.broadcast());
            }
            for ip in addresses {
                let naive = nets.iter().any(|n| n.contains(&ip));
                prop_assert_eq!(set.contains(ip), naive, "{} in {:?}", ip, nets);
            }
            prop_assert_eq!(set.is_empty(), nets.is_empty());
        }
    }
}
