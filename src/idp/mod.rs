//! The identity provider: realms, keys, roles, tokens, and the OIDC, login and admin
//! endpoints. Handlers here take the transport-free request types of `crate::http` and
//! never see pingora.

pub mod admin;
pub mod app;
pub mod authn;
pub mod broker;
pub mod brute_force;
pub mod client_policies;
pub mod client_registration;
pub mod client_scopes;
pub mod console;
pub mod email;
pub mod endpoints;
pub mod events;
pub mod federation;
pub mod flows;
pub mod gateway;
pub mod hashing;
pub mod keys;
pub mod ldap;
pub mod localization;
pub mod login;
pub mod mappers;
pub mod oidc;
pub mod ops;
pub mod otp;
pub mod password_policy;
pub mod realm;
pub mod required_actions;
pub mod roles;
pub mod sessions;
pub mod tokens;
pub mod user_profile;

#[cfg(test)]
pub(crate) mod testing;

pub use app::App;
