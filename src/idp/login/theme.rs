//! Login themes: minijinja templates, static resources and message bundles. The `default`
//! theme is built into the binary; folders in `themes.dir` add themes or override files of
//! their parent (`theme.toml`: `parent = "default"`). Everything is read once at start-up.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bytes::Bytes;

/// The built-in default theme, as (path inside the theme, contents).
const DEFAULT_FILES: &[(&str, &str)] = &[
    (
        "login/base.html",
        include_str!("../../../themes/default/login/base.html"),
    ),
    (
        "login/macros.html",
        include_str!("../../../themes/default/login/macros.html"),
    ),
    (
        "login/login.html",
        include_str!("../../../themes/default/login/login.html"),
    ),
    (
        "login/login-update-password.html",
        include_str!("../../../themes/default/login/login-update-password.html"),
    ),
    (
        "login/login-update-profile.html",
        include_str!("../../../themes/default/login/login-update-profile.html"),
    ),
    (
        "login/register.html",
        include_str!("../../../themes/default/login/register.html"),
    ),
    (
        "login/login-config-totp.html",
        include_str!("../../../themes/default/login/login-config-totp.html"),
    ),
    (
        "login/login-otp.html",
        include_str!("../../../themes/default/login/login-otp.html"),
    ),
    (
        "login/error.html",
        include_str!("../../../themes/default/login/error.html"),
    ),
    (
        "login/info.html",
        include_str!("../../../themes/default/login/info.html"),
    ),
    (
        "login/device.html",
        include_str!("../../../themes/default/login/device.html"),
    ),
    (
        "login/logout-confirm.html",
        include_str!("../../../themes/default/login/logout-confirm.html"),
    ),
    (
        "login/resources/login.css",
        include_str!("../../../themes/default/login/resources/login.css"),
    ),
    (
        "login/account.html",
        include_str!("../../../themes/default/login/account.html"),
    ),
    (
        "login/login-reset-password.html",
        include_str!("../../../themes/default/login/login-reset-password.html"),
    ),
    (
        "email/html/password-reset.html",
        include_str!("../../../themes/default/email/html/password-reset.html"),
    ),
    (
        "email/text/password-reset.txt",
        include_str!("../../../themes/default/email/text/password-reset.txt"),
    ),
    (
        "email/html/execute-actions.html",
        include_str!("../../../themes/default/email/html/execute-actions.html"),
    ),
    (
        "email/text/execute-actions.txt",
        include_str!("../../../themes/default/email/text/execute-actions.txt"),
    ),
    (
        "email/html/email-verification.html",
        include_str!("../../../themes/default/email/html/email-verification.html"),
    ),
    (
        "email/text/email-verification.txt",
        include_str!("../../../themes/default/email/text/email-verification.txt"),
    ),
    (
        "email/html/identity-provider-link.html",
        include_str!("../../../themes/default/email/html/identity-provider-link.html"),
    ),
    (
        "email/text/identity-provider-link.txt",
        include_str!("../../../themes/default/email/text/identity-provider-link.txt"),
    ),
    (
        "email/html/email-test.html",
        include_str!("../../../themes/default/email/html/email-test.html"),
    ),
    (
        "email/text/email-test.txt",
        include_str!("../../../themes/default/email/text/email-test.txt"),
    ),
    (
        "admin/base.html",
        include_str!("../../../themes/default/admin/base.html"),
    ),
    (
        "admin/macros.html",
        include_str!("../../../themes/default/admin/macros.html"),
    ),
    (
        "admin/form.html",
        include_str!("../../../themes/default/admin/form.html"),
    ),
    (
        "admin/list.html",
        include_str!("../../../themes/default/admin/list.html"),
    ),
    (
        "admin/home.html",
        include_str!("../../../themes/default/admin/home.html"),
    ),
    (
        "admin/error.html",
        include_str!("../../../themes/default/admin/error.html"),
    ),
    (
        "admin/welcome.html",
        include_str!("../../../themes/default/admin/welcome.html"),
    ),
    (
        "admin/credentials.html",
        include_str!("../../../themes/default/admin/credentials.html"),
    ),
    (
        "admin/client-credentials.html",
        include_str!("../../../themes/default/admin/client-credentials.html"),
    ),
    (
        "admin/role-mapping.html",
        include_str!("../../../themes/default/admin/role-mapping.html"),
    ),
    (
        "admin/user-groups.html",
        include_str!("../../../themes/default/admin/user-groups.html"),
    ),
    (
        "admin/flow.html",
        include_str!("../../../themes/default/admin/flow.html"),
    ),
    (
        "admin/required-actions.html",
        include_str!("../../../themes/default/admin/required-actions.html"),
    ),
    (
        "admin/partial-import.html",
        include_str!("../../../themes/default/admin/partial-import.html"),
    ),
    (
        "admin/partial-export.html",
        include_str!("../../../themes/default/admin/partial-export.html"),
    ),
    (
        "admin/resources/console.css",
        include_str!("../../../themes/default/admin/resources/console.css"),
    ),
    (
        "admin/resources/console.js",
        include_str!("../../../themes/default/admin/resources/console.js"),
    ),
    (
        "messages/messages_en.json",
        include_str!("../../../themes/default/messages/messages_en.json"),
    ),
    (
        "messages/messages_de.json",
        include_str!("../../../themes/default/messages/messages_de.json"),
    ),
];

pub const DEFAULT_THEME: &str = "default";
pub const DEFAULT_LOCALE: &str = "en";

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("theme {theme}: {message}")]
    Invalid { theme: String, message: String },
    #[error("cannot render {template}: {message}")]
    Render { template: String, message: String },
}

/// One resolved theme: every file of its chain, child files winning.
struct Theme {
    env: minijinja::Environment<'static>,
    resources: HashMap<String, Bytes>,
    /// locale → key → text (English filled in where a locale lacks a key).
    messages: HashMap<String, BTreeMap<String, String>>,
}

/// All themes, by name.
pub struct Themes {
    themes: HashMap<String, Theme>,
}

#[derive(serde::Deserialize, Default)]
struct ThemeToml {
    #[serde(default)]
    parent: Option<String>,
}

/// A theme as found: its parent and its files (relative path → contents).
type RawTheme = (Option<String>, BTreeMap<String, Vec<u8>>);

/// The files of one theme folder (relative path → contents).
fn read_dir_files(root: &Path) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                out.insert(rel.to_string_lossy().replace('\\', "/"), bytes);
            }
        }
    }
    Ok(out)
}

impl Themes {
    /// Only the built-in default theme.
    pub fn builtin() -> Themes {
        Themes::load(None).unwrap_or_else(|_| Themes {
            themes: HashMap::new(),
        })
    }

    /// The built-in default plus every theme folder in `dir` (a missing dir is fine).
    pub fn load(dir: Option<&Path>) -> Result<Themes, ThemeError> {
        let mut raw: BTreeMap<String, RawTheme> = BTreeMap::new();
        let builtin: BTreeMap<String, Vec<u8>> = DEFAULT_FILES
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect();
        raw.insert(DEFAULT_THEME.into(), (None, builtin));
        if let Some(dir) = dir.filter(|d| d.is_dir()) {
            let entries = std::fs::read_dir(dir).map_err(|e| ThemeError::Invalid {
                theme: dir.display().to_string(),
                message: e.to_string(),
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                if !path.is_dir() {
                    continue;
                }
                let name = entry.file_name().to_string_lossy().to_string();
                let invalid = |message: String| ThemeError::Invalid {
                    theme: name.clone(),
                    message,
                };
                let files = read_dir_files(&path).map_err(invalid)?;
                let meta: ThemeToml = match files.get("theme.toml") {
                    Some(bytes) => toml::from_str(&String::from_utf8_lossy(bytes))
                        .map_err(|e| invalid(e.to_string()))?,
                    None => ThemeToml::default(),
                };
                let parent = meta.parent.filter(|p| !p.is_empty());
                if name == DEFAULT_THEME {
                    // Overrides of the built-in default.
                    if let Some((_, base)) = raw.get_mut(DEFAULT_THEME) {
                        base.extend(files);
                    }
                } else {
                    raw.insert(name, (parent.or_else(|| Some(DEFAULT_THEME.into())), files));
                }
            }
        }
        let mut themes = HashMap::new();
        for name in raw.keys() {
            let mut chain = vec![name.clone()];
            let mut current = raw.get(name).and_then(|(p, _)| p.clone());
            while let Some(parent) = current {
                if chain.contains(&parent) {
                    return Err(ThemeError::Invalid {
                        theme: name.clone(),
                        message: "parent chain loops".into(),
                    });
                }
                let Some((grand, _)) = raw.get(&parent) else {
                    return Err(ThemeError::Invalid {
                        theme: name.clone(),
                        message: format!("unknown parent theme {parent}"),
                    });
                };
                chain.push(parent.clone());
                current = grand.clone();
            }
            // Merge from the root of the chain down, so children win.
            let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            let mut messages: HashMap<String, BTreeMap<String, String>> = HashMap::new();
            for theme in chain.iter().rev() {
                if let Some((_, f)) = raw.get(theme) {
                    for (path, bytes) in f {
                        if let Some(locale) = path
                            .strip_prefix("messages/messages_")
                            .and_then(|p| p.strip_suffix(".json"))
                        {
                            let map: BTreeMap<String, String> = serde_json::from_slice(bytes)
                                .map_err(|e| ThemeError::Invalid {
                                    theme: theme.clone(),
                                    message: format!("{path}: {e}"),
                                })?;
                            messages.entry(locale.to_string()).or_default().extend(map);
                        } else {
                            files.insert(path.clone(), bytes.clone());
                        }
                    }
                }
            }
            let english = messages.get(DEFAULT_LOCALE).cloned().unwrap_or_default();
            for (locale, map) in messages.iter_mut() {
                if locale != DEFAULT_LOCALE {
                    for (k, v) in &english {
                        map.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            let mut env = minijinja::Environment::new();
            let mut resources = HashMap::new();
            for (path, bytes) in files {
                if let Some(resource) = path.strip_prefix("login/resources/") {
                    resources.insert(format!("login/{resource}"), Bytes::from(bytes));
                } else if let Some(resource) = path.strip_prefix("admin/resources/") {
                    resources.insert(format!("admin/{resource}"), Bytes::from(bytes));
                } else if path.ends_with(".html") || path.ends_with(".txt") {
                    let source = String::from_utf8(bytes).map_err(|_| ThemeError::Invalid {
                        theme: name.clone(),
                        message: format!("{path} is not UTF-8"),
                    })?;
                    env.add_template_owned(path.clone(), source).map_err(|e| {
                        ThemeError::Invalid {
                            theme: name.clone(),
                            message: format!("{path}: {e}"),
                        }
                    })?;
                }
            }
            themes.insert(
                name.clone(),
                Theme {
                    env,
                    resources,
                    messages,
                },
            );
        }
        Ok(Themes { themes })
    }

    fn theme(&self, name: Option<&str>) -> Option<&Theme> {
        name.and_then(|n| self.themes.get(n))
            .or_else(|| self.themes.get(DEFAULT_THEME))
    }

    /// The message bundle for a locale (English when the theme lacks it).
    /// The names of the themes found, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.themes.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn messages(&self, theme: Option<&str>, locale: &str) -> BTreeMap<String, String> {
        self.theme(theme)
            .and_then(|t| {
                t.messages
                    .get(locale)
                    .or_else(|| t.messages.get(DEFAULT_LOCALE))
            })
            .cloned()
            .unwrap_or_default()
    }

    /// Whether a theme has messages for `locale`.
    pub fn has_locale(&self, theme: Option<&str>, locale: &str) -> bool {
        self.theme(theme)
            .is_some_and(|t| t.messages.contains_key(locale))
    }

    /// Render `template` (e.g. `login/login.html`) with `context`.
    pub fn render(
        &self,
        theme: Option<&str>,
        template: &str,
        context: minijinja::Value,
    ) -> Result<String, ThemeError> {
        let t = self.theme(theme).ok_or_else(|| ThemeError::Render {
            template: template.into(),
            message: "no theme".into(),
        })?;
        let tmpl = t
            .env
            .get_template(template)
            .map_err(|e| ThemeError::Render {
                template: template.into(),
                message: e.to_string(),
            })?;
        tmpl.render(context).map_err(|e| ThemeError::Render {
            template: template.into(),
            message: e.to_string(),
        })
    }

    /// A static resource: `/resources/{theme}/{path}`.
    pub fn resource(&self, theme: &str, path: &str) -> Option<(Bytes, &'static str)> {
        let t = self.themes.get(theme)?;
        let bytes = t.resources.get(path)?.clone();
        let content_type = match path.rsplit('.').next() {
            Some("css") => "text/css; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("png") => "image/png",
            Some("ico") => "image/x-icon",
            Some("woff2") => "font/woff2",
            _ => "application/octet-stream",
        };
        Some((bytes, content_type))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn builtin_default_renders_and_escapes() {
        let themes = Themes::builtin();
        let msg = themes.messages(None, "en");
        let html = themes
            .render(
                None,
                "login/login.html",
                context! {
                    locale => "en", realm_name => "r", realm_display_name => "R", resources_url => "/resources/default",
                    msg => msg, action_url => "/a?b=1", csrf_token => "tok", username => "<script>",
                    error => "Invalid username or password.", login_with_email_allowed => true,
                },
            )
            .unwrap();
        assert!(html.contains("id=\"kc-form-login\""));
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(themes.resource("default", "login/login.css").is_some());
        assert!(themes.resource("default", "../theme.toml").is_none());
    }

    #[test]
    fn a_custom_theme_overrides_and_inherits() {
        let dir = tempfile::tempdir().unwrap();
        let custom = dir.path().join("brand");
        std::fs::create_dir_all(custom.join("login/resources")).unwrap();
        std::fs::create_dir_all(custom.join("messages")).unwrap();
        std::fs::write(custom.join("theme.toml"), "parent = \"default\"\n").unwrap();
        std::fs::write(custom.join("login/resources/login.css"), "body{color:red}").unwrap();
        std::fs::write(
            custom.join("messages/messages_en.json"),
            r#"{"loginTitle": "Welcome to Brand"}"#,
        )
        .unwrap();
        let themes = Themes::load(Some(dir.path())).unwrap();
        assert_eq!(
            themes.messages(Some("brand"), "en")["loginTitle"],
            "Welcome to Brand"
        );
        assert_eq!(themes.messages(Some("brand"), "en")["password"], "Password");
        assert_eq!(themes.messages(Some("brand"), "de")["password"], "Passwort");
        assert_eq!(
            themes
                .resource("brand", "login/login.css")
                .unwrap()
                .0
                .as_ref(),
            b"body{color:red}"
        );
        // Templates are inherited from the default theme.
        let html = themes
            .render(
                Some("brand"),
                "login/info.html",
                context! { msg => themes.messages(Some("brand"), "en"), message => "hi" },
            )
            .unwrap();
        assert!(html.contains("hi"));
        // An unknown theme falls back to the default.
        assert!(themes
            .render(
                Some("nope"),
                "login/info.html",
                context! { msg => themes.messages(None, "en"), message => "x" }
            )
            .is_ok());
    }

    #[test]
    fn broken_theme_is_a_named_error() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad");
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(bad.join("theme.toml"), "parent = \"missing\"\n").unwrap();
        let e = Themes::load(Some(dir.path())).err().unwrap();
        assert!(
            e.to_string()
                .contains("theme bad: unknown parent theme missing"),
            "{e}"
        );
    }
}
