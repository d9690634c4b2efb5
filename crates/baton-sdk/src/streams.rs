//! The stream half of [`Client`]: create, inspect and delete streams, append, replay, and
//! consumer groups (read, ack, pending, claim, seek). Shapes are `baton_proto::stream`.

use std::time::Duration;

use baton_proto::stream::{
    AppendRecords, AppendedRecord, CreateGroup, CreateStream, GroupAck, GroupClaim, GroupInfo,
    GroupRead, GroupRecord, GroupRecords, GroupSeek, NewRecord, PendingList, ReadResponse,
    StreamInfo, StreamList,
};
use baton_proto::BatchResponse;
use reqwest::Method;

use crate::{encode_segment, Client, Error};

/// Where a replay starts in its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Offset(u64),
    /// The first record at or after this time (ms since the Unix epoch).
    Time(u64),
}

impl Client {
    /// `{base}/v1/streams/{name}/{suffix...}` with every segment percent-encoded.
    fn stream_url(&self, name: &str, suffix: &[&str]) -> String {
        let mut url = format!("{}/v1/streams/{}", self.base_url, encode_segment(name));
        for segment in suffix {
            url.push('/');
            url.push_str(&encode_segment(segment));
        }
        url
    }

    fn wait_budget(&self, wait_ms: Option<u64>) -> Duration {
        self.request_timeout
            .saturating_add(Duration::from_millis(wait_ms.unwrap_or(0)))
    }

    /// `PUT /v1/streams/{name}`: creates a stream. Idempotent when the attributes match;
    /// `stream_exists` (409) when they conflict.
    pub async fn create_stream(
        &self,
        name: &str,
        attributes: &CreateStream,
    ) -> Result<StreamInfo, Error> {
        let url = self.stream_url(name, &[]);
        self.json(Method::PUT, url, Some(attributes), self.request_timeout)
            .await
    }

    /// `GET /v1/streams/{name}`: attributes and statistics (offsets, groups and their lag).
    pub async fn get_stream(&self, name: &str) -> Result<StreamInfo, Error> {
        let url = self.stream_url(name, &[]);
        self.json(Method::GET, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `GET /v1/streams`: every stream with its statistics.
    pub async fn list_streams(&self) -> Result<Vec<StreamInfo>, Error> {
        let url = format!("{}/v1/streams", self.base_url);
        let list: StreamList = self
            .json(Method::GET, url, None::<&()>, self.request_timeout)
            .await?;
        Ok(list.streams)
    }

    /// `DELETE /v1/streams/{name}`: deletes the stream, its records and groups.
    pub async fn delete_stream(&self, name: &str) -> Result<(), Error> {
        let url = self.stream_url(name, &[]);
        self.execute(Method::DELETE, url, None::<&()>, self.request_timeout)
            .await?;
        Ok(())
    }

    /// `POST /v1/streams/{name}/records`: appends a batch; answers once it is durable, one
    /// entry per record in request order. With `producer = Some((id, sequence))` a retried
    /// batch lands once and answers the original offsets.
    pub async fn append(
        &self,
        name: &str,
        records: Vec<NewRecord>,
        producer: Option<(String, u64)>,
    ) -> Result<Vec<AppendedRecord>, Error> {
        let url = self.stream_url(name, &["records"]);
        let (producer_id, sequence) = producer.map_or((None, None), |(p, s)| (Some(p), Some(s)));
        let request = AppendRecords {
            records,
            producer_id,
            sequence,
            fence: None,
        };
        let response: baton_proto::stream::AppendResponse = self
            .json(Method::POST, url, Some(&request), self.request_timeout)
            .await?;
        Ok(response.records)
    }

    /// `GET /v1/streams/{name}/records`: up to `max` records of `partition` from `from`,
    /// waiting up to `wait_ms` at the head.
    pub async fn read_stream(
        &self,
        name: &str,
        partition: u32,
        from: From,
        max: u32,
        wait_ms: u64,
    ) -> Result<ReadResponse, Error> {
        let from = match from {
            From::Offset(offset) => format!("from_offset={offset}"),
            From::Time(time) => format!("from_time={time}"),
        };
        let url = format!(
            "{}?partition={partition}&{from}&max={max}&wait_ms={wait_ms}",
            self.stream_url(name, &["records"])
        );
        self.json(
            Method::GET,
            url,
            None::<&()>,
            self.wait_budget(Some(wait_ms)),
        )
        .await
    }

    /// `PUT /v1/streams/{name}/groups/{group}`: creates a consumer group (idempotent).
    pub async fn create_group(
        &self,
        name: &str,
        group: &str,
        request: &CreateGroup,
    ) -> Result<GroupInfo, Error> {
        let url = self.stream_url(name, &["groups", group]);
        self.json(Method::PUT, url, Some(request), self.request_timeout)
            .await
    }

    /// `GET /v1/streams/{name}/groups/{group}`: the group, its lag and live consumers.
    pub async fn get_group(&self, name: &str, group: &str) -> Result<GroupInfo, Error> {
        let url = self.stream_url(name, &["groups", group]);
        self.json(Method::GET, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `DELETE /v1/streams/{name}/groups/{group}`.
    pub async fn delete_group(&self, name: &str, group: &str) -> Result<(), Error> {
        let url = self.stream_url(name, &["groups", group]);
        self.execute(Method::DELETE, url, None::<&()>, self.request_timeout)
            .await?;
        Ok(())
    }

    /// `POST .../groups/{group}/read`: new records for `consumer`, pending for it until acked.
    pub async fn group_read(
        &self,
        name: &str,
        group: &str,
        request: &GroupRead,
    ) -> Result<Vec<GroupRecord>, Error> {
        let url = self.stream_url(name, &["groups", group, "read"]);
        let response: GroupRecords = self
            .json(
                Method::POST,
                url,
                Some(request),
                self.wait_budget(request.wait_ms),
            )
            .await?;
        Ok(response.records)
    }

    /// `POST .../groups/{group}/ack`: one result per id, in order.
    pub async fn group_ack(
        &self,
        name: &str,
        group: &str,
        ids: Vec<String>,
    ) -> Result<BatchResponse, Error> {
        let url = self.stream_url(name, &["groups", group, "ack"]);
        self.json(
            Method::POST,
            url,
            Some(&GroupAck { ids, fence: None }),
            self.request_timeout,
        )
        .await
    }

    /// `GET .../groups/{group}/pending`, optionally of one consumer; the server lists at
    /// most 1000 entries (the count covers all).
    pub async fn group_pending(
        &self,
        name: &str,
        group: &str,
        consumer: Option<&str>,
    ) -> Result<PendingList, Error> {
        self.group_pending_at_most(name, group, consumer, None)
            .await
    }

    /// `GET .../groups/{group}/pending?consumer=&max=`: at most `max` entries (1..=1000).
    pub async fn group_pending_at_most(
        &self,
        name: &str,
        group: &str,
        consumer: Option<&str>,
        max: Option<u32>,
    ) -> Result<PendingList, Error> {
        let mut url = self.stream_url(name, &["groups", group, "pending"]);
        let mut separator = '?';
        if let Some(consumer) = consumer {
            url.push_str(&format!("{separator}consumer={}", encode_segment(consumer)));
            separator = '&';
        }
        if let Some(max) = max {
            url.push_str(&format!("{separator}max={max}"));
        }
        self.json(Method::GET, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `POST .../groups/{group}/claim`: takes over records idle for `min_idle_ms`.
    pub async fn group_claim(
        &self,
        name: &str,
        group: &str,
        request: &GroupClaim,
    ) -> Result<Vec<GroupRecord>, Error> {
        let url = self.stream_url(name, &["groups", group, "claim"]);
        let response: GroupRecords = self
            .json(Method::POST, url, Some(request), self.request_timeout)
            .await?;
        Ok(response.records)
    }

    /// `POST .../groups/{group}/seek`: moves the group's position.
    pub async fn group_seek(
        &self,
        name: &str,
        group: &str,
        request: &GroupSeek,
    ) -> Result<GroupInfo, Error> {
        let url = self.stream_url(name, &["groups", group, "seek"]);
        self.json(Method::POST, url, Some(request), self.request_timeout)
            .await
    }
}
