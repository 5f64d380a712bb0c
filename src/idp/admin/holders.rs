//! What protocol mappers and role scope mappings hang on: a client or a client scope. The
//! `protocol-mappers/...` and `scope-mappings/...` handlers serve both through [`Holder`].

use serde_json::Value;

use crate::idp::admin::error::AdminError;
use crate::store::{ClientRecord, ClientScopeRecord, Txn, View, Write};

use super::{Cx, Permission};

/// Which kind of record the path's `{id}` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    Client,
    ClientScope,
}

/// A loaded client or client scope.
pub(crate) enum Held {
    Client(Box<ClientRecord>),
    Scope(ClientScopeRecord),
}

impl Held {
    pub(crate) fn mappers(&self) -> &Vec<Value> {
        match self {
            Held::Client(c) => &c.protocol_mappers,
            Held::Scope(s) => &s.protocol_mappers,
        }
    }

    pub(crate) fn mappers_mut(&mut self) -> &mut Vec<Value> {
        match self {
            Held::Client(c) => &mut c.protocol_mappers,
            Held::Scope(s) => &mut s.protocol_mappers,
        }
    }

    pub(crate) fn scope_roles(&self) -> &Vec<String> {
        match self {
            Held::Client(c) => &c.scope_role_ids,
            Held::Scope(s) => &s.scope_role_ids,
        }
    }

    pub(crate) fn scope_roles_mut(&mut self) -> &mut Vec<String> {
        match self {
            Held::Client(c) => &mut c.scope_role_ids,
            Held::Scope(s) => &mut s.scope_role_ids,
        }
    }

    /// The protocol its mappers are for.
    pub(crate) fn protocol(&self) -> &str {
        match self {
            Held::Client(c) => &c.protocol,
            Held::Scope(s) => &s.protocol,
        }
    }
}

impl Holder {
    fn missing(self) -> AdminError {
        AdminError::NotFound(
            match self {
                Holder::Client => "Could not find client",
                Holder::ClientScope => "Could not find client scope",
            }
            .into(),
        )
    }

    /// The permission to read it (`manage` false) or change it.
    pub(crate) fn permission(self, manage: bool) -> Permission {
        if manage {
            Permission::ManageClients
        } else {
            Permission::ViewClients
        }
    }

    pub(crate) fn load<T: Txn>(
        self,
        read: &View<T>,
        realm_id: &str,
        id: &str,
    ) -> Result<Held, AdminError> {
        let held = match self {
            Holder::Client => read
                .client(realm_id, id)?
                .map(|c| Held::Client(Box::new(c))),
            Holder::ClientScope => read.client_scope(realm_id, id)?.map(Held::Scope),
        };
        held.ok_or_else(|| self.missing())
    }

    /// The path's holder, read after checking the caller may read (or change) it.
    pub(crate) fn of_path(self, cx: &Cx, manage: bool) -> Result<(String, Held), AdminError> {
        let realm = cx.realm(self.permission(manage))?;
        let held = self.load(&cx.app.store.read()?, &realm.id, &cx.path.id)?;
        Ok((realm.id, held))
    }

    /// Change the path's holder in one transaction.
    pub(crate) fn change<R>(
        self,
        cx: &Cx,
        change: impl FnOnce(&mut Write, &str, &mut Held) -> Result<R, AdminError>,
    ) -> Result<R, AdminError> {
        let realm = cx.realm(self.permission(true))?;
        cx.app.store.write(|w| {
            let mut held = self.load(&**w, &realm.id, &cx.path.id)?;
            let out = change(w, &realm.id, &mut held)?;
            match &held {
                Held::Client(c) => w.put_client(&realm.id, c)?,
                Held::Scope(s) => w.put_client_scope(&realm.id, s)?,
            }
            Ok(out)
        })
    }
}
