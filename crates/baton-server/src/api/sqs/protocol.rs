//! The two wire protocols of the SQS API, reduced to one shape.
//!
//! Requests: JSON 1.0 bodies are used as they are; query (form-encoded) parameters such as
//! `Attribute.1.Name=X&Attribute.1.Value=Y` or `SendMessageBatchRequestEntry.2.MessageBody=b`
//! are folded into the same JSON members (`Attributes: {X: Y}`, `Entries: [..]`), so every
//! action reads one representation. Responses: actions answer in the JSON shape; the query
//! protocol renders it as the XML the SQS reference documents.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

pub const XML_NAMESPACE: &str = "http://queue.amazonaws.com/doc/2012-11-05/";
/// Most dot-separated parts in a query parameter's name. The deepest SQS names have 6
/// (`SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue`). The parameter tree
/// is built and folded recursively, one call per part, so without a bound a single name of
/// 100,000 parts (200 KB, well inside a request) overflowed the stack and aborted the server.
pub const QUERY_KEY_PARTS_MAX: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    Query,
}

/// A parameter tree built from dotted query keys.
#[derive(Debug, Default)]
struct Node {
    value: Option<String>,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn insert(&mut self, path: &[&str], value: String) {
        match path.split_first() {
            None => self.value = Some(value),
            Some((head, rest)) => self
                .children
                .entry((*head).to_string())
                .or_default()
                .insert(rest, value),
        }
    }

    /// The children keyed `1`, `2`, ... in numeric order.
    fn indexed(self) -> Vec<Node> {
        let mut items: Vec<(u64, Node)> = self
            .children
            .into_iter()
            .filter_map(|(k, v)| k.parse::<u64>().ok().map(|i| (i, v)))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        items.into_iter().map(|(_, node)| node).collect()
    }

    fn text(&self) -> Option<String> {
        self.value.clone()
    }
}

/// Folds form parameters into the JSON members the JSON protocol uses.
///
/// # Errors
/// The name of a parameter with more than [`QUERY_KEY_PARTS_MAX`] parts (at most 100
/// characters of it): no SQS parameter is named so.
pub fn query_to_json(
    pairs: impl IntoIterator<Item = (String, String)>,
) -> Result<Map<String, Value>, String> {
    let mut root = Node::default();
    for (key, value) in pairs {
        let path: Vec<&str> = key.splitn(QUERY_KEY_PARTS_MAX + 1, '.').collect();
        if path.len() > QUERY_KEY_PARTS_MAX {
            return Err(key.chars().take(100).collect());
        }
        root.insert(&path, value);
    }
    Ok(fold(root))
}

fn fold(node: Node) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, child) in node.children {
        match key.as_str() {
            "Attribute" => {
                out.insert(
                    "Attributes".into(),
                    Value::Object(name_value_map(child, "Name", "Value")),
                );
            }
            // Query-era SDKs flatten maps as `Tag.N.Key`; models without location names as
            // `Tags.N.key`. Both mean the same map.
            "Tag" | "Tags" => {
                let map = name_value_map(child, "Key", "Value");
                let entry = out
                    .entry("Tags")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(tags) = entry {
                    tags.extend(map);
                }
            }
            "MessageAttribute" | "MessageSystemAttribute" => {
                let mut map = Map::new();
                for item in child.indexed() {
                    let mut fields = fold_leaves(item);
                    let Some(Value::String(name)) = fields.remove("Name") else {
                        continue;
                    };
                    let value = fields.remove("Value").unwrap_or(Value::Object(Map::new()));
                    map.insert(name, value);
                }
                out.insert(format!("{key}s"), Value::Object(map));
            }
            "AttributeName"
            | "MessageAttributeName"
            | "MessageSystemAttributeName"
            | "TagKey"
            | "AWSAccountId" => {
                let list = child
                    .indexed()
                    .into_iter()
                    .filter_map(|n| n.text())
                    .map(Value::String)
                    .collect();
                out.insert(format!("{key}s"), Value::Array(list));
            }
            "ActionName" => {
                let list = child
                    .indexed()
                    .into_iter()
                    .filter_map(|n| n.text())
                    .map(Value::String)
                    .collect();
                out.insert("Actions".into(), Value::Array(list));
            }
            entry if entry.ends_with("RequestEntry") => {
                let list = child
                    .indexed()
                    .into_iter()
                    .map(|n| Value::Object(fold_leaves(n)))
                    .collect();
                out.insert("Entries".into(), Value::Array(list));
            }
            _ => {
                if let Some(text) = child.text() {
                    out.insert(key, Value::String(text));
                } else {
                    out.insert(key, Value::Object(fold_leaves(child)));
                }
            }
        }
    }
    out
}

/// A node whose children are plain fields (or nested known lists).
fn fold_leaves(node: Node) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(text) = node.value.clone() {
        out.insert("_".into(), Value::String(text));
    }
    let nested = fold(Node {
        value: None,
        children: node.children,
    });
    out.extend(nested);
    out
}

fn name_value_map(node: Node, key: &str, value: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for mut item in node.indexed() {
        let mut take = |field: &str| {
            let found = item.children.remove(field);
            found
                .or_else(|| item.children.remove(&field.to_ascii_lowercase()))
                .and_then(|n| n.text())
        };
        let name = take(key);
        let val = take(value).unwrap_or_default();
        if let Some(name) = name {
            map.insert(name, Value::String(val));
        }
    }
    map
}

/// XML text escaping for element content.
pub fn escape(text: &str) -> String {
    // A bare carriage return would be normalised away by XML parsers, so it is a reference.
    quick_xml::escape::escape(text).replace('\r', "&#xD;")
}

/// Renders an action's JSON-shaped result as the query protocol's XML body.
pub fn render_xml(action: &str, result: &Value, request_id: &str) -> String {
    let mut body = String::with_capacity(512);
    body.push_str(&format!(
        "<?xml version=\"1.0\"?><{action}Response xmlns=\"{XML_NAMESPACE}\">"
    ));
    // The SDKs' query parsers expect the result element even when it is empty.
    body.push_str(&format!("<{action}Result>"));
    if let Value::Object(fields) = result {
        write_fields(action, fields, &mut body);
    }
    body.push_str(&format!("</{action}Result>"));
    body.push_str(&format!("<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"));
    body
}

fn element_of_list(action: &str, key: &str) -> String {
    match key {
        "Messages" => "Message".into(),
        "QueueUrls" | "queueUrls" => "QueueUrl".into(),
        "Successful" => format!("{action}ResultEntry"),
        "Failed" => "BatchResultErrorEntry".into(),
        "Results" => format!("{action}ResultEntry"),
        other => other.trim_end_matches('s').to_string(),
    }
}

fn write_fields(action: &str, fields: &Map<String, Value>, out: &mut String) {
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("Attributes", Value::Object(map)) => {
                for (name, value) in map {
                    out.push_str(&format!(
                        "<Attribute><Name>{}</Name><Value>{}</Value></Attribute>",
                        escape(name),
                        escape(&scalar(value))
                    ));
                }
            }
            ("Tags", Value::Object(map)) => {
                for (name, value) in map {
                    out.push_str(&format!(
                        "<Tag><Key>{}</Key><Value>{}</Value></Tag>",
                        escape(name),
                        escape(&scalar(value))
                    ));
                }
            }
            ("MessageAttributes", Value::Object(map)) => {
                for (name, value) in map {
                    out.push_str(&format!(
                        "<MessageAttribute><Name>{}</Name><Value>",
                        escape(name)
                    ));
                    if let Value::Object(inner) = value {
                        for (field, text) in inner {
                            out.push_str(&format!("<{field}>{}</{field}>", escape(&scalar(text))));
                        }
                    }
                    out.push_str("</Value></MessageAttribute>");
                }
            }
            (_, Value::Array(items)) => {
                let element = element_of_list(action, key);
                for item in items {
                    match item {
                        Value::Object(inner) => {
                            out.push_str(&format!("<{element}>"));
                            write_fields(action, inner, out);
                            out.push_str(&format!("</{element}>"));
                        }
                        other => out.push_str(&format!(
                            "<{element}>{}</{element}>",
                            escape(&scalar(other))
                        )),
                    }
                }
            }
            (_, Value::Object(inner)) => {
                out.push_str(&format!("<{key}>"));
                write_fields(action, inner, out);
                out.push_str(&format!("</{key}>"));
            }
            (_, Value::Null) => {}
            (_, other) => out.push_str(&format!("<{key}>{}</{key}>", escape(&scalar(other)))),
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_parameters_fold_into_json_members() {
        let folded = query_to_json(pairs(&[
            ("Action", "SendMessageBatch"),
            ("QueueUrl", "http://h/000000000000/q"),
            ("SendMessageBatchRequestEntry.2.Id", "b"),
            ("SendMessageBatchRequestEntry.1.Id", "a"),
            ("SendMessageBatchRequestEntry.1.MessageBody", "hello"),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Name",
                "k",
            ),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType",
                "String",
            ),
            (
                "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue",
                "v",
            ),
            ("Attribute.1.Name", "VisibilityTimeout"),
            ("Attribute.1.Value", "30"),
            ("AttributeName.1", "All"),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "core"),
        ]))
        .unwrap();
        assert_eq!(
            Value::Object(folded),
            json!({
                "Action": "SendMessageBatch",
                "QueueUrl": "http://h/000000000000/q",
                "Entries": [
                    {"Id": "a", "MessageBody": "hello", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}}},
                    {"Id": "b"}
                ],
                "Attributes": {"VisibilityTimeout": "30"},
                "AttributeNames": ["All"],
                "Tags": {"team": "core"}
            })
        );
    }

    /// The parameter tree is built and folded recursively, one level per part of a key: a
    /// key of 100,000 parts (200 KB, well inside a request) must not overflow the stack of a
    /// tokio worker (2 MiB), which would abort the whole server.
    #[test]
    fn a_key_with_very_many_parts_does_not_overflow_the_stack() {
        let key = "a.".repeat(100_000) + "b";
        let refused = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || query_to_json(pairs(&[("Action", "SendMessage"), (&key, "v")])))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(refused, Err("a.".repeat(50)));
        let deepest = "a.".repeat(QUERY_KEY_PARTS_MAX - 1) + "b";
        assert!(query_to_json(pairs(&[(&deepest, "v")])).is_ok());
    }

    #[test]
    fn results_render_as_documented_xml() {
        let xml = render_xml(
            "ReceiveMessage",
            &json!({"Messages": [{"MessageId": "m", "Body": "a<b", "Attributes": {"SenderId": "s"},
                     "MessageAttributes": {"k": {"StringValue": "v", "DataType": "String"}}}]}),
            "r1",
        );
        assert!(xml.contains("<ReceiveMessageResult><Message>"), "{xml}");
        assert!(
            xml.contains("<MessageId>m</MessageId>") && xml.contains("<Body>a&lt;b</Body>"),
            "{xml}"
        );
        assert!(
            xml.contains("<Attribute><Name>SenderId</Name><Value>s</Value></Attribute>"),
            "{xml}"
        );
        assert!(
            xml.contains("<MessageAttribute><Name>k</Name><Value>"),
            "{xml}"
        );
        assert!(xml.ends_with("<ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></ReceiveMessageResponse>"));
        let batch = render_xml(
            "DeleteMessageBatch",
            &json!({"Successful": [{"Id": "1"}], "Failed": []}),
            "r",
        );
        assert!(
            batch.contains(
                "<DeleteMessageBatchResultEntry><Id>1</Id></DeleteMessageBatchResultEntry>"
            ),
            "{batch}"
        );
    }
}
