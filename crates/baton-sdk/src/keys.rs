//! API keys (`/v1/keys/...`) on [`Client`]; every call needs a key with `admin` on keys
//! ([`Client::with_key`]).

use reqwest::Method;

use crate::proto::{CreateKey, CreatedKey, KeyInfo, KeyList};
use crate::{encode_segment, Client, Error};

impl Client {
    fn key_url(&self, name: &str) -> String {
        format!("{}/v1/keys/{}", self.base_url, encode_segment(name))
    }

    /// `POST /v1/keys`: creates a key; the answer's `key` is its secret, shown only here.
    /// `key_exists` (409) when the name is taken.
    pub async fn create_key(&self, request: &CreateKey) -> Result<CreatedKey, Error> {
        let url = format!("{}/v1/keys", self.base_url);
        self.json(Method::POST, url, Some(request), self.request_timeout)
            .await
    }

    /// `GET /v1/keys`: every key, by name, without secrets.
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, Error> {
        let url = format!("{}/v1/keys", self.base_url);
        let list: KeyList = self
            .json(Method::GET, url, None::<&()>, self.request_timeout)
            .await?;
        Ok(list.keys)
    }

    /// `GET /v1/keys/{name}`; `key_not_found` (404).
    pub async fn get_key(&self, name: &str) -> Result<KeyInfo, Error> {
        self.json(
            Method::GET,
            self.key_url(name),
            None::<&()>,
            self.request_timeout,
        )
        .await
    }

    /// `DELETE /v1/keys/{name}`: revokes the key at once.
    pub async fn revoke_key(&self, name: &str) -> Result<(), Error> {
        self.execute(
            Method::DELETE,
            self.key_url(name),
            None::<&()>,
            self.request_timeout,
        )
        .await?;
        Ok(())
    }
}
