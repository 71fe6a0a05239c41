//! `cronmesh schedule preview ...`

use chrono::{DateTime, SecondsFormat, Utc};
use protocol::api::{PreviewRequest, PreviewResponse};
use reqwest::Method;

use super::{json_out, note, to_body, Ctx};
use crate::client::{
    args::{PreviewArgs, ScheduleCommand},
    error::CliError,
};

pub(super) async fn execute(ctx: &Ctx, cmd: ScheduleCommand) -> Result<Vec<u8>, CliError> {
    let ScheduleCommand::Preview(args) = cmd;
    preview(ctx, args).await
}

async fn preview(ctx: &Ctx, args: PreviewArgs) -> Result<Vec<u8>, CliError> {
    let url = ctx.api.url(&["v1", "schedules", "preview"], &[]);
    let request = PreviewRequest {
        schedule: args.expr.clone(),
        timezone: args.tz.clone(),
        from: args.from,
        count: args.count,
    };
    let body = ctx
        .api
        .send(Method::POST, url.clone(), Some(to_body(&request)?))
        .await?;
    if ctx.json() {
        return Ok(json_out(&body));
    }
    let answer: PreviewResponse =
        protocol::validate::from_json(&body).map_err(|e| CliError::BadResponse {
            url: url.to_string(),
            message: format!("{} {}", e.field, e.message).trim().to_string(),
        })?;
    if answer.fire_times.is_empty() {
        note(&format!(
            "{:?} does not fire after the start of the preview",
            args.expr
        ));
    }
    Ok(fire_times(&answer.fire_times, &args.tz).into_bytes())
}

/// One RFC 3339 time a line, with the local time beside it unless the zone
/// is UTC (or unknown here).
fn fire_times(times: &[DateTime<Utc>], tz: &str) -> String {
    let zone = tz
        .parse::<chrono_tz::Tz>()
        .ok()
        .filter(|z| !matches!(z.name(), "UTC" | "Etc/UTC" | "Etc/UCT" | "UCT" | "Zulu"));
    let mut out = String::new();
    for t in times {
        out.push_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        if let Some(zone) = zone {
            let local = t.with_timezone(&zone);
            out.push_str(&format!("  {}", local.format("%a %Y-%m-%d %H:%M:%S %Z")));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn fire_times_show_local_time_beside_utc() {
        let times = [t("2026-03-29T01:00:00Z"), t("2026-03-30T00:00:00Z")];
        assert_eq!(
            fire_times(&times, "Europe/Paris"),
            "2026-03-29T01:00:00Z  Sun 2026-03-29 03:00:00 CEST\n\
             2026-03-30T00:00:00Z  Mon 2026-03-30 02:00:00 CEST\n"
        );
        assert_eq!(
            fire_times(&times, "UTC"),
            "2026-03-29T01:00:00Z\n2026-03-30T00:00:00Z\n"
        );
        assert_eq!(fire_times(&[], "UTC"), "");
    }
}
