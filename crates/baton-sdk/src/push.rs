//! Push subscriptions (`/v1/queues/{q}/push`) and completion callbacks (`/v1/callbacks/...`)
//! on [`Client`].

use reqwest::Method;

use crate::proto::{
    CallbackRetryResult, FailedCallback, FailedCallbackList, PushInfo, PushSubscription,
};
use crate::{Client, Error};

impl Client {
    /// `PUT /v1/queues/{queue}/push`: from now on the broker POSTs each message of `queue` to
    /// the subscription's URL; a second `PUT` replaces the subscription.
    pub async fn set_push(
        &self,
        queue: &str,
        subscription: &PushSubscription,
    ) -> Result<PushInfo, Error> {
        let url = self.queue_url(queue, &["push"]);
        self.json(Method::PUT, url, Some(subscription), self.request_timeout)
            .await
    }

    /// `GET /v1/queues/{queue}/push`: the subscription and its delivery figures;
    /// `push_not_configured` (404) when the queue has none.
    pub async fn get_push(&self, queue: &str) -> Result<PushInfo, Error> {
        let url = self.queue_url(queue, &["push"]);
        self.json(Method::GET, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `DELETE /v1/queues/{queue}/push`: stops pushing; the messages stay in the queue.
    pub async fn delete_push(&self, queue: &str) -> Result<(), Error> {
        let url = self.queue_url(queue, &["push"]);
        self.execute(Method::DELETE, url, None::<&()>, self.request_timeout)
            .await?;
        Ok(())
    }

    /// `GET /v1/callbacks/failed?max=`: messages whose completion callback failed and is
    /// parked (status `CALLBACK_FAILED`); `max` 1..=1000, the server's default 100.
    pub async fn failed_callbacks(&self, max: Option<u32>) -> Result<Vec<FailedCallback>, Error> {
        let mut url = format!("{}/v1/callbacks/failed", self.base_url);
        if let Some(max) = max {
            url.push_str(&format!("?max={max}"));
        }
        let list: FailedCallbackList = self
            .json(Method::GET, url, None::<&()>, self.request_timeout)
            .await?;
        Ok(list.callbacks)
    }

    /// `POST /v1/queues/{queue}/messages/{id}/retry-callback`: attempts a parked callback now.
    /// A callback that fails again is `Ok` with `ok: false` and the reason; a message whose
    /// callback is not parked is `callback_not_failed` or `callback_retry_scheduled` (409).
    pub async fn retry_callback(
        &self,
        queue: &str,
        id: &str,
    ) -> Result<CallbackRetryResult, Error> {
        let url = self.queue_url(queue, &["messages", id, "retry-callback"]);
        self.json(Method::POST, url, None::<&()>, self.request_timeout)
            .await
    }
}
