//! JSON input read the way every adapter reads it: the failing field's path in the error.

use riskdesk_domain::values::control_character_in_json;
use serde::de::DeserializeOwned;

use super::error::AppError;

/// Deserialises with the failing field's path in the message. Refuses what follows the JSON
/// value (`{…}xyz`) and control characters in any string (see [`control_character_at`]).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { "body".to_owned() } else { path };
                AppError::field(&field, strip_position(&inner.to_string()))
            }
            _ => AppError::BadRequest(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| AppError::BadRequest(format!("the body is not valid JSON: {e}")))?;
    if let Some((field, message)) = control_character_at(bytes) {
        return Err(AppError::field(&field, message));
    }
    Ok(value)
}

/// The first string (value or key) of a JSON document holding a control character (any of
/// U+0000 to U+001F and U+007F to U+009F; tab and line feed are kept in free text, see
/// [`riskdesk_domain::values::FREE_TEXT_FIELDS`]) as the field's path (`company.name`,
/// `lines[2].description`, `body` for the document itself) and a message. Such characters
/// are never meaningful in riskdesk's names, ids and filters, PostgreSQL refuses NUL, and a
/// NUL in a filter would match everything on SQLite. The JSON grammar refuses raw C0
/// characters, so only an escape (`\u00…`, `\t`, `\b`, …), a raw DEL or a raw C1 character
/// (UTF-8 `C2 80` to `C2 9F`) can carry one: documents with none of these are answered
/// without a second parse.
pub fn control_character_at(bytes: &[u8]) -> Option<(String, String)> {
    let suspect = bytes.iter().any(|b| *b == b'\\' || *b == 0x7F)
        || bytes
            .windows(2)
            .any(|w| w[0] == 0xC2 && (0x80..=0x9F).contains(&w[1]));
    if !suspect {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    control_character_in_json(&value, "", false).map(|(field, c)| {
        let field = if field.is_empty() {
            "body".to_owned()
        } else {
            field
        };
        (field, control_message(c))
    })
}

fn control_message(c: char) -> String {
    format!(
        "must not contain control characters (U+{:04X} found)",
        c as u32
    )
}

/// A query parameter's value holding a control character (tab and new lines included: no
/// filter or parameter is free text): the message for its 422, if any.
pub fn control_character_in_parameter(value: &str) -> Option<String> {
    value.chars().find(|c| c.is_control()).map(control_message)
}

/// A serde_json message without its " at line L column C" suffix (positions in a request body
/// mean nothing to the caller; the field path or index says where).
pub fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_json;

    /// Found by fuzzing (fuzz/regressions/kernel_json): short escapes and a raw DEL passed the
    /// quick check; tab and line feed are kept in free text only.
    #[test]
    fn control_characters_are_refused_however_they_are_written() {
        for bad in [
            &b"{\"name\":\"a\\bb\"}"[..],
            b"{\"name\":\"a\\fb\"}",
            b"{\"name\":\"tab\\there\"}",
            b"{\"name\":\"a\x7Fb\"}",
            b"{\"name\":\"a\xC2\x85b\"}",
            b"{\"name\":\"a\\u0000b\"}",
            b"{\"note\":\"a\\u0008b\"}",
        ] {
            let r = parse_json::<serde_json::Value>(bad);
            assert!(r.is_err(), "{}", String::from_utf8_lossy(bad));
        }
        for ok in [
            &b"{\"note\":\"line one\\nline\\ttwo\"}"[..],
            b"{\"name\":\"quote \\\" and slash \\\\\"}",
            b"{\"properties\":{\"message\":\"a\\nb\"}}",
        ] {
            assert!(
                parse_json::<serde_json::Value>(ok).is_ok(),
                "{}",
                String::from_utf8_lossy(ok)
            );
        }
    }
}
