//! Sinks into PostgreSQL (`/v1/sinks/...`) on [`Client`].

use reqwest::Method;

use crate::proto::{SinkDefinition, SinkInfo, SinkList};
use crate::{encode_segment, Client, Error};

impl Client {
    fn sink_url(&self, name: &str, action: Option<&str>) -> String {
        let mut url = format!("{}/v1/sinks/{}", self.base_url, encode_segment(name));
        if let Some(action) = action {
            url.push('/');
            url.push_str(action);
        }
        url
    }

    /// `PUT /v1/sinks/{name}`: creates the sink, or finds it with the same definition;
    /// another definition under the name is `sink_exists` (409).
    pub async fn put_sink(
        &self,
        name: &str,
        definition: &SinkDefinition,
    ) -> Result<SinkInfo, Error> {
        let url = self.sink_url(name, None);
        self.json(Method::PUT, url, Some(definition), self.request_timeout)
            .await
    }

    /// `GET /v1/sinks/{name}`: the definition (password hidden), state and figures;
    /// `sink_not_found` (404).
    pub async fn get_sink(&self, name: &str) -> Result<SinkInfo, Error> {
        let url = self.sink_url(name, None);
        self.json(Method::GET, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `GET /v1/sinks`: every sink, by name.
    pub async fn list_sinks(&self) -> Result<Vec<SinkInfo>, Error> {
        let url = format!("{}/v1/sinks", self.base_url);
        let list: SinkList = self
            .json(Method::GET, url, None::<&()>, self.request_timeout)
            .await?;
        Ok(list.sinks)
    }

    /// `POST /v1/sinks/{name}/pause` (`true`) or `/resume`: durable across restarts.
    pub async fn set_sink_paused(&self, name: &str, paused: bool) -> Result<SinkInfo, Error> {
        let url = self.sink_url(name, Some(if paused { "pause" } else { "resume" }));
        self.json(Method::POST, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `DELETE /v1/sinks/{name}`: stops and removes the sink; the table and its rows stay.
    pub async fn delete_sink(&self, name: &str) -> Result<(), Error> {
        let url = self.sink_url(name, None);
        self.execute(Method::DELETE, url, None::<&()>, self.request_timeout)
            .await?;
        Ok(())
    }
}
