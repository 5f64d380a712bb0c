//! In-process tests of the console: sign-in, CSRF, screens, escaping.
