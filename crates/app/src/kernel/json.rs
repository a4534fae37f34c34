//! JSON input read the way every adapter reads it: the failing field's path in the error.

use serde::de::DeserializeOwned;

use super::error::AppError;

/// Deserialises with the failing field's path in the message.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { "body".to_owned() } else { path };
                AppError::field(&field, strip_position(&inner.to_string()))
            }
            _ => AppError::BadRequest(format!("the body is not valid JSON: {inner}")),
        }
    })
}

/// A serde_json message without its " at line L column C" suffix (positions in a request body
/// mean nothing to the caller; the field path or index says where).
pub fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}
