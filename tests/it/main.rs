//! End-to-end tests: the real `portcullis` binary on free loopback ports, driven over HTTP
//! and HTTPS by real clients. One test binary (modules below) keeps build time low.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// A test or bench binary exports nothing: `pub` in its modules is for its own files.
#![allow(unreachable_pub)]

mod account;
mod admin;
mod api;
mod broker;
mod browser;
mod clients;
mod cluster;
mod console;
mod crash;
mod disk;
mod faults;
mod harness;
mod kcadm;
mod ldap;

mod forward_auth;
mod foundation;
mod gateway;
mod grants;
mod mail;
mod oidc;
mod openapi;
mod proxy;
mod security;
mod transfer;
