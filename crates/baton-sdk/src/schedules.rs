//! Schedules on [`Client`]: put, show, list, pause, resume, fire and delete
//! (`/v1/schedules/...`).

use reqwest::Method;

use crate::proto::{FireResponse, PutSchedule, ScheduleInfo, ScheduleList};
use crate::{encode_segment, Client, Error};

impl Client {
    fn schedule_url(&self, name: &str, suffix: Option<&str>) -> String {
        let mut url = format!("{}/v1/schedules/{}", self.base_url, encode_segment(name));
        if let Some(suffix) = suffix {
            url.push('/');
            url.push_str(suffix);
        }
        url
    }

    /// `PUT /v1/schedules/{name}`: creates or replaces a schedule.
    pub async fn put_schedule(
        &self,
        name: &str,
        schedule: &PutSchedule,
    ) -> Result<ScheduleInfo, Error> {
        let url = self.schedule_url(name, None);
        self.json(Method::PUT, url, Some(schedule), self.request_timeout)
            .await
    }

    /// `GET /v1/schedules/{name}`: the schedule with its next fire times and last outcome.
    pub async fn get_schedule(&self, name: &str) -> Result<ScheduleInfo, Error> {
        let url = self.schedule_url(name, None);
        self.json(Method::GET, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `GET /v1/schedules?after=&max=`: schedules in name order.
    pub async fn list_schedules(
        &self,
        after: Option<&str>,
        max: u32,
    ) -> Result<ScheduleList, Error> {
        let mut query = format!("max={max}");
        if let Some(after) = after {
            query.push_str("&after=");
            query.push_str(&encode_segment(after));
        }
        let url = format!("{}/v1/schedules?{query}", self.base_url);
        self.json(Method::GET, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `POST /v1/schedules/{name}/pause`.
    pub async fn pause_schedule(&self, name: &str) -> Result<ScheduleInfo, Error> {
        let url = self.schedule_url(name, Some("pause"));
        self.json(Method::POST, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `POST /v1/schedules/{name}/resume`: ticks while it was paused do not fire.
    pub async fn resume_schedule(&self, name: &str) -> Result<ScheduleInfo, Error> {
        let url = self.schedule_url(name, Some("resume"));
        self.json(Method::POST, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `POST /v1/schedules/{name}/fire`: sends the schedule's message now.
    pub async fn fire_schedule(&self, name: &str) -> Result<FireResponse, Error> {
        let url = self.schedule_url(name, Some("fire"));
        self.json(Method::POST, url, None::<&()>, self.request_timeout)
            .await
    }

    /// `DELETE /v1/schedules/{name}`.
    pub async fn delete_schedule(&self, name: &str) -> Result<(), Error> {
        let url = self.schedule_url(name, None);
        self.execute(Method::DELETE, url, None::<&()>, self.request_timeout)
            .await?;
        Ok(())
    }
}
