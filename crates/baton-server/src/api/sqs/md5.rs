//! The MD5 digests SQS returns with messages, computed exactly as AWS documents them.
//!
//! `MD5OfMessageAttributes` (and `MD5OfMessageSystemAttributes`) digest the attributes sorted
//! by name, each encoded as: name length (4 bytes, big-endian) and name, data type length and
//! data type, one transport byte (1 for String and Number, 2 for Binary), value length and value.

use md5::{Digest, Md5};

/// One attribute as the digest sees it.
pub struct DigestAttribute<'a> {
    pub name: &'a str,
    pub data_type: &'a str,
    pub value: DigestValue<'a>,
}

pub enum DigestValue<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

pub fn of_body(body: &str) -> String {
    hex(&Md5::digest(body.as_bytes()))
}

fn put(hasher: &mut Md5, bytes: &[u8]) {
    hasher.update((bytes.len() as u32).to_be_bytes());
    hasher.update(bytes);
}

/// `None` when there are no attributes (SQS then omits the field).
pub fn of_attributes(mut attributes: Vec<DigestAttribute<'_>>) -> Option<String> {
    if attributes.is_empty() {
        return None;
    }
    attributes.sort_by(|a, b| a.name.cmp(b.name));
    let mut hasher = Md5::new();
    for attribute in &attributes {
        put(&mut hasher, attribute.name.as_bytes());
        put(&mut hasher, attribute.data_type.as_bytes());
        match attribute.value {
            DigestValue::Text(text) => {
                hasher.update([1u8]);
                put(&mut hasher, text.as_bytes());
            }
            DigestValue::Binary(bytes) => {
                hasher.update([2u8]);
                put(&mut hasher, bytes);
            }
        }
    }
    Some(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_digest_is_plain_md5() {
        assert_eq!(of_body(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(of_body("hello"), "5d41402abc4b2a76b9719d911017c592");
    }

    #[test]
    fn attribute_digest_is_order_independent_and_typed() {
        let a = || DigestAttribute {
            name: "a",
            data_type: "String",
            value: DigestValue::Text("x"),
        };
        let b = || DigestAttribute {
            name: "b",
            data_type: "Binary",
            value: DigestValue::Binary(&[1, 2]),
        };
        assert_eq!(of_attributes(vec![a(), b()]), of_attributes(vec![b(), a()]));
        assert_ne!(
            of_attributes(vec![a()]),
            of_attributes(vec![DigestAttribute {
                name: "a",
                data_type: "Number",
                value: DigestValue::Text("x")
            }])
        );
        assert_eq!(of_attributes(vec![]), None);
    }
}
