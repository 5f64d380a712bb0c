//! Portcullis: a Keycloak-compatible identity provider and an identity-aware reverse proxy
//! in one binary. `main.rs` is only the command line; everything else lives here so that
//! tests and benches use the same code the server runs.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod apply;
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod control;
pub mod crypto;
pub mod http;
pub mod idp;
pub mod import_export;
pub mod kcadm;
pub mod kcsh;
pub mod logging;
pub mod metrics;
pub mod proxy;
pub mod server;
pub mod store;
pub mod tls;

#[cfg(test)]
mod layering;
