//! Following a stream live (`GET /v1/streams/{s}/live`, Server-Sent Events) on [`Client`].

use reqwest::Method;

use crate::proto::stream::{Record, StreamDropped};
use crate::proto::ErrorDetail;
use crate::{check_status, encode_segment, Client, Error};

/// One event of a stream follower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    Record(Record),
    /// Records retention removed before this follower read them.
    Dropped(StreamDropped),
    /// The server ended the stream because of this (the stream was deleted, say).
    Error(ErrorDetail),
}

/// An open follower of a stream (`Client::follow_stream`).
pub struct StreamFollower {
    response: reqwest::Response,
    buffer: String,
    url: String,
}

impl Client {
    /// `GET /v1/streams/{name}/live`: follows one partition or (without `partition`) all of
    /// them, from `from_offset` or (without it) from the records appended from now on.
    pub async fn follow_stream(
        &self,
        name: &str,
        partition: Option<u32>,
        from_offset: Option<u64>,
    ) -> Result<StreamFollower, Error> {
        let url = format!("{}/v1/streams/{}/live", self.base_url, encode_segment(name));
        let mut request = self.http_request(Method::GET, &url);
        if let Some(partition) = partition {
            request = request.query(&[("partition", partition)]);
        }
        if let Some(offset) = from_offset {
            request = request.query(&[("from_offset", offset)]);
        }
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await?;
            return match check_status(&Method::GET, &url, status, bytes) {
                Err(error) => Err(error),
                Ok(_) => unreachable!("check_status refuses every non-2xx status"),
            };
        }
        Ok(StreamFollower {
            response,
            buffer: String::new(),
            url,
        })
    }
}

impl StreamFollower {
    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<StreamEvent>, Error> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = "";
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(rest) = line.strip_prefix("event:") {
                        event = rest.trim();
                    } else if let Some(rest) = line.strip_prefix("data:") {
                        data.push_str(rest.strip_prefix(' ').unwrap_or(rest));
                    }
                }
                let decode_error = |source| Error::Decode {
                    method: Method::GET,
                    url: self.url.clone(),
                    status: 200,
                    source,
                };
                let parsed = match event {
                    "record" => serde_json::from_str(&data).map(StreamEvent::Record),
                    "dropped" => serde_json::from_str(&data).map(StreamEvent::Dropped),
                    "error" => serde_json::from_str(&data).map(StreamEvent::Error),
                    // Keep-alive comments and events this client does not know.
                    _ => continue,
                };
                return parsed.map(Some).map_err(decode_error);
            }
            match self.response.chunk().await? {
                Some(chunk) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                None => return Ok(None),
            }
        }
    }
}
