//! `baton bench`: turns the command line into a `baton_bench::Config` and prints the report.

use std::time::Duration;

use baton_bench::{Api, Config, System, Workload};

use crate::args::{BenchApi, BenchArgs, BenchTarget, BenchWorkload};

pub async fn bench(remote: &crate::client::Remote, args: BenchArgs) -> anyhow::Result<()> {
    let config = Config {
        url: remote.url.clone(),
        system: match args.target {
            BenchTarget::Baton => System::Baton,
            BenchTarget::Redis => System::Redis,
            BenchTarget::RabbitMq => System::RabbitMq,
            BenchTarget::Nats => System::Nats,
        },
        target_url: args.target_url,
        rabbitmq_quorum: args.rabbitmq_quorum,
        workload: match args.workload {
            BenchWorkload::Produce => Workload::Produce,
            BenchWorkload::Consume => Workload::Consume,
            BenchWorkload::E2e => Workload::E2e,
        },
        api: match args.api {
            BenchApi::Native => Api::Native,
            BenchApi::Sqs => Api::Sqs,
            BenchApi::Wire => Api::Wire,
        },
        producers: args.producers,
        consumers: args.consumers,
        message_bytes: args.message_bytes,
        batch: args.batch,
        receive_batch: args.receive_batch.unwrap_or(args.batch),
        http2: args.http2,
        inflight: args.inflight,
        ack_inflight: args.ack_inflight,
        rate_per_s: args.rate,
        duration: Duration::from_secs(args.duration_s),
        messages: args.messages,
        queue: args.queue,
        wait_ms: args.wait_ms,
        progress: !args.no_progress,
        wire_addr: args.wire_addr,
        key: remote.key.clone(),
        ca_pem: remote.ca_pem.clone(),
        sqs_credentials: args.sqs_access_key_id.zip(args.sqs_secret_access_key).map(
            |(access_key_id, secret_access_key)| baton_bench::SqsCredentials {
                access_key_id,
                secret_access_key,
            },
        ),
    };
    // Bad options are refused before any request; then wait out a broker still recovering.
    config.validate()?;
    if config.system == System::Baton {
        crate::client::wait_until_ready(&remote.client()?).await?;
    }
    let report = match baton_bench::run(config).await {
        Ok(report) => report,
        // The SDK's own error, so that `main` words it like every other client command's.
        Err(baton_bench::BenchError::Sdk(error)) => return Err(error.into()),
        Err(error) => return Err(error.into()),
    };
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    Ok(())
}
