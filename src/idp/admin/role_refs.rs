//! Roles as role-mapping bodies name them (`[{id?, name?}]`) and as the mapping views list
//! them (direct, available, composite): shared by users' and groups' role mappings and
//! clients' scope mappings.

use std::collections::HashSet;

use serde::Deserialize;

use crate::store::{RoleRecord, StoreError, Txn, View as StoreView};

use super::View;

/// A role named in a mapping body.
#[derive(Deserialize, schemars::JsonSchema)]
#[schemars(rename = "RoleReference")]
pub(super) struct RoleRef {
    pub id: Option<String>,
    pub name: Option<String>,
}

impl RoleRef {
    /// The role this names in `container` (the realm's id or a client's): by id, only if
    /// it belongs there, else by name.
    pub(super) fn find(
        &self,
        read: &StoreView<impl Txn>,
        realm: &str,
        container: &str,
    ) -> Result<Option<RoleRecord>, StoreError> {
        Ok(match (&self.id, &self.name) {
            (Some(id), _) => read
                .role(realm, id)?
                .filter(|role| role.container_id == container),
            (None, Some(name)) => read.role_by_name(realm, container, name)?,
            (None, None) => None,
        })
    }

    /// How an error names it: its name, else its id.
    pub(super) fn label(&self) -> String {
        self.name.clone().or(self.id.clone()).unwrap_or_default()
    }
}

/// The roles of `container` a mapping view lists: those in `held` (direct or composite
/// views), or with `View::Available` the others.
pub(super) fn listed(
    read: &StoreView<impl Txn>,
    realm: &str,
    container: &str,
    held: &HashSet<String>,
    view: View,
) -> Result<Vec<RoleRecord>, StoreError> {
    Ok(read
        .roles(realm, container)?
        .into_iter()
        .filter(|r| held.contains(&r.id) != (view == View::Available))
        .collect())
}
