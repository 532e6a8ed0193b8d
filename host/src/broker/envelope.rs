//! The JSON request envelope every front-end accepts: `{"method", "path",
//! "headers", "body"}` (`aivault invoke --request`, `POST /aivault/invoke`).
//! Headers are an object or a list of `[name, value]` pairs; a body that is
//! not a string is sent as JSON, with a JSON content type unless one is given.

use serde_json::Value;

/// What an envelope asks for; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub method: Option<String>,
    pub path: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// Why an envelope is refused. Field names only, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    #[error("the request envelope must be a JSON object")]
    NotAnObject,
    #[error("the request envelope's `{0}` must be a string")]
    NotAString(&'static str),
    #[error("envelope header `{0}` must be a string")]
    HeaderValue(String),
    #[error("the request envelope's `headers` must be an object or a list of [name, value] pairs of strings")]
    Headers,
}

impl Envelope {
    /// Reads an envelope.
    pub fn parse(value: &Value) -> Result<Self, EnvelopeError> {
        let object = value.as_object().ok_or(EnvelopeError::NotAnObject)?;
        let text = |name: &'static str| match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(EnvelopeError::NotAString(name)),
        };
        let mut headers = Vec::new();
        match object.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (name, value) in map {
                    let value = value.as_str().ok_or_else(|| EnvelopeError::HeaderValue(name.clone()))?;
                    headers.push((name.clone(), value.to_string()));
                }
            }
            Some(Value::Array(pairs)) => {
                for pair in pairs {
                    let (Some(name), Some(value)) =
                        (pair.get(0).and_then(Value::as_str), pair.get(1).and_then(Value::as_str))
                    else {
                        return Err(EnvelopeError::Headers);
                    };
                    headers.push((name.to_string(), value.to_string()));
                }
            }
            Some(_) => return Err(EnvelopeError::Headers),
        }
        let body = match object.get("body") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone().into_bytes()),
            Some(json) => {
                if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
                    headers.push(("content-type".into(), "application/json".into()));
                }
                Some(serde_json::to_vec(json).expect("a JSON value serialises"))
            }
        };
        Ok(Envelope { method: text("method")?, path: text("path")?, headers, body })
    }

    /// `field` of the envelope as a string, for front-ends with fields of
    /// their own (`capability`, `credential`).
    pub fn text_field(value: &Value, field: &'static str) -> Result<Option<String>, EnvelopeError> {
        match value.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(EnvelopeError::NotAString(field)),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // Headers as an object or as pairs; a JSON body gets a JSON content type.
    #[test]
    fn parses_both_header_forms_and_json_bodies() {
        let e =
            Envelope::parse(&json!({"method": "POST", "headers": {"x-a": "1"}, "body": {"k": 1}})).unwrap();
        assert_eq!(e.method.as_deref(), Some("POST"));
        assert_eq!(
            e.headers,
            vec![("x-a".to_string(), "1".to_string()), ("content-type".into(), "application/json".into())]
        );
        assert_eq!(e.body.as_deref(), Some(&b"{\"k\":1}"[..]));
        let e = Envelope::parse(&json!({"headers": [["content-type", "text/plain"]], "body": "hi"})).unwrap();
        assert_eq!(e.headers, vec![("content-type".to_string(), "text/plain".to_string())]);
        assert_eq!(e.body.as_deref(), Some(&b"hi"[..]));
    }

    // Wrong shapes are refused, naming the field.
    #[test]
    fn wrong_shapes_refused() {
        assert_eq!(Envelope::parse(&json!([1])), Err(EnvelopeError::NotAnObject));
        assert_eq!(Envelope::parse(&json!({"path": 3})), Err(EnvelopeError::NotAString("path")));
        assert_eq!(Envelope::parse(&json!({"headers": "x"})), Err(EnvelopeError::Headers));
        assert_eq!(
            Envelope::parse(&json!({"headers": {"a": 1}})),
            Err(EnvelopeError::HeaderValue("a".into()))
        );
    }
}
