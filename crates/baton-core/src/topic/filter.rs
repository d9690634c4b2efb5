//! Attribute filters, as Amazon SNS filter policies define them.
//!
//! A policy maps attribute names to a list of conditions. A message matches when, for every
//! name in the policy, at least one of its conditions holds for the message's attribute of that
//! name (AND across names, OR within a name). Conditions:
//!
//! - `Exact("text")`: a `String` attribute equal to the text.
//! - `ExactNumber(n)`: a `Number` attribute numerically equal to `n`.
//! - `Prefix("p")`: a `String` attribute starting with `p`.
//! - `AnythingBut(values)`: an attribute present and equal to none of `values` (texts compare
//!   with `String` attributes, numbers with `Number` attributes).
//! - `AnythingButPrefix("p")`: a `String` attribute present and not starting with `p`.
//! - `Numeric(bounds)`: a `Number` attribute satisfying every bound (`>`, `>=`, `<`, `<=`, `=`).
//! - `Exists(true)`: the attribute is present; `Exists(false)`: it is absent.
//!
//! Every condition except `Exists(false)` needs the attribute to be present. `Binary`
//! attributes only ever satisfy `Exists(true)`. Policies are validated at construction.

use std::collections::BTreeMap;

use super::TopicError;
use crate::attributes::{AttributeData, BaseType, MessageAttributes};

/// Attribute names one policy may test.
pub const FILTER_KEYS_MAX: usize = 10;
/// Conditions one policy may hold, over all its names (SNS bounds combinations at 150).
pub const FILTER_CONDITIONS_MAX: usize = 150;
/// Longest string value in a condition.
pub const FILTER_VALUE_BYTES_MAX: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl NumericOp {
    pub fn parse(op: &str) -> Option<Self> {
        Some(match op {
            "=" => NumericOp::Eq,
            "<" => NumericOp::Lt,
            "<=" => NumericOp::Le,
            ">" => NumericOp::Gt,
            ">=" => NumericOp::Ge,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NumericOp::Eq => "=",
            NumericOp::Lt => "<",
            NumericOp::Le => "<=",
            NumericOp::Gt => ">",
            NumericOp::Ge => ">=",
        }
    }

    fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            NumericOp::Eq => value == bound,
            NumericOp::Lt => value < bound,
            NumericOp::Le => value <= bound,
            NumericOp::Gt => value > bound,
            NumericOp::Ge => value >= bound,
        }
    }
}

/// A literal in an `AnythingBut` list.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Number(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Exact(String),
    ExactNumber(f64),
    Prefix(String),
    AnythingBut(Vec<Literal>),
    AnythingButPrefix(String),
    Numeric(Vec<(NumericOp, f64)>),
    Exists(bool),
}

/// A validated filter policy.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPolicy {
    conditions: BTreeMap<String, Vec<Condition>>,
}

/// An attribute's value as conditions see it.
enum Value<'a> {
    Text(&'a str),
    Number(f64),
    Opaque,
}

impl FilterPolicy {
    pub fn new(conditions: BTreeMap<String, Vec<Condition>>) -> Result<Self, TopicError> {
        let invalid = |reason: String| TopicError::InvalidFilter { reason };
        if conditions.is_empty() {
            return Err(invalid(
                "a filter needs at least one attribute name; omit `filter` to match every message"
                    .to_string(),
            ));
        }
        if conditions.len() > FILTER_KEYS_MAX {
            return Err(invalid(format!(
                "a filter tests at most {FILTER_KEYS_MAX} attribute names, this one tests {}",
                conditions.len()
            )));
        }
        let n_conditions: usize = conditions.values().map(Vec::len).sum();
        if n_conditions > FILTER_CONDITIONS_MAX {
            return Err(invalid(format!(
                "a filter holds at most {FILTER_CONDITIONS_MAX} conditions, this one holds {n_conditions}"
            )));
        }
        for (name, list) in &conditions {
            if name.is_empty() {
                return Err(invalid("an attribute name must not be empty".to_string()));
            }
            if list.is_empty() {
                return Err(invalid(format!(
                    "attribute {name:?} needs at least one condition"
                )));
            }
            for condition in list {
                check_condition(name, condition).map_err(invalid)?;
            }
        }
        Ok(FilterPolicy { conditions })
    }

    pub fn conditions(&self) -> &BTreeMap<String, Vec<Condition>> {
        &self.conditions
    }

    pub fn matches(&self, attributes: &MessageAttributes) -> bool {
        self.conditions.iter().all(|(name, list)| {
            let value = attributes
                .get(name)
                .map(|attribute| match attribute.data() {
                    AttributeData::Text(text) => match attribute.base_type() {
                        BaseType::Number => {
                            text.parse::<f64>().map_or(Value::Opaque, Value::Number)
                        }
                        _ => Value::Text(text),
                    },
                    AttributeData::Binary(_) => Value::Opaque,
                });
            list.iter()
                .any(|condition| holds(condition, value.as_ref()))
        })
    }
}

fn check_text(name: &str, text: &str) -> Result<(), String> {
    if text.len() > FILTER_VALUE_BYTES_MAX {
        return Err(format!(
            "a value for {name:?} is {} bytes, at most {FILTER_VALUE_BYTES_MAX}",
            text.len()
        ));
    }
    Ok(())
}

fn check_number(name: &str, number: f64) -> Result<(), String> {
    if !number.is_finite() {
        return Err(format!("a number for {name:?} must be finite"));
    }
    Ok(())
}

fn check_condition(name: &str, condition: &Condition) -> Result<(), String> {
    match condition {
        Condition::Exact(text) | Condition::Prefix(text) | Condition::AnythingButPrefix(text) => {
            check_text(name, text)
        }
        Condition::ExactNumber(number) => check_number(name, *number),
        Condition::AnythingBut(values) => {
            if values.is_empty() {
                return Err(format!(
                    "anything-but for {name:?} needs at least one value"
                ));
            }
            for value in values {
                match value {
                    Literal::Text(text) => check_text(name, text)?,
                    Literal::Number(number) => check_number(name, *number)?,
                }
            }
            Ok(())
        }
        Condition::Numeric(bounds) => {
            if bounds.is_empty() || bounds.len() > 2 {
                return Err(format!(
                    "numeric for {name:?} takes one or two comparisons, such as [\">\", 0, \"<=\", 5]"
                ));
            }
            for (_, bound) in bounds {
                check_number(name, *bound)?;
            }
            if let [(first, _), (second, _)] = bounds.as_slice() {
                let lower = |op: NumericOp| matches!(op, NumericOp::Gt | NumericOp::Ge);
                let upper = |op: NumericOp| matches!(op, NumericOp::Lt | NumericOp::Le);
                let is_range =
                    (lower(*first) && upper(*second)) || (upper(*first) && lower(*second));
                if !is_range {
                    return Err(format!(
                        "a two-sided numeric range for {name:?} needs one lower bound (> or >=) and one upper bound (< or <=)"
                    ));
                }
            }
            Ok(())
        }
        Condition::Exists(_) => Ok(()),
    }
}

fn holds(condition: &Condition, value: Option<&Value<'_>>) -> bool {
    let Some(value) = value else {
        return matches!(condition, Condition::Exists(false));
    };
    match (condition, value) {
        (Condition::Exists(present), _) => *present,
        (Condition::Exact(expected), Value::Text(text)) => expected == text,
        (Condition::ExactNumber(expected), Value::Number(number)) => expected == number,
        (Condition::Prefix(prefix), Value::Text(text)) => text.starts_with(prefix.as_str()),
        (Condition::AnythingButPrefix(prefix), Value::Text(text)) => {
            !text.starts_with(prefix.as_str())
        }
        (Condition::AnythingBut(values), Value::Text(text)) => !values
            .iter()
            .any(|v| matches!(v, Literal::Text(t) if t == text)),
        (Condition::AnythingBut(values), Value::Number(number)) => !values
            .iter()
            .any(|v| matches!(v, Literal::Number(n) if n == number)),
        (Condition::Numeric(bounds), Value::Number(number)) => {
            bounds.iter().all(|(op, bound)| op.holds(*number, *bound))
        }
        _ => false,
    }
}
