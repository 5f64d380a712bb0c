//! Routing by path and method, axum-style: each path of the table lists the handlers of its
//! methods, so a handler never checks the method itself, and `405` with `Allow` (and the
//! methods a CORS pre-flight may name) comes from the table. Paths are matchit patterns
//! (`/{realm}/users/{id}`, `/{*rest}`); handlers are whatever the caller routes to (a fn
//! pointer, an enum), so this module knows no IdP.

use http::Method;

/// Paths, each with the handlers of its methods.
pub struct MethodRouter<H> {
    tree: matchit::Router<usize>,
    routes: Vec<Methods<H>>,
}

/// The handlers of one path, and its `Allow` list in table order.
struct Methods<H> {
    path: String,
    handlers: Vec<(Method, H)>,
    allow: Vec<Method>,
}

/// A path that matched: its parameters and what its methods say about this request.
pub struct Routed<'r, 'p, H> {
    pub params: matchit::Params<'r, 'p>,
    /// The handler for the request's method; `Err(allow)` when the path has none for it.
    pub handler: Result<&'r H, &'r [Method]>,
}

impl<H> Default for MethodRouter<H> {
    fn default() -> Self {
        MethodRouter::new()
    }
}

impl<H> MethodRouter<H> {
    pub fn new() -> MethodRouter<H> {
        MethodRouter {
            tree: matchit::Router::new(),
            routes: Vec::new(),
        }
    }

    /// Add a path with the handlers of its methods. A conflicting path or a method listed
    /// twice is a programming error in a static table: it is refused with an error that
    /// the table's own test turns into a failure.
    pub fn route(
        &mut self,
        path: &str,
        handlers: Vec<(Method, H)>,
    ) -> Result<&mut Self, RouteError> {
        let mut allow: Vec<Method> = Vec::with_capacity(handlers.len());
        for (method, _) in &handlers {
            if allow.contains(method) {
                return Err(RouteError(format!("{path}: {method} listed twice")));
            }
            allow.push(method.clone());
        }
        self.tree
            .insert(path, self.routes.len())
            .map_err(|e| RouteError(format!("{path}: {e}")))?;
        self.routes.push(Methods {
            path: path.to_string(),
            handlers,
            allow,
        });
        Ok(self)
    }

    /// The route for `path` and `method`; `None` when no path matches.
    pub fn at<'r, 'p>(&'r self, path: &'p str, method: &Method) -> Option<Routed<'r, 'p, H>> {
        let matched = self.tree.at(path).ok()?;
        let methods = self.routes.get(*matched.value)?;
        let handler = methods
            .handlers
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, h)| h)
            .ok_or(methods.allow.as_slice());
        Some(Routed {
            params: matched.params,
            handler,
        })
    }

    /// Every path of the table, in the order added, with the handlers of its methods (for
    /// a document generated from the table).
    pub fn routes(&self) -> impl Iterator<Item = (&str, &[(Method, H)])> {
        self.routes
            .iter()
            .map(|m| (m.path.as_str(), m.handlers.as_slice()))
    }

    /// The methods `path` answers, in table order (for a pre-flight); `None` when no path
    /// matches.
    pub fn allowed(&self, path: &str) -> Option<&[Method]> {
        let matched = self.tree.at(path).ok()?;
        self.routes.get(*matched.value).map(|m| m.allow.as_slice())
    }
}

/// A route table that does not build.
#[derive(Debug, thiserror::Error)]
#[error("route table: {0}")]
pub struct RouteError(String);

/// `GET, PUT, DELETE`: an `Allow` or `Access-Control-Allow-Methods` value.
pub fn method_list(methods: &[Method]) -> String {
    methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_pick_handlers_and_the_rest_are_listed() {
        let mut r = MethodRouter::new();
        r.route(
            "/users",
            vec![(Method::GET, "list"), (Method::POST, "create")],
        )
        .unwrap()
        .route("/users/{id}", vec![(Method::DELETE, "delete")])
        .unwrap();
        let found = r.at("/users", &Method::POST).unwrap();
        assert_eq!(found.handler.ok(), Some(&"create"));
        let found = r.at("/users/7", &Method::DELETE).unwrap();
        assert_eq!(found.params.get("id"), Some("7"));
        let refused = r.at("/users", &Method::PUT).unwrap();
        assert_eq!(
            refused.handler.err().map(method_list).as_deref(),
            Some("GET, POST")
        );
        assert!(r.at("/groups", &Method::GET).is_none());
        assert_eq!(
            r.allowed("/users/7").map(method_list).as_deref(),
            Some("DELETE")
        );
    }

    #[test]
    fn conflicts_and_repeated_methods_are_refused() {
        let mut r = MethodRouter::new();
        assert!(r
            .route("/a", vec![(Method::GET, 1), (Method::GET, 2)])
            .is_err());
        r.route("/b/{id}", vec![(Method::GET, 1)]).unwrap();
        assert!(r.route("/b/{other}", vec![(Method::GET, 2)]).is_err());
    }
}
