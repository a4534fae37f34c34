//! Requests are read strictly: a query parameter is refused unless the endpoint declares it.
//! Endpoints with query parameters read them through `ApiQuery`, which refuses unknown ones;
//! this layer covers the endpoints that declare none, which would otherwise ignore them (a
//! `POST /v1/payments?dry_run=true` recorded a real payment). The list comes from the OpenAPI
//! document, so a new endpoint is covered by declaring its parameters, as it must anyway.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{OpenApi, RefOr};

use crate::error::ApiError;

/// The (method, path template) of every operation that declares a query parameter.
pub struct QueryRoutes(HashSet<(Method, String)>);

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
        for (path, item) in &doc.paths.paths {
            for (method, op) in [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
            ] {
                if op.as_ref().is_some_and(takes_query) {
                    set.insert((method, path.clone()));
                }
            }
        }
        Self(set)
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
        if !routes
            .0
            .contains(&(req.method().clone(), path.as_str().to_owned()))
        {
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
