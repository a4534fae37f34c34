//! Requests are read strictly: a query parameter is refused unless the endpoint declares it.
//! Endpoints with query parameters read them through `ApiQuery`, which refuses unknown ones;
//! this layer covers the endpoints that declare none, which would otherwise ignore them (a
//! `POST /v1/payments?dry_run=true` recorded a real payment). The list comes from the OpenAPI
//! document, so a new endpoint is covered by declaring its parameters, as it must anyway.
//!
//! Authorization comes first: an operation's `x-permission` (in the same document) is checked
//! before its body or query is read ([`authorize_first`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use riskdesk_domain::Permission;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{OpenApi, RefOr};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::authenticate;

/// Every operation of the document: (path template, method, operation).
fn operations(doc: &OpenApi) -> impl Iterator<Item = (&String, Method, &Operation)> {
    doc.paths.paths.iter().flat_map(|(path, item)| {
        [
            (Method::GET, &item.get),
            (Method::POST, &item.post),
            (Method::PUT, &item.put),
            (Method::PATCH, &item.patch),
            (Method::DELETE, &item.delete),
        ]
        .into_iter()
        .filter_map(move |(method, op)| op.as_ref().map(|op| (path, method, op)))
    })
}

/// The (method, path template) of every operation that declares a query parameter, and of
/// every operation at all (a method the document does not declare at a path is left to the
/// router, whose answer is 405 with `Allow`).
pub struct QueryRoutes {
    takes_query: HashSet<(Method, String)>,
    declared: HashSet<(Method, String)>,
}

impl QueryRoutes {
    pub fn from_doc(doc: &OpenApi) -> Self {
        let takes_query = |op: &Operation| {
            op.parameters.iter().flatten().any(|p| match p {
                RefOr::T(p) => p.parameter_in == ParameterIn::Query,
                // A shared parameter: it may be one; do not refuse what it might allow.
                RefOr::Ref(_) => true,
            })
        };
        let mut set = HashSet::new();
        let mut declared = HashSet::new();
        for (path, method, op) in operations(doc) {
            if takes_query(op) {
                set.insert((method.clone(), path.clone()));
            }
            declared.insert((method, path.clone()));
        }
        Self {
            takes_query: set,
            declared,
        }
    }
}

/// Refuses a query string on an endpoint that declares no query parameter (422 naming the
/// first parameter).
pub async fn refuse_undeclared_query(
    State(routes): State<Arc<QueryRoutes>>,
    req: Request,
    next: Next,
) -> Response {
    let query = req.uri().query().filter(|q| !q.is_empty());
    if let (Some(q), Some(path)) = (query, req.extensions().get::<MatchedPath>()) {
        // HEAD is answered by the GET handler.
        let method = if req.method() == Method::HEAD {
            Method::GET
        } else {
            req.method().clone()
        };
        let op = (method, path.as_str().to_owned());
        if routes.declared.contains(&op) && !routes.takes_query.contains(&op) {
            let name = form_urlencoded::parse(q.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_else(|| "query".into());
            return ApiError::field(
                &name,
                format!(
                    "is not a parameter of {} {} (it takes none)",
                    req.method(),
                    path.as_str()
                ),
            )
            .into_response();
        }
    }
    next.run(req).await
}

/// What each operation that needs a token asks of its caller, from the document: the
/// `x-permission` extension names the permission (none: any valid token will do). Keyed by
/// path template, then method.
pub struct PermissionRoutes(HashMap<String, Vec<(Method, Option<Permission>)>>);

/// The name of the operation extension that holds the permission an operation needs.
pub const X_PERMISSION: &str = "x-permission";

impl PermissionRoutes {
    /// Fails on an `x-permission` that names no permission, or on one set on an operation
    /// that needs no token (either is a mistake in a handler's `#[utoipa::path]`).
    pub fn from_doc(doc: &OpenApi) -> Result<Self, String> {
        let mut map: HashMap<String, Vec<(Method, Option<Permission>)>> = HashMap::new();
        for (path, method, op) in operations(doc) {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let permission = match op.extensions.as_ref().and_then(|e| e.get(X_PERMISSION)) {
                None => None,
                Some(v) => Some(v.as_str().and_then(Permission::parse).ok_or_else(|| {
                    format!("{method} {path}: {X_PERMISSION} {v} names no permission")
                })?),
            };
            if !secured {
                if permission.is_some() {
                    return Err(format!(
                        "{method} {path}: {X_PERMISSION} on an operation without security"
                    ));
                }
                continue;
            }
            map.entry(path.clone())
                .or_default()
                .push((method, permission));
        }
        Ok(Self(map))
    }

    fn get(&self, method: &Method, path: &str) -> Option<Option<Permission>> {
        self.0
            .get(path)?
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, p)| *p)
    }
}

/// What [`authorize_first`] needs: the table, and the state to authenticate against.
pub struct Authorize {
    pub routes: PermissionRoutes,
    pub state: AppState,
}

/// Authenticates and authorizes before anything else of the request is read: an operation
/// that needs a token answers 401 without a valid one and 403 to a role without its
/// `x-permission`, whatever the body or the query string (which the handler's extractors
/// would otherwise judge first: a denied role sending a bad body got 422). The caller is left
/// in the request's extensions, where the `Caller` extractor finds it (one look-up per
/// request); handlers still check their permission themselves.
pub async fn authorize_first(
    State(auth): State<Arc<Authorize>>,
    mut req: Request,
    next: Next,
) -> Response {
    let needed = req.extensions().get::<MatchedPath>().and_then(|path| {
        // HEAD is answered by the GET handler.
        let method = if req.method() == Method::HEAD {
            Method::GET
        } else {
            req.method().clone()
        };
        auth.routes.get(&method, path.as_str())
    });
    if let Some(needed) = needed {
        let caller = match authenticate(req.headers(), &auth.state).await {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        };
        if let Some(p) = needed
            && let Err(e) = caller.require(p)
        {
            return e.into_response();
        }
        req.extensions_mut().insert(caller);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Operations any valid token may call (who the token is).
    const ANY_TOKEN: &[(&str, &str)] = &[("GET", "/v1/me")];

    #[test]
    fn every_operation_that_needs_a_token_names_its_permission() {
        let doc = crate::openapi();
        let routes = PermissionRoutes::from_doc(&doc).expect("every x-permission is known");
        let mut missing = Vec::new();
        let mut named = 0;
        for (path, ops) in &routes.0 {
            for (method, p) in ops {
                match p {
                    Some(_) => named += 1,
                    None if ANY_TOKEN.contains(&(method.as_str(), path.as_str())) => {}
                    None => missing.push(format!("{method} {path}")),
                }
            }
        }
        missing.sort();
        assert!(
            missing.is_empty(),
            "operations with security((\"bearer\" ...)) but no {X_PERMISSION} (add \
             extensions((\"{X_PERMISSION}\" = json!(\"...\"))) to their #[utoipa::path]): {missing:?}"
        );
        assert!(named >= 80, "only {named} operations name a permission");
    }
}
