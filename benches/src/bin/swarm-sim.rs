//! Runs one simulated swarm scenario and prints its report.
//!
//! ```text
//! swarm-sim --scenario NAME [--seed N] [--peers N] [--size-mib N]
//!           [--introductions tracker|random] [--swarm-facts] [--upload-cap PERCENT]
//!           [--window-duplicates all|overdue] [--rescue-margin SECONDS] [--upload-slots N]
//!           [--upload-streams N] [--fetch-ahead off|HEADROOM] [--startup-trust on|off]
//!           [--json] [--detail] [--trace-origin] [--trace-flows]
//!           [--inspect SECONDS[,SECONDS...]:PEER[,PEER...]]
//! ```
//!
//! `--swarm-facts` has every engine steer the origin by the tracker's swarm
//! facts (`HttpConfig::use_swarm_facts`, off by default). `--upload-cap`
//! limits every peer's upload to that percentage of its link
//! (`SwarmConfig::upload_rate_limit`): below the link, the engine's order of
//! uploads decides who is served, rather than a fair share among the
//! connections' send buffers. `--window-duplicates overdue` has viewers ask
//! a second peer only for blocks the first is late with
//! (`StreamingConfig::window_duplicates`). `--rescue-margin` and
//! `--upload-slots` set `StreamingConfig::rescue_margin` and
//! `SwarmConfig::upload_slots` for every peer, and `--upload-streams`
//! `StreamingConfig::upload_streams` (0: every unchoked viewer in turn),
//! `--fetch-ahead` `StreamingConfig::fetch_ahead_headroom` (`off`: never
//! past the window), and `--startup-trust off` turns
//! `StreamingConfig::startup_trust` off, for trying the engine's scheduling
//! without a rebuild. `--detail` adds every peer's own figures and a
//! timeline of the swarm (peers' upload use, peers holding no piece yet,
//! origin rate) to the report.
//! `--trace-origin` prints a JSON line on standard error for every origin
//! fetch: the peer, the piece, why, how soon its playback needs it, and how
//! many neighbours hold it.
//! `--trace-flows` prints, at the end, a JSON line on standard error for
//! every sender, receiver and 10 s of virtual time: the bytes sent (a `null`
//! end is the origin).
//! `--inspect 35,40:0,4` prints, at 35 s and 40 s of virtual time, a JSON
//! line on standard error for peers 0 and 4: where each plays, what it holds
//! and fetched from the origin, and for every neighbour who chokes whom, who
//! wants what, the requests queued each way, its rates and where it plays.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::time::Duration;

use chunkswarm_benches::sim::{Inspect, Introductions, Params, SCENARIOS, Simulation};
use chunkswarm_core::swarm::{StartupTrust, WindowDuplicates};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok((params, output)) => {
            let mut simulation = Simulation::new(params);
            if output.trace_origin {
                simulation = simulation.with_origin_trace();
            }
            if output.trace_flows {
                simulation = simulation.with_flow_trace();
            }
            if let Some(inspect) = output.inspect {
                simulation = simulation.with_inspect(inspect);
            }
            let report = if output.detail {
                simulation.with_detail().run()
            } else {
                simulation.run()
            };
            if output.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("swarm-sim: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                println!("{report:#?}");
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("swarm-sim: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What the run prints besides the report's figures.
struct Output {
    json: bool,
    detail: bool,
    trace_origin: bool,
    trace_flows: bool,
    inspect: Option<Inspect>,
}

fn parse(args: &[String]) -> Result<(Params, Output), String> {
    let usage = format!(
        "usage: swarm-sim --scenario {{{}}} [--seed N] [--peers N] [--size-mib N] \
         [--introductions tracker|random] [--swarm-facts] [--upload-cap PERCENT] \
         [--window-duplicates all|overdue] [--rescue-margin SECONDS] [--upload-slots N] \
         [--upload-streams N] [--fetch-ahead off|HEADROOM] [--startup-trust on|off] \
         [--json] [--detail] [--trace-origin] [--trace-flows] \
         [--inspect SECONDS[,SECONDS...]:PEER[,PEER...]]",
        SCENARIOS.join("|")
    );
    let mut scenario = None;
    let mut seed = 1u64;
    let mut peers = None;
    let mut size = None;
    let mut json = false;
    let mut detail = false;
    let mut trace_origin = false;
    let mut trace_flows = false;
    let mut inspect = None;
    let mut introductions = None;
    let mut swarm_facts = false;
    let mut upload_cap = None;
    let mut window_duplicates = None;
    let mut rescue_margin = None;
    let mut upload_slots = None;
    let mut upload_streams = None;
    let mut fetch_ahead = None;
    let mut startup_trust = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<&String, String> {
            it.next()
                .ok_or_else(|| format!("{name} needs a value\n{usage}"))
        };
        let mut number = |name: &str| -> Result<u64, String> {
            let value = value(name)?;
            value
                .parse()
                .map_err(|_| format!("{name}: {value:?} is not a number"))
        };
        match arg.as_str() {
            "--scenario" => scenario = it.next().cloned(),
            "--seed" => seed = number("--seed")?,
            "--peers" => peers = Some(number("--peers")? as usize),
            "--size-mib" => size = Some(number("--size-mib")?),
            "--introductions" => {
                let value = value("--introductions")?;
                introductions = Some(value.parse::<Introductions>()?);
            }
            "--swarm-facts" => swarm_facts = true,
            "--upload-cap" => match number("--upload-cap")? {
                percent @ 1..=100 => upload_cap = Some(percent),
                other => return Err(format!("--upload-cap: {other} is not a percentage (1-100)")),
            },
            "--window-duplicates" => {
                window_duplicates = Some(match value("--window-duplicates")?.as_str() {
                    "all" => WindowDuplicates::All,
                    "overdue" => WindowDuplicates::Overdue,
                    other => {
                        return Err(format!(
                            "--window-duplicates: {other:?} is not all or overdue\n{usage}"
                        ));
                    }
                });
            }
            "--rescue-margin" => {
                let value = value("--rescue-margin")?;
                let seconds = value
                    .parse::<f64>()
                    .ok()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| {
                        format!("--rescue-margin: {value:?} is not a number of seconds")
                    })?;
                rescue_margin = Some(seconds);
            }
            "--upload-slots" => upload_slots = Some(number("--upload-slots")? as usize),
            "--upload-streams" => upload_streams = Some(number("--upload-streams")? as usize),
            "--fetch-ahead" => {
                let value = value("--fetch-ahead")?;
                fetch_ahead = Some(match value.as_str() {
                    "off" => None,
                    headroom => Some(
                        headroom
                            .parse::<f64>()
                            .ok()
                            .filter(|h| h.is_finite() && *h >= 0.0)
                            .ok_or_else(|| {
                                format!("--fetch-ahead: {value:?} is neither off nor a multiple of the bitrate")
                            })?,
                    ),
                });
            }
            "--startup-trust" => {
                let value = value("--startup-trust")?;
                startup_trust = Some(match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("--startup-trust: {value:?} is neither on nor off")),
                });
            }
            "--json" => json = true,
            "--detail" => detail = true,
            "--trace-origin" => trace_origin = true,
            "--inspect" => {
                let value = value("--inspect")?;
                inspect = Some(value.parse::<Inspect>()?);
            }
            "--trace-flows" => trace_flows = true,
            "-h" | "--help" => return Err(usage),
            other => return Err(format!("unexpected argument {other:?}\n{usage}")),
        }
    }
    let name = scenario.ok_or_else(|| usage.clone())?;
    let mut params = Params::scenario(&name, seed)
        .ok_or_else(|| format!("unknown scenario {name:?}\n{usage}"))?;
    if let Some(peers) = peers {
        params.peers = peers;
    }
    if let Some(introductions) = introductions {
        params.introductions = introductions;
    }
    if let Some(mib) = size {
        params.file_bytes = mib << 20;
    }
    params.swarm.http.use_swarm_facts = swarm_facts;
    if let Some(duplicates) = window_duplicates {
        params.swarm.streaming.window_duplicates = duplicates;
    }
    if let Some(margin) = rescue_margin {
        params.swarm.streaming.rescue_margin = margin;
    }
    if let Some(slots) = upload_slots {
        params.swarm.upload_slots = slots;
    }
    if let Some(streams) = upload_streams {
        params.swarm.streaming.upload_streams = streams;
    }
    if let Some(headroom) = fetch_ahead {
        params.swarm.streaming.fetch_ahead_headroom = headroom;
    }
    if let Some(on) = startup_trust {
        params.swarm.streaming.startup_trust = on.then(StartupTrust::default);
    }
    if let Some(percent) = upload_cap {
        params.swarm.upload_rate_limit = Some((params.peer_up * percent as f64 / 100.0) as u64);
    }
    let output = Output {
        json,
        detail,
        trace_origin,
        inspect,
        trace_flows,
    };
    Ok((params, output))
}
