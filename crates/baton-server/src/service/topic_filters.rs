//! SNS-style filter policies as JSON: parsed into `baton_core::topic::FilterPolicy` with an
//! error naming the exact place (`filter.amount[0].numeric[1]`), and rendered back the same
//! way, so a shown subscription reads as it was given.

use std::collections::BTreeMap;

use baton_core::topic::{Condition, FilterPolicy, Literal, NumericOp, TopicError};
use baton_engine::TopicEngineError;
use serde_json::Value;

use crate::service::ServiceError;

fn filter_error(reason: String) -> ServiceError {
    ServiceError::Topic(TopicEngineError::Topic(TopicError::InvalidFilter {
        reason,
    }))
}

fn number(value: &Value, at: &str) -> Result<f64, ServiceError> {
    value
        .as_f64()
        .filter(|n| n.is_finite())
        .ok_or_else(|| filter_error(format!("{at}: expected a number, found {value}")))
}

fn literal(value: &Value, at: &str) -> Result<Literal, ServiceError> {
    match value {
        Value::String(text) => Ok(Literal::Text(text.clone())),
        Value::Number(_) => Ok(Literal::Number(number(value, at)?)),
        other => Err(filter_error(format!(
            "{at}: expected a string or a number, found {other}"
        ))),
    }
}

/// One element of a filter list: a string or number (exact match) or a one-key operator
/// object (`prefix`, `anything-but`, `numeric`, `exists`).
fn condition(value: &Value, at: &str) -> Result<Condition, ServiceError> {
    let object = match value {
        Value::String(text) => return Ok(Condition::Exact(text.clone())),
        Value::Number(_) => return Ok(Condition::ExactNumber(number(value, at)?)),
        Value::Object(object) => object,
        other => {
            return Err(filter_error(format!(
                "{at}: expected a string, a number or an operator object, found {other}"
            )))
        }
    };
    let mut entries = object.iter();
    let (Some((operator, operand)), None) = (entries.next(), entries.next()) else {
        return Err(filter_error(format!(
            "{at}: an operator object has exactly one key (prefix, anything-but, numeric or exists)"
        )));
    };
    let at = format!("{at}.{operator}");
    match operator.as_str() {
        "prefix" => match operand {
            Value::String(prefix) => Ok(Condition::Prefix(prefix.clone())),
            other => Err(filter_error(format!(
                "{at}: expected a string, found {other}"
            ))),
        },
        "exists" => match operand {
            Value::Bool(present) => Ok(Condition::Exists(*present)),
            other => Err(filter_error(format!(
                "{at}: expected true or false, found {other}"
            ))),
        },
        "anything-but" => match operand {
            Value::Array(values) => Ok(Condition::AnythingBut(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| literal(v, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )),
            Value::Object(inner) => match (inner.len(), inner.get("prefix")) {
                (1, Some(Value::String(prefix))) => {
                    Ok(Condition::AnythingButPrefix(prefix.clone()))
                }
                _ => Err(filter_error(format!(
                    "{at}: an object here must be {{\"prefix\": \"...\"}}"
                ))),
            },
            other => Ok(Condition::AnythingBut(vec![literal(other, &at)?])),
        },
        "numeric" => {
            let Value::Array(items) = operand else {
                return Err(filter_error(format!(
                    "{at}: expected a list such as [\">\", 0, \"<=\", 5], found {operand}"
                )));
            };
            if items.is_empty() || items.len() % 2 != 0 || items.len() > 4 {
                return Err(filter_error(format!(
                    "{at}: expected one or two operator-number pairs such as [\">\", 0, \"<=\", 5]"
                )));
            }
            let mut bounds = Vec::new();
            for (i, pair) in items.chunks(2).enumerate() {
                let [op, bound] = pair else { continue };
                let op = op.as_str().and_then(NumericOp::parse).ok_or_else(|| {
                    filter_error(format!(
                        "{at}[{}]: expected one of =, <, <=, >, >=, found {op}",
                        i * 2
                    ))
                })?;
                bounds.push((op, number(bound, &format!("{at}[{}]", i * 2 + 1))?));
            }
            Ok(Condition::Numeric(bounds))
        }
        other => Err(filter_error(format!(
            "{at}: unknown operator {other:?}; use prefix, anything-but, numeric or exists"
        ))),
    }
}

/// An SNS filter policy from JSON: `{"attribute": [conditions...], ...}`.
pub fn filter_from_json(value: &Value) -> Result<FilterPolicy, ServiceError> {
    let Value::Object(object) = value else {
        return Err(filter_error(format!(
            "a filter is an object of attribute names to lists of conditions, found {value}"
        )));
    };
    let mut conditions = BTreeMap::new();
    for (attribute, list) in object {
        let Value::Array(list) = list else {
            return Err(filter_error(format!(
                "filter.{attribute}: expected a list of conditions, found {list}"
            )));
        };
        let list = list
            .iter()
            .enumerate()
            .map(|(i, v)| condition(v, &format!("filter.{attribute}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        conditions.insert(attribute.clone(), list);
    }
    Ok(FilterPolicy::new(conditions)?)
}

fn literal_to_json(literal: &Literal) -> Value {
    match literal {
        Literal::Text(text) => Value::from(text.clone()),
        Literal::Number(n) => Value::from(*n),
    }
}

pub fn filter_to_json(filter: &FilterPolicy) -> Value {
    let object = filter
        .conditions()
        .iter()
        .map(|(attribute, list)| {
            let list = list
                .iter()
                .map(|c| match c {
                    Condition::Exact(text) => Value::from(text.clone()),
                    Condition::ExactNumber(n) => Value::from(*n),
                    Condition::Prefix(p) => serde_json::json!({ "prefix": p }),
                    Condition::AnythingBut(values) => serde_json::json!({
                        "anything-but": values.iter().map(literal_to_json).collect::<Vec<_>>()
                    }),
                    Condition::AnythingButPrefix(p) => {
                        serde_json::json!({ "anything-but": { "prefix": p } })
                    }
                    Condition::Numeric(bounds) => serde_json::json!({
                        "numeric": bounds
                            .iter()
                            .flat_map(|(op, n)| [Value::from(op.as_str()), Value::from(*n)])
                            .collect::<Vec<_>>()
                    }),
                    Condition::Exists(present) => serde_json::json!({ "exists": present }),
                })
                .collect::<Vec<_>>();
            (attribute.clone(), Value::Array(list))
        })
        .collect();
    Value::Object(object)
}
