//! An LDAP provider's mappers (its `LDAPStorageMapper` sub-components): which directory
//! attribute feeds which user field or attribute, which of them are read-only, how a full
//! name splits, the groups and roles read from the directory, the roles and groups every
//! imported user gets, and Active Directory's account controls. Also the mappers Keycloak
//! creates with a new provider.

use serde_json::{json, Value};

use super::filter::valid_attribute;
use super::{first, MAPPER_TYPE};

/// `user-attribute-ldap-mapper`: one directory attribute, one user field or attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeMapper {
    /// `username`, `email`, `firstName`, `lastName`, or a user attribute's name.
    pub model: String,
    pub ldap: String,
    pub read_only: bool,
    pub mandatory: bool,
    pub binary: bool,
    /// Written when the user has no value and the attribute is mandatory.
    pub default_value: Option<String>,
}

/// `full-name-ldap-mapper`: one attribute (`cn`) holding "first last".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullNameMapper {
    pub ldap: String,
    pub read_only: bool,
    pub write_only: bool,
}

/// What a membership mapper fills: groups (under a path) or roles (realm or a client's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Groups {
        /// The local group the directory's groups go under (`/` is the top).
        path: String,
        preserve_inheritance: bool,
    },
    Roles {
        /// `None`: realm roles.
        client_id: Option<String>,
    },
}

/// How a membership mapper keeps memberships.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Memberships follow the directory: added and removed at every login and sync.
    ReadOnly,
    /// Memberships are imported and then kept locally.
    Import,
}

/// `group-ldap-mapper` / `role-ldap-mapper`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipMapper {
    pub id: String,
    pub name: String,
    pub target: Target,
    /// Where the groups (or roles) are, their name attribute, classes and extra filter.
    pub dn: String,
    pub name_attribute: String,
    pub object_classes: Vec<String>,
    pub filter: Option<String>,
    /// The group attribute naming its members (`member`, `uniqueMember`, `memberUid`).
    pub member_attribute: String,
    /// Members named by DN, or by the user attribute `member_user_attribute` (`UID`).
    pub member_by_dn: bool,
    pub member_user_attribute: String,
    pub mode: Mode,
    /// `GET_GROUPS_FROM_USER_MEMBEROF_ATTRIBUTE`: the user's `memberOf` lists them.
    pub member_of: Option<String>,
}

/// Every mapper of a provider, read from its sub-components.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mappers {
    pub attributes: Vec<AttributeMapper>,
    pub full_name: Option<FullNameMapper>,
    pub memberships: Vec<MembershipMapper>,
    /// `hardcoded-ldap-role-mapper`: role names (`client.role` for a client's).
    pub hardcoded_roles: Vec<String>,
    /// `hardcoded-ldap-group-mapper`: group paths.
    pub hardcoded_groups: Vec<String>,
    /// `hardcoded-ldap-attribute-mapper`: an attribute written on new entries.
    pub hardcoded_attributes: Vec<(String, String)>,
    /// `msad-user-account-control-mapper`.
    pub msad: bool,
}

fn flag(c: &Value, key: &str, default: bool) -> bool {
    first(c, key).map(|v| v == "true").unwrap_or(default)
}

fn list(c: &Value, key: &str, default: &str) -> Vec<String> {
    first(c, key)
        .unwrap_or(default)
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The attribute named by `key` if it is a valid name (`None` drops the mapper).
fn attribute(c: &Value, key: &str, default: Option<&str>) -> Option<String> {
    let a = first(c, key).or(default)?;
    valid_attribute(a).then(|| a.to_string())
}

impl Mappers {
    /// Read `components` (the provider's sub-components). A provider without attribute
    /// mappers (stored before they were created with it) reads Keycloak's defaults.
    pub fn from_components(components: &[&Value], username_attribute: &str) -> Mappers {
        let mut m = Mappers::default();
        for c in components {
            if c.get("providerType").and_then(Value::as_str) != Some(MAPPER_TYPE) {
                continue;
            }
            let id = c.get("id").and_then(Value::as_str).unwrap_or_default();
            let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
            match c.get("providerId").and_then(Value::as_str).unwrap_or("") {
                "user-attribute-ldap-mapper" | "certificate-ldap-mapper" => {
                    let (Some(model), Some(ldap)) = (
                        first(c, "user.model.attribute"),
                        attribute(c, "ldap.attribute", None),
                    ) else {
                        continue;
                    };
                    m.attributes.push(AttributeMapper {
                        model: model.to_string(),
                        ldap,
                        read_only: flag(c, "read.only", true),
                        mandatory: flag(c, "is.mandatory.in.ldap", false),
                        binary: flag(c, "is.binary.attribute", false),
                        default_value: first(c, "attribute.default.value").map(str::to_string),
                    });
                }
                "full-name-ldap-mapper" => {
                    if let Some(ldap) = attribute(c, "ldap.full.name.attribute", Some("cn")) {
                        m.full_name = Some(FullNameMapper {
                            ldap,
                            read_only: flag(c, "read.only", true),
                            write_only: flag(c, "write.only", false),
                        });
                    }
                }
                kind @ ("group-ldap-mapper" | "role-ldap-mapper") => {
                    let groups = kind == "group-ldap-mapper";
                    let (dn_key, name_key, class_key, filter_key) = if groups {
                        (
                            "groups.dn",
                            "group.name.ldap.attribute",
                            "group.object.classes",
                            "groups.ldap.filter",
                        )
                    } else {
                        (
                            "roles.dn",
                            "role.name.ldap.attribute",
                            "role.object.classes",
                            "roles.ldap.filter",
                        )
                    };
                    let (Some(dn), Some(name_attribute), Some(member_attribute)) = (
                        first(c, dn_key),
                        attribute(c, name_key, Some("cn")),
                        attribute(c, "membership.ldap.attribute", Some("member")),
                    ) else {
                        continue;
                    };
                    let target = if groups {
                        Target::Groups {
                            path: first(c, "groups.path").unwrap_or("/").to_string(),
                            preserve_inheritance: flag(c, "preserve.group.inheritance", true),
                        }
                    } else {
                        // A client's roles without a client: dropped, never the realm's.
                        let client_id = match (
                            flag(c, "use.realm.roles.mapping", true),
                            first(c, "client.id"),
                        ) {
                            (true, _) => None,
                            (false, Some(client)) => Some(client.to_string()),
                            (false, None) => continue,
                        };
                        Target::Roles { client_id }
                    };
                    let member_of = (first(c, "user.roles.retrieve.strategy")
                        == Some("GET_GROUPS_FROM_USER_MEMBEROF_ATTRIBUTE")
                        || first(c, "user.roles.retrieve.strategy")
                            == Some("GET_ROLES_FROM_USER_MEMBEROF_ATTRIBUTE"))
                    .then(|| attribute(c, "memberof.ldap.attribute", Some("memberOf")))
                    .flatten();
                    m.memberships.push(MembershipMapper {
                        id: id.to_string(),
                        name: name.to_string(),
                        target,
                        dn: dn.to_string(),
                        name_attribute,
                        object_classes: list(c, class_key, "groupOfNames"),
                        filter: first(c, filter_key).map(str::to_string),
                        member_attribute,
                        member_by_dn: first(c, "membership.attribute.type") != Some("UID"),
                        member_user_attribute: attribute(
                            c,
                            "membership.user.ldap.attribute",
                            Some(username_attribute),
                        )
                        .unwrap_or_else(|| username_attribute.to_string()),
                        mode: if first(c, "mode") == Some("IMPORT") {
                            Mode::Import
                        } else {
                            Mode::ReadOnly
                        },
                        member_of,
                    });
                }
                "hardcoded-ldap-role-mapper" => {
                    if let Some(role) = first(c, "role") {
                        m.hardcoded_roles.push(role.to_string());
                    }
                }
                "hardcoded-ldap-group-mapper" => {
                    if let Some(group) = first(c, "group") {
                        m.hardcoded_groups.push(group.to_string());
                    }
                }
                "hardcoded-ldap-attribute-mapper" => {
                    if let (Some(a), Some(v)) = (
                        attribute(c, "ldap.attribute.name", None),
                        first(c, "ldap.attribute.value"),
                    ) {
                        m.hardcoded_attributes.push((a, v.to_string()));
                    }
                }
                "msad-user-account-control-mapper" | "msad-lds-user-account-control-mapper" => {
                    m.msad = true
                }
                _ => {}
            }
        }
        if m.attributes.is_empty() {
            let read = |model: &str, ldap: &str| AttributeMapper {
                model: model.into(),
                ldap: ldap.into(),
                read_only: true,
                mandatory: false,
                binary: false,
                default_value: None,
            };
            m.attributes = vec![
                read("username", username_attribute),
                read("firstName", "givenName"),
                read("lastName", "sn"),
                read("email", "mail"),
            ];
        }
        m
    }

    /// The directory attributes a user search reads for these mappers.
    pub fn read_attributes(&self) -> Vec<String> {
        let mut a: Vec<String> = self.attributes.iter().map(|m| m.ldap.clone()).collect();
        if let Some(f) = self.full_name.as_ref().filter(|f| !f.write_only) {
            a.push(f.ldap.clone());
        }
        for m in &self.memberships {
            a.extend(m.member_of.clone());
            if !m.member_by_dn {
                a.push(m.member_user_attribute.clone());
            }
        }
        if self.msad {
            a.extend(["userAccountControl".into(), "pwdLastSet".into()]);
        }
        a
    }

    /// The user fields and attributes the directory owns: what a change must go to the
    /// directory for (or is refused for, read-only).
    pub fn mapped_fields(&self) -> Vec<&str> {
        let mut f: Vec<&str> = self.attributes.iter().map(|m| m.model.as_str()).collect();
        if let Some(full) = &self.full_name {
            if !full.write_only {
                f.extend(["firstName", "lastName"]);
            }
        }
        f.sort();
        f.dedup();
        f
    }

    /// Of [`Mappers::mapped_fields`], the ones a WRITABLE provider still keeps read-only.
    pub fn read_only_fields(&self) -> Vec<&str> {
        let mut f: Vec<&str> = self
            .attributes
            .iter()
            .filter(|m| m.read_only)
            .map(|m| m.model.as_str())
            .collect();
        if self
            .full_name
            .as_ref()
            .is_some_and(|full| full.read_only && !full.write_only)
        {
            f.extend(["firstName", "lastName"]);
        }
        f.sort();
        f.dedup();
        f
    }
}

/// A full name split as Keycloak splits it: the last word is the last name.
pub fn split_full_name(full: &str) -> (Option<String>, Option<String>) {
    let full = full.trim();
    match full.rfind(' ') {
        None if full.is_empty() => (None, None),
        None => (None, Some(full.to_string())),
        Some(i) => (
            Some(full[..i].trim().to_string()),
            Some(full[i + 1..].to_string()),
        ),
    }
}

/// The mappers Keycloak creates with an LDAP provider, as sub-components of `provider`
/// (username, first name, last name, e-mail, creation and modification dates; Active
/// Directory adds its account controls, and with `sAMAccountName` usernames a full name
/// in `cn`). Ids are the caller's to give.
pub fn default_mappers(provider: &Value) -> Vec<Value> {
    let parent = provider.get("id").cloned().unwrap_or(Value::Null);
    let username = first(provider, "usernameLDAPAttribute").unwrap_or("uid");
    let ad = first(provider, "vendor") == Some("ad");
    let read_only = (first(provider, "editMode") != Some("WRITABLE")).to_string();
    let attribute = |name: &str,
                     model: &str,
                     ldap: &str,
                     always: bool,
                     mandatory: bool,
                     ro: &str| {
        json!({"name": name, "providerId": "user-attribute-ldap-mapper",
            "providerType": MAPPER_TYPE, "parentId": parent,
            "config": {"user.model.attribute": [model], "ldap.attribute": [ldap],
                       "read.only": [ro], "always.read.value.from.ldap": [always.to_string()],
                       "is.mandatory.in.ldap": [mandatory.to_string()], "is.binary.attribute": ["false"]}})
    };
    let mut out = vec![attribute(
        "username", "username", username, false, true, &read_only,
    )];
    if ad && username.eq_ignore_ascii_case("sAMAccountName") {
        out.push(
            json!({"name": "full name", "providerId": "full-name-ldap-mapper",
            "providerType": MAPPER_TYPE, "parentId": parent,
            "config": {"ldap.full.name.attribute": ["cn"], "read.only": [read_only],
                       "write.only": ["true"]}}),
        );
    }
    out.extend([
        attribute(
            "first name",
            "firstName",
            "givenName",
            true,
            false,
            &read_only,
        ),
        attribute("last name", "lastName", "sn", true, !ad, &read_only),
        attribute("email", "email", "mail", false, false, &read_only),
        attribute(
            "creation date",
            "createTimestamp",
            if ad { "whenCreated" } else { "createTimestamp" },
            true,
            false,
            "true",
        ),
        attribute(
            "modify date",
            "modifyTimestamp",
            if ad { "whenChanged" } else { "modifyTimestamp" },
            true,
            false,
            "true",
        ),
    ]);
    if ad {
        out.push(json!({"name": "MSAD account controls",
            "providerId": "msad-user-account-control-mapper", "providerType": MAPPER_TYPE,
            "parentId": parent, "config": {}}));
    }
    out
}

/// The mapper types an LDAP provider offers (`components/{id}/sub-component-types`).
pub const MAPPER_TYPES: &[(&str, &str)] = &[
    (
        "user-attribute-ldap-mapper",
        "Used to map single attribute from LDAP user to attribute of UserModel in Keycloak DB",
    ),
    (
        "full-name-ldap-mapper",
        "Used to map full-name of user from single attribute in LDAP (usually 'cn' attribute) to firstName and lastName attributes of UserModel in Keycloak DB",
    ),
    (
        "group-ldap-mapper",
        "Used to map group mappings of groups from some LDAP DN to Keycloak group mappings",
    ),
    (
        "role-ldap-mapper",
        "Used to map role mappings of roles from some LDAP DN to Keycloak role mappings of either realm roles or client roles of particular client",
    ),
    (
        "hardcoded-ldap-role-mapper",
        "When user is imported from provider, hardcode role mapping for it.",
    ),
    (
        "hardcoded-ldap-group-mapper",
        "When user is imported from provider, hardcode group mapping for it.",
    ),
    (
        "hardcoded-ldap-attribute-mapper",
        "This mapper will hardcode any model user attribute and some property (like emailVerified or enabled) when importing user from ldap.",
    ),
    (
        "msad-user-account-control-mapper",
        "Mapper specific to MSAD. It's able to integrate the MSAD user account state into Keycloak account state (account enabled, password is expired etc).",
    ),
    (
        "certificate-ldap-mapper",
        "Used to map single attribute which contains a certificate from LDAP user to attribute of UserModel in Keycloak DB",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names_split_at_the_last_space() {
        assert_eq!(
            split_full_name("Anna Maria Lopez"),
            (Some("Anna Maria".into()), Some("Lopez".into()))
        );
        assert_eq!(split_full_name("Cher"), (None, Some("Cher".into())));
        assert_eq!(split_full_name("  "), (None, None));
    }

    #[test]
    fn mappers_are_read_from_sub_components() {
        let c = |provider: &str, config: Value| {
            json!({"id": provider, "name": provider, "providerId": provider,
                   "providerType": MAPPER_TYPE, "config": config})
        };
        let list = [
            c(
                "user-attribute-ldap-mapper",
                json!({"user.model.attribute": ["phone"], "ldap.attribute": ["telephoneNumber"],
                       "read.only": ["false"]}),
            ),
            c(
                "user-attribute-ldap-mapper",
                json!({"user.model.attribute": ["x"], "ldap.attribute": ["bad)(attr"]}),
            ),
            c(
                "group-ldap-mapper",
                json!({"groups.dn": ["ou=groups,dc=x"], "membership.attribute.type": ["UID"],
                       "membership.ldap.attribute": ["memberUid"], "mode": ["IMPORT"]}),
            ),
            c("msad-user-account-control-mapper", json!({})),
            json!({"providerId": "rsa", "providerType": "org.keycloak.keys.KeyProvider"}),
        ];
        let refs: Vec<&Value> = list.iter().collect();
        let m = Mappers::from_components(&refs, "uid");
        assert_eq!(
            m.attributes.len(),
            1,
            "the invalid attribute name is dropped"
        );
        assert_eq!(m.mapped_fields(), ["phone"]);
        assert!(m.read_only_fields().is_empty());
        let g = &m.memberships[0];
        assert_eq!(
            (
                g.member_by_dn,
                g.member_user_attribute.as_str(),
                g.mode,
                g.object_classes.clone()
            ),
            (false, "uid", Mode::Import, vec!["groupOfNames".to_string()])
        );
        assert!(m.msad);
        assert!(m
            .read_attributes()
            .contains(&"userAccountControl".to_string()));
        // Without attribute mappers, Keycloak's default attributes are read.
        let none = Mappers::from_components(&[], "cn");
        assert_eq!(
            none.mapped_fields(),
            ["email", "firstName", "lastName", "username"]
        );
    }

    #[test]
    fn active_directory_gets_its_own_defaults() {
        let ad = json!({"id": "p", "config": {"vendor": ["ad"], "usernameLDAPAttribute": ["sAMAccountName"],
                        "editMode": ["WRITABLE"]}});
        let m = default_mappers(&ad);
        let names: Vec<&str> = m.iter().filter_map(|c| c["name"].as_str()).collect();
        assert!(names.contains(&"MSAD account controls") && names.contains(&"full name"));
        let created = m.iter().find(|c| c["name"] == "creation date").unwrap();
        assert_eq!(created["config"]["ldap.attribute"], json!(["whenCreated"]));
        assert_eq!(m[0]["config"]["read.only"], json!(["false"]));
    }
}
