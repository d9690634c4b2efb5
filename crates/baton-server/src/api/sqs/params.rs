//! Typed reads of SQS parameters. The JSON protocol sends numbers and booleans as JSON values,
//! the query protocol as text; both are accepted wherever a number or boolean is expected.

use serde_json::{Map, Value};

use super::error::SqsError;

pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

pub fn opt_str(params: &Map<String, Value>, name: &str) -> Option<String> {
    params.get(name).and_then(text)
}

pub fn req_str(params: &Map<String, Value>, name: &str) -> Result<String, SqsError> {
    opt_str(params, name).ok_or_else(|| {
        SqsError::missing_parameter(format!("The request must contain the parameter {name}."))
    })
}

/// An integer parameter within `lo..=hi`.
pub fn opt_int(
    params: &Map<String, Value>,
    name: &str,
    lo: i64,
    hi: i64,
) -> Result<Option<i64>, SqsError> {
    let Some(raw) = params.get(name) else {
        return Ok(None);
    };
    let value = match raw {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse::<i64>().ok(),
        _ => None,
    };
    match value {
        Some(value) if lo <= value && value <= hi => Ok(Some(value)),
        _ => Err(SqsError::invalid_parameter_value(format!(
            "Value {} for parameter {name} is invalid. Reason: Must be between {lo} and {hi}, if provided.",
            text(raw).unwrap_or_default()
        ))),
    }
}

pub fn list(params: &Map<String, Value>, name: &str) -> Vec<String> {
    match params.get(name) {
        Some(Value::Array(items)) => items.iter().filter_map(text).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

pub fn object<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a Map<String, Value>> {
    match params.get(name) {
        Some(Value::Object(map)) => Some(map),
        _ => None,
    }
}

pub fn string_map(params: &Map<String, Value>, name: &str) -> Vec<(String, String)> {
    object(params, name)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| text(v).map(|v| (k.clone(), v)))
                .collect()
        })
        .unwrap_or_default()
}

pub fn parse_bool(name: &str, value: &str) -> Result<bool, SqsError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(SqsError::invalid_attribute_value(format!(
            "Invalid value for the parameter {name}."
        ))),
    }
}
