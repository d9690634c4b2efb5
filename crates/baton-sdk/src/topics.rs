//! Topics, live subscriptions and request/response on [`Client`].

use std::time::Duration;

use reqwest::Method;

use crate::proto::{
    LiveDropped, LiveMessage, PublishMessage, PublishRequest, PublishResponse, PutSubscription,
    Reply, ReplyOutcome, RequestMessage, RequestResponse, SubscriptionInfo, TopicInfo, TopicList,
};
use crate::{check_status, encode_segment, Client, Error};

/// One event of a live subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    Message(LiveMessage),
    /// Messages the server dropped because this connection fell behind.
    Dropped(LiveDropped),
}

/// An open Server-Sent Events subscription to a topic (`Client::live`).
pub struct LiveStream {
    response: reqwest::Response,
    buffer: String,
    url: String,
}

impl Client {
    fn topic_url(&self, topic: &str, suffix: &[&str]) -> String {
        let mut url = format!("{}/v1/topics/{}", self.base_url, encode_segment(topic));
        for segment in suffix {
            url.push('/');
            url.push_str(&encode_segment(segment));
        }
        url
    }

    /// `PUT /v1/topics/{topic}`: creates the topic or finds it.
    pub async fn create_topic(&self, topic: &str) -> Result<TopicInfo, Error> {
        let url = self.topic_url(topic, &[]);
        self.json(
            Method::PUT,
            url,
            Some(&serde_json::json!({})),
            self.request_timeout,
        )
        .await
    }

    /// `GET /v1/topics/{topic}`: the topic, its subscriptions and counters.
    pub async fn get_topic(&self, topic: &str) -> Result<TopicInfo, Error> {
        let url = self.topic_url(topic, &[]);
        self.json::<(), _>(Method::GET, url, None, self.request_timeout)
            .await
    }

    /// `GET /v1/topics`: every topic.
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>, Error> {
        let url = format!("{}/v1/topics", self.base_url);
        let list: TopicList = self
            .json::<(), _>(Method::GET, url, None, self.request_timeout)
            .await?;
        Ok(list.topics)
    }

    /// `DELETE /v1/topics/{topic}`: the topic and its subscriptions; copies already delivered
    /// stay in their queues.
    pub async fn delete_topic(&self, topic: &str) -> Result<(), Error> {
        let url = self.topic_url(topic, &[]);
        self.execute::<()>(Method::DELETE, url, None, self.request_timeout)
            .await?;
        Ok(())
    }

    /// `PUT /v1/topics/{topic}/subscriptions/{name}`: creates the subscription, or finds it
    /// when identical; `subscription_exists` (409) when it differs.
    pub async fn subscribe(
        &self,
        topic: &str,
        name: &str,
        request: &PutSubscription,
    ) -> Result<SubscriptionInfo, Error> {
        let url = self.topic_url(topic, &["subscriptions", name]);
        self.json(Method::PUT, url, Some(request), self.request_timeout)
            .await
    }

    /// `GET /v1/topics/{topic}/subscriptions/{name}`.
    pub async fn get_subscription(
        &self,
        topic: &str,
        name: &str,
    ) -> Result<SubscriptionInfo, Error> {
        let url = self.topic_url(topic, &["subscriptions", name]);
        self.json::<(), _>(Method::GET, url, None, self.request_timeout)
            .await
    }

    /// `DELETE /v1/topics/{topic}/subscriptions/{name}`: stops the fan-out to its target (a
    /// `url` target's internal queue goes with it).
    pub async fn unsubscribe(&self, topic: &str, name: &str) -> Result<(), Error> {
        let url = self.topic_url(topic, &["subscriptions", name]);
        self.execute::<()>(Method::DELETE, url, None, self.request_timeout)
            .await?;
        Ok(())
    }

    /// `POST /v1/topics/{topic}/publish`: one outcome per message, once the fan-out is durable.
    pub async fn publish(
        &self,
        topic: &str,
        messages: Vec<PublishMessage>,
    ) -> Result<PublishResponse, Error> {
        let url = self.topic_url(topic, &["publish"]);
        self.json(
            Method::POST,
            url,
            Some(&PublishRequest {
                messages,
                fence: None,
            }),
            self.request_timeout,
        )
        .await
    }

    /// `GET /v1/topics/{topic}/live?pattern=`: opens a Server-Sent Events subscription.
    pub async fn live(&self, topic: &str, pattern: Option<&str>) -> Result<LiveStream, Error> {
        let url = self.topic_url(topic, &["live"]);
        let mut request = self.http_request(Method::GET, &url);
        if let Some(pattern) = pattern {
            request = request.query(&[("pattern", pattern)]);
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
        Ok(LiveStream {
            response,
            buffer: String::new(),
            url,
        })
    }

    /// `POST /v1/queues/{queue}/request`: sends a message and waits for its reply (the HTTP
    /// budget is the request's `timeout_ms` plus a margin).
    pub async fn request(
        &self,
        queue: &str,
        request: &RequestMessage,
    ) -> Result<RequestResponse, Error> {
        let url = self.queue_url(queue, &["request"]);
        let budget = Duration::from_millis(request.timeout_ms) + self.request_timeout;
        self.json(Method::POST, url, Some(request), budget).await
    }

    /// `POST /v1/replies/{correlation_id}`.
    pub async fn reply(&self, correlation_id: &str, reply: &Reply) -> Result<ReplyOutcome, Error> {
        let url = format!(
            "{}/v1/replies/{}",
            self.base_url,
            encode_segment(correlation_id)
        );
        self.json(Method::POST, url, Some(reply), self.request_timeout)
            .await
    }
}

impl LiveStream {
    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Result<Option<LiveEvent>, Error> {
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
                match event {
                    "message" => {
                        return serde_json::from_str(&data)
                            .map(|m| Some(LiveEvent::Message(m)))
                            .map_err(decode_error)
                    }
                    "dropped" => {
                        return serde_json::from_str(&data)
                            .map(|d| Some(LiveEvent::Dropped(d)))
                            .map_err(decode_error)
                    }
                    // Keep-alive comments and events this client does not know.
                    _ => continue,
                }
            }
            match self.response.chunk().await? {
                Some(chunk) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                None => return Ok(None),
            }
        }
    }
}
