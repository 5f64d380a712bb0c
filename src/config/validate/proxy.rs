//! Validation of `[proxy]`: the proxy-wide IP rules (trusted proxies, allow, deny), the
//! forward-auth header set and the session check interval; each `[[route]]` is checked in
//! `route`.

use std::time::Duration;

use super::Validator;
use crate::config::raw::{RawProxy, RawRoute};
use crate::config::{ConfigError, ForwardAuthHeaders, ProxyConfig};

impl Validator<'_> {
    pub(super) fn proxy(
        &self,
        raw: RawProxy,
        routes: Vec<RawRoute>,
    ) -> Result<ProxyConfig, ConfigError> {
        let mut config = ProxyConfig {
            trusted_proxies: self.cidrs(raw.trusted_proxies, "proxy.trusted_proxies")?,
            allow: self.cidrs(raw.allow, "proxy.allow")?,
            deny: self.cidrs(raw.deny, "proxy.deny")?,
            ..Default::default()
        };
        if let Some(v) = raw.forward_auth_headers {
            config.forward_auth_headers = match v.get_ref().as_str() {
                "auto" => ForwardAuthHeaders::Auto,
                "original" | "nginx" => ForwardAuthHeaders::Original,
                "forwarded" | "traefik" | "caddy" => ForwardAuthHeaders::Forwarded,
                other => {
                    return self.invalid(
                        "proxy.forward_auth_headers",
                        v.span(),
                        format!("must be \"auto\", \"original\" (nginx) or \"forwarded\" (Traefik, Caddy), got \"{other}\""),
                    )
                }
            };
        }
        if let Some(v) = raw.session_check_interval {
            config.session_check_interval = self.duration(&v, "proxy.session_check_interval")?;
            // A cached check carries a 5-minute assertion and minted tokens: it must not
            // outlive them, and a revocation must not wait long.
            if config.session_check_interval > Duration::from_secs(60) {
                return self.invalid(
                    "proxy.session_check_interval",
                    v.span(),
                    "must be at most 60s".into(),
                );
            }
        }
        for (i, r) in routes.into_iter().enumerate() {
            config.routes.push(self.route(i, r)?);
        }
        Ok(config)
    }
}
