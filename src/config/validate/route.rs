//! Validation of one `[[route]]`: host, path, methods, timeouts, body limit, header
//! rewrites and IP rules, together with its upstreams (`upstream`) and who may pass
//! (`access`).

use std::time::Duration;

use super::access;
use super::values::valid_server_name;
use super::Validator;
use crate::config::raw::{RawRoute, S};
use crate::config::{ConfigError, HostMatch, RouteConfig};

impl Validator<'_> {
    /// The route at index `i` of the file (`route[i]` in messages).
    pub(super) fn route(&self, i: usize, mut r: RawRoute) -> Result<RouteConfig, ConfigError> {
        let key = format!("route[{i}]");
        let host = match &r.host {
            None => HostMatch::Any,
            Some(h) => {
                let text = h.get_ref().trim().to_ascii_lowercase();
                if !valid_server_name(&text) {
                    return self.invalid(
                        &format!("{key}.host"),
                        h.span(),
                        format!("\"{text}\" is not a host name"),
                    );
                }
                match text.strip_prefix("*.") {
                    Some(parent) => HostMatch::Wildcard(parent.to_string()),
                    None => HostMatch::Exact(text),
                }
            }
        };
        let path_prefix = match &r.path {
            None => "/".to_string(),
            Some(p) => {
                let text = p.get_ref().clone();
                match crate::http::path::normalise(&text) {
                    Ok(n) => n.into_owned(),
                    Err(e) => {
                        return self.invalid(
                            &format!("{key}.path"),
                            p.span(),
                            format!("\"{text}\": {e}"),
                        )
                    }
                }
            }
        };
        let anchor = access::anchor(&r);
        let upstreams = match r.upstream.take() {
            Some(u) => self.upstreams(&key, u)?,
            None => Vec::new(),
        };
        let (auth, access) = self.route_access(&key, &mut r)?;
        let (upstream_tls, health_check) = self.upstream_options(&key, &mut r)?;
        let methods = self.methods(&key, std::mem::take(&mut r.methods))?;
        if upstreams.is_empty() && access.is_none() {
            return self.invalid(
                &format!("{key}.upstream"),
                anchor,
                "a route needs an upstream (only routes with auth may omit it, for forward-auth)"
                    .into(),
            );
        }
        let timeout = self.duration_or(
            r.timeout,
            &format!("{key}.timeout"),
            Duration::from_secs(60),
        )?;
        let max_body_size = match &r.max_body_size {
            None => Some(100 << 20),
            Some(v) => {
                match self.int_in(v, &format!("{key}.max_body_size"), 0..=i64::MAX, |_| {
                    "must be a number of bytes (0: no limit)".into()
                })? {
                    0 => None,
                    n => Some(n as u64),
                }
            }
        };
        let connect_timeout = self.duration_or(
            r.connect_timeout,
            &format!("{key}.connect_timeout"),
            Duration::from_secs(5),
        )?;
        let set_request_headers =
            self.header_map(r.set_request_headers, &format!("{key}.set_request_headers"))?;
        let remove_request_headers = self.header_names(
            r.remove_request_headers,
            &format!("{key}.remove_request_headers"),
        )?;
        let set_response_headers = self.header_map(
            r.set_response_headers,
            &format!("{key}.set_response_headers"),
        )?;
        let remove_response_headers = self.header_names(
            r.remove_response_headers,
            &format!("{key}.remove_response_headers"),
        )?;
        Ok(RouteConfig {
            max_body_size,
            timeout,
            connect_timeout,
            https_redirect: r.https_redirect,
            hsts: r.hsts.unwrap_or(r.https_redirect),
            set_request_headers,
            remove_request_headers,
            set_response_headers,
            remove_response_headers,
            name: r.name.unwrap_or_else(|| key.clone()),
            host,
            path_prefix,
            upstreams,
            upstream_tls,
            health_check,
            auth,
            access,
            methods,
            allow: self.cidrs(r.allow, &format!("{key}.allow"))?,
            deny: self.cidrs(r.deny, &format!("{key}.deny"))?,
            preserve_host: r.preserve_host.unwrap_or(true),
        })
    }

    /// Allowed methods (case-insensitive as written, upper-cased).
    fn methods(&self, key: &str, raw: Vec<S<String>>) -> Result<Vec<http::Method>, ConfigError> {
        let mut out = Vec::new();
        for (i, m) in raw.into_iter().enumerate() {
            let text = m.get_ref().trim().to_ascii_uppercase();
            match http::Method::from_bytes(text.as_bytes()) {
                Ok(method) if !text.is_empty() => out.push(method),
                _ => {
                    return self.invalid(
                        &format!("{key}.methods[{i}]"),
                        m.span(),
                        format!("\"{}\" is not an HTTP method", m.get_ref()),
                    )
                }
            }
        }
        Ok(out)
    }
}
