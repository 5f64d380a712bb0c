//! The shared value parsers: every duration, bounded integer, CIDR list, header name and
//! value, host name, path and http(s) URL in the file is read by one of these, so a kind
//! of value has the same rules (and the same messages) wherever it appears.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use super::Validator;
use crate::config::raw::{RawDuration, S};
use crate::config::ConfigError;

impl Validator<'_> {
    /// A duration: a number of seconds, or a text such as `"500ms"` or `"2m"` (see
    /// [`parse_duration`]). The only place durations are read.
    pub(super) fn duration(
        &self,
        value: &S<RawDuration>,
        key: &str,
    ) -> Result<Duration, ConfigError> {
        match value.get_ref() {
            RawDuration::Seconds(s) => Ok(Duration::from_secs(*s)),
            RawDuration::Text(t) => {
                parse_duration(t).or_else(|m| self.invalid(key, value.span(), m))
            }
        }
    }

    /// An optional [`duration`](Self::duration), `default` when absent.
    pub(super) fn duration_or(
        &self,
        value: Option<S<RawDuration>>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) => self.duration(&v, key),
        }
    }

    /// An integer within `range`; outside it the error is `message(value)`. The only place
    /// integers are bounded.
    pub(super) fn int_in(
        &self,
        value: &S<i64>,
        key: &str,
        range: RangeInclusive<i64>,
        message: impl FnOnce(i64) -> String,
    ) -> Result<i64, ConfigError> {
        let n = *value.get_ref();
        if range.contains(&n) {
            Ok(n)
        } else {
            self.invalid(key, value.span(), message(n))
        }
    }

    /// An optional count within `range` (`default` when absent), refused with "must be
    /// between A and B, got N".
    pub(super) fn count_or(
        &self,
        value: Option<S<i64>>,
        key: &str,
        default: usize,
        range: RangeInclusive<i64>,
    ) -> Result<usize, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        let (low, high) = (*range.start(), *range.end());
        let n = self.int_in(&v, key, range, |n| {
            format!("must be between {low} and {high}, got {n}")
        })?;
        Ok(n as usize)
    }

    /// A list of networks (`10.0.0.0/8`) or single addresses (`::1`); `key[i]` names a bad
    /// entry.
    pub(super) fn cidrs(
        &self,
        list: Vec<S<String>>,
        key: &str,
    ) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        let mut out = Vec::new();
        for (i, v) in list.into_iter().enumerate() {
            let text = v.get_ref().trim();
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match net {
                Ok(n) => out.push(n),
                Err(_) => {
                    return self.invalid(
                        &format!("{key}[{i}]"),
                        v.span(),
                        format!("invalid CIDR \"{text}\""),
                    );
                }
            }
        }
        Ok(out)
    }

    /// A non-empty path, `default` when absent.
    pub(super) fn path_or(
        &self,
        value: Option<S<String>>,
        key: &str,
        default: &str,
    ) -> Result<PathBuf, ConfigError> {
        match value {
            None => Ok(PathBuf::from(default)),
            Some(v) if v.get_ref().trim().is_empty() => {
                self.invalid(key, v.span(), "must not be empty".into())
            }
            Some(v) => Ok(PathBuf::from(v.into_inner())),
        }
    }

    /// A table of header names to values (`key` names a bad name, `key.NAME` a bad value).
    pub(super) fn header_map(
        &self,
        map: BTreeMap<String, S<String>>,
        key: &str,
    ) -> Result<Vec<(http::HeaderName, http::HeaderValue)>, ConfigError> {
        let mut out = Vec::new();
        for (name, value) in map {
            let span = value.span();
            let Some(n) = header_name(&name) else {
                return self.invalid(key, span, format!("invalid header name \"{name}\""));
            };
            let Some(v) = header_value(value.get_ref()) else {
                return self.invalid(
                    &format!("{key}.{name}"),
                    span,
                    "invalid header value".into(),
                );
            };
            out.push((n, v));
        }
        Ok(out)
    }

    /// A list of header names; `key[i]` names a bad entry.
    pub(super) fn header_names(
        &self,
        list: Vec<S<String>>,
        key: &str,
    ) -> Result<Vec<http::HeaderName>, ConfigError> {
        let mut out = Vec::new();
        for (i, name) in list.into_iter().enumerate() {
            match header_name(name.get_ref()) {
                Some(n) => out.push(n),
                None => {
                    return self.invalid(
                        &format!("{key}[{i}]"),
                        name.span(),
                        format!("invalid header name \"{}\"", name.get_ref()),
                    )
                }
            }
        }
        Ok(out)
    }
}

/// Parse `"30s"`, `"500ms"`, `"2m"`; a bare number is seconds.
fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(value)
        .map_err(|_| format!("invalid duration \"{value}\" (examples: \"5s\", \"500ms\", \"2m\")"))
}

/// `""` disables a listener; otherwise `host:port` (names are resolved once, at start).
/// Also used for the `--http`/`--https` overrides.
pub(in crate::config) fn parse_listen(value: &str) -> Result<Option<SocketAddr>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(Some(addr));
    }
    if !value.contains(':') {
        return Err(format!(
            "invalid listen address \"{value}\" (expected host:port, e.g. 0.0.0.0:8080)"
        ));
    }
    match value.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .map(Some)
            .ok_or_else(|| format!("\"{value}\" resolves to no address")),
        Err(_) => Err(format!(
            "invalid listen address \"{value}\" (expected host:port, e.g. 0.0.0.0:8080)"
        )),
    }
}

/// A header name as written (no case folding beyond what `http` does, no trimming).
pub(super) fn header_name(text: &str) -> Option<http::HeaderName> {
    http::HeaderName::from_bytes(text.as_bytes()).ok()
}

fn header_value(text: &str) -> Option<http::HeaderValue> {
    http::HeaderValue::from_str(text).ok()
}

/// An absolute http(s) URL with a host.
pub(in crate::config) fn http_url(text: &str) -> Option<url::Url> {
    url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// `name`, `name:port`, `[v6]` or `[v6]:port`, or an IPv4 address with optional port.
pub(in crate::config) fn valid_host_and_port(text: &str) -> bool {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, tail)) if v6.parse::<std::net::Ipv6Addr>().is_ok() => {
                return tail.is_empty()
                    || tail
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok());
            }
            _ => return false,
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    port.is_none_or(|p| p.parse::<u16>().is_ok())
        && (host.parse::<std::net::Ipv4Addr>().is_ok() || valid_server_name(host))
}

/// A DNS name or a `*.` wildcard over one.
pub(in crate::config) fn valid_server_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
